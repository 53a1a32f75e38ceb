"""`BudModel`: a model registered with the Bud gateway (downloaded from its source)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from ._base import (
    AGE_COLUMN,
    CONNECTION_REF_IMMUTABLE,
    EXTERNAL_ID_IMMUTABLE,
    ID_COLUMN,
    NAME_IMMUTABLE,
    READY_COLUMN,
    REASON_COLUMN,
    STATE_COLUMN,
    CommonStatus,
    CRDInfo,
    KindDef,
    ManagedSpec,
    PrinterColumn,
)


class ModelSource(StrEnum):
    """Where the gateway fetches the model from."""

    HUGGING_FACE = "hugging_face"
    URL = "url"
    LOCAL = "local"
    CLOUD = "cloud"


class BudModelSpec(ManagedSpec):
    """Desired state of a model registered with the Bud gateway."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                EXTERNAL_ID_IMMUTABLE,
                NAME_IMMUTABLE,
                CONNECTION_REF_IMMUTABLE,
            ]
        }
    )

    source: ModelSource = Field(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "source is immutable"}
            ]
        }
    )
    """Where the model comes from: hugging_face, url, local or cloud. Immutable."""

    uri: str = Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "uri is immutable"}]
        },
    )
    """Location of the model for its source (a repo id, a URL, a path). Immutable."""

    metadata: dict[str, Any] | None = None
    """Free-form metadata stored with the remote model; drift is put back."""


class BudModelStatus(CommonStatus):
    """Observed state of the remote model."""

    state: str | None = None
    """Model state reported by the gateway."""

    size_bytes: int | None = Field(default=None, ge=0)
    """Size of the model in bytes."""

    progress_percent: float | None = Field(default=None, ge=0, le=100)
    """Download progress while downloading."""

    downloaded_bytes: int | None = Field(default=None, ge=0)
    """Bytes downloaded so far (the size once available)."""

    bytes_per_second: float | None = Field(default=None, ge=0)
    """Download rate over the last few seconds, while downloading."""

    eta_seconds: float | None = Field(default=None, ge=0)
    """Estimated seconds until the download completes, while downloading."""

    download_simulated: bool | None = None
    """True when the gateway simulates the download (a Hugging Face repository not in its local
    cache): the bytes, rate and ETA are then simulated too."""

    error: str | None = None
    """Error reported by the gateway when state is error."""


BUD_MODEL = KindDef(
    spec=BudModelSpec,
    status=BudModelStatus,
    crd=CRDInfo(
        kind="BudModel",
        plural="budmodels",
        short_names=("bm",),
        description="A model registered with the Bud gateway and downloaded from its source.",
        printer_columns=(
            READY_COLUMN,
            STATE_COLUMN,
            PrinterColumn("Size", ".status.sizeBytes", "integer", "Size in bytes"),
            PrinterColumn("Progress", ".status.progressPercent", "number", "Download %"),
            PrinterColumn("Rate", ".status.bytesPerSecond", "number", "Download bytes/s", 1),
            PrinterColumn("ETA", ".status.etaSeconds", "number", "Seconds left to download"),
            REASON_COLUMN,
            ID_COLUMN,
            AGE_COLUMN,
        ),
    ),
)
