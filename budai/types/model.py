"""Model types: a model registered with the platform."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import field_validator

from ._base import BudObject

__all__ = ["Model", "ModelSource", "ModelStatus"]

ModelSource = Literal["hugging_face", "url", "local", "cloud"]
ModelStatus = Literal["downloading", "available", "error", "deleting"]


class Model(BudObject):
    """A registered model."""

    id: str
    name: str
    source: ModelSource
    uri: str
    size_bytes: int = 0
    """Bytes on disk; ``0`` while unknown and for ``cloud`` models (nothing is downloaded)."""
    status: ModelStatus
    metadata: dict[str, Any] = {}
    created_at: datetime
    updated_at: datetime | None = None
    progress_percent: float | None = None
    """0..100 while ``downloading``, else ``None``."""
    downloaded_bytes: int | None = None
    """Bytes downloaded so far (``size_bytes`` once available)."""
    bytes_per_second: float | None = None
    """Download rate over the last few seconds while ``downloading``; simulated downloads
    (``metadata["simulated_download"]``) report the simulated rate."""
    eta_seconds: float | None = None
    """Estimated seconds until the download completes, when the size and rate are known."""
    error: str | None = None
    """Why the model is in ``error``."""

    @field_validator("size_bytes", mode="before")
    @classmethod
    def _no_size_yet(cls, value: object) -> object:
        # The gateway sends null until a size is known (always, for `cloud` models); the
        # reference page types the field `int`, so null becomes 0 rather than a false `int`.
        return 0 if value is None else value
