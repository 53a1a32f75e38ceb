"""kstatus' status computation for custom resources, as a small pure function.

Flux (kustomize-controller ``wait``/``healthChecks``) and ``kpt live``/``cli-utils`` judge custom
resources with kstatus. This implements the documented generic rules, in kstatus' order:

- kubernetes-sigs/cli-utils ``pkg/kstatus/README.md`` ("Statuses", "Conditions", "The Ready
  Condition"), and the code they describe, ``pkg/kstatus/status/generic.go``
  (``checkGenericProperties``, ``checkGeneration``) and ``status.go`` (``Compute``):

1. ``metadata.deletionTimestamp`` set -> ``Terminating``.
2. ``status.observedGeneration`` present and different from ``metadata.generation`` ->
   ``InProgress`` (reason ``LatestGenerationNotObserved``).
3. The first of ``Reconciling``/``Stalled`` in ``status.conditions`` with status ``True`` decides:
   ``Reconciling`` -> ``InProgress``, ``Stalled`` -> ``Failed``.
4. ``checkReadyCondition`` for resources that carry a ``Ready`` condition: ``True`` ->
   ``Current`` ("Resource is Ready"), ``False`` or ``Unknown`` -> ``InProgress`` (its message).
   ``strict_ready=False`` skips this step (a reading once suspected of some releases; v0.37.2
   does run it, see ``tests/gitops/test_engines.py``, which checks this port against the real
   ``status.Compute`` on every case).
5. Otherwise ``Current`` ("Resource is current": "the absence of any known conditions means the
   resource is current").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Result:
    """What kstatus' ``Compute`` returns: a status and a message."""

    status: str
    message: str


def compute(obj: dict[str, Any], *, strict_ready: bool = True) -> Result:
    """Return kstatus' status for one custom resource (no cluster access, like ``Compute``)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return Result("Terminating", "Resource scheduled for deletion")

    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        kind = obj.get("kind", "")
        return Result(
            "InProgress",
            f"{kind} generation is {generation}, but latest observed generation is {observed}",
        )

    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return Result("InProgress", cond.get("message", ""))
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return Result("Failed", cond.get("message", ""))

    if strict_ready:
        for cond in conditions:
            if cond.get("type") != "Ready":
                continue
            if cond.get("status") == "True":
                return Result("Current", "Resource is Ready")
            if cond.get("status") in ("False", "Unknown"):
                return Result("InProgress", cond.get("message", ""))
    return Result("Current", "Resource is current")
