"""Ownership of remote objects: whose identity marker a remote object carries, and what that
allows this resource to do with it.

Every remote object the operator creates carries `metadata["bud.studio/uid"]` = the UID of the
custom resource that manages it. The operator writes, renames or deletes only objects carrying
its resource's marker. How an id was reached decides what an object without our marker means:

- `externalId` (adoption): unmarked -> adopt and mark it; another resource's marker -> refuse
  (`Stalled`, reason `OwnedElsewhere`).
- `status.id` (written by the operator): unmarked -> ours from before markers existed (an
  upgrade); mark it. Another marker -> refuse.
- the `bud.studio/external-id` annotation (a crash-recovery record anyone who may edit the
  resource can write): trusted only when the marker is ours; otherwise ignored, never adopted.
- a name clash on create: ours only with our marker (a create whose answer was lost).

Messages built here never name the other resource, its UID, the object's id or its spec: the
object may belong to another tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from .polling import ANN_EXTERNAL_ID

MARKER = "bud.studio/uid"

Source = Literal["externalId", "status", "annotation", "name", "action"]


class Claim(Enum):
    """Whose marker a remote object carries, seen from one resource."""

    OURS = "ours"
    UNMARKED = "unmarked"
    ELSEWHERE = "elsewhere"


def claim_of(uid: str, remote: Mapping[str, Any]) -> Claim:
    """Read the marker of a remote object."""
    marker = (remote.get("metadata") or {}).get(MARKER)
    if not marker:
        return Claim.UNMARKED
    return Claim.OURS if marker == uid else Claim.ELSEWHERE


def id_source(
    external_id: str | None, status: Mapping[str, Any], annotations: Mapping[str, str]
) -> tuple[str | None, Source | None]:
    """The remote id this resource points at, and where it came from (most trusted first)."""
    if external_id:
        return external_id, "externalId"
    from_status = status.get("id")
    if isinstance(from_status, str) and from_status:
        return from_status, "status"
    from_annotation = annotations.get(ANN_EXTERNAL_ID)
    if from_annotation:
        return from_annotation, "annotation"
    return None, None


@dataclass(frozen=True)
class Verdict:
    """What this resource may do with a remote object it reached."""

    manage: bool
    """Observe and write it (False: refuse, or ignore when `ignore`)."""
    mark: bool = False
    """Write our marker onto it (an adoption, or an object from before markers)."""
    ignore: bool = False
    """Act as if no id were known (an annotation that is not ours: create instead)."""
    reason: str = ""
    message: str = ""


def judge(uid: str, remote: Mapping[str, Any], source: Source, noun: str, name: str) -> Verdict:
    """The ownership decision for a remote object reached through `source`.

    `name` is this resource's desired remote name (from its own spec, so safe to repeat).
    """
    claim = claim_of(uid, remote)
    if claim is Claim.OURS or source == "action":
        return Verdict(manage=True)
    if source == "annotation":
        # Never an adoption path: an object without our marker is somebody else's business.
        return Verdict(manage=False, ignore=True)
    if source == "name":
        return Verdict(
            manage=False,
            reason="NameConflict",
            message=(
                f"a remote {noun} named {name} already exists and is not managed by this "
                f"resource; set spec.name to a free name"
            ),
        )
    if claim is Claim.UNMARKED:
        return Verdict(manage=True, mark=True)
    where = "spec.externalId" if source == "externalId" else "status.id"
    return Verdict(
        manage=False,
        reason="OwnedElsewhere",
        message=(
            f"the remote {noun} named by {where} is managed by another resource; this resource "
            f"will not change or delete it: point spec.externalId at an object of your own, or "
            f"delete this resource and create it without spec.externalId"
        ),
    )


def may_delete(uid: str, remote: Mapping[str, Any] | None, source: Source | None) -> bool:
    """Whether deleting this resource (policy Delete) may delete the remote object.

    Only objects carrying our marker, or unmarked ones this resource created before markers
    existed (recorded in status, never adopted). An adoption that never succeeded never marked
    the object, so it deletes nothing.
    """
    if remote is None or source is None:
        return False
    claim = claim_of(uid, remote)
    if claim is Claim.OURS:
        return True
    return claim is Claim.UNMARKED and source == "status"


def marker_patch(uid: str) -> dict[str, Any]:
    """The metadata patch that marks an object as this resource's."""
    return {MARKER: uid}
