"""Prometheus metrics of the operator (served on the metrics port by `budai_operator.cli`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import Counter, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

RECONCILES = Counter(
    "bud_operator_reconciles_total",
    "Reconciles by kind and result (success, error, stalled, paused)",
    ["kind", "result"],
)
RECONCILE_SECONDS = Histogram(
    "bud_operator_reconcile_duration_seconds",
    "Duration of one reconcile",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GATEWAY_REQUESTS = Counter(
    "bud_operator_gateway_requests_total",
    "Requests sent to the Bud gateway by endpoint, method, status (0: no response) and connection",
    ["endpoint", "method", "status", "connection"],
)
RATE_LIMIT_WAIT = Histogram(
    "bud_operator_rate_limiter_wait_seconds",
    "Time a gateway request waited for a token",
    buckets=(0, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30),
)


class ObjectsCollector(Collector):
    """`bud_operator_objects{kind, ready}` computed at scrape time from the operator's registry."""

    def __init__(self, source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "bud_operator_objects",
            "Custom resources by kind and Ready status",
            labels=["kind", "ready"],
        )
        for (kind, ready), count in sorted(self._source().items()):
            family.add_metric([kind, ready], count)
        yield family


def register_objects(source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
    """Expose object counts (once per process)."""
    REGISTRY.register(ObjectsCollector(source))


def endpoint_of(path: str) -> str:
    """A low-cardinality endpoint label: ids replaced by `{id}` (`/models/{id}`)."""
    parts = []
    for part in path.split("?")[0].strip("/").split("/"):
        if part == "v1":
            continue
        parts.append("{id}" if "_" in part and part.split("_")[0] in _ID_PREFIXES else part)
    return "/" + "/".join(parts)


_ID_PREFIXES = {"model", "dep", "cluster", "pipe", "exec"}
