"""Table tests of connection resolution, label selectors and connection status (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from budai_operator.reconcile import conditions as c
from budai_operator.reconcile.connection import (
    ConnectionHealth,
    connection_status,
    resolve,
    selects,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TEAM = {"team": "a", "tier": "gold"}


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        (None, TEAM, False),
        ({}, {}, True),
        ({"matchLabels": {"team": "a"}}, TEAM, True),
        ({"matchLabels": {"team": "b"}}, TEAM, False),
        (
            {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]},
            TEAM,
            True,
        ),
        (
            {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]},
            TEAM,
            False,
        ),
        ({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]}, TEAM, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, TEAM, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, TEAM, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Bogus"}]}, TEAM, False),
    ],
)
def test_selects(selector: dict | None, labels: dict[str, str], selected: bool) -> None:  # type: ignore[type-arg]
    assert selects(selector, labels) is selected


def test_namespace_default_wins_over_cluster_default() -> None:
    r = resolve("a", None, TEAM, {("a", "default")}, {"default": {}})
    assert r.key == ("BudConnection", "a", "default")


def test_cluster_default_only_where_selected() -> None:
    cluster = {"default": {"matchLabels": {"team": "a"}}}
    assert resolve("a", None, TEAM, set(), cluster).key == ("ClusterBudConnection", "", "default")
    r = resolve("b", None, {"team": "b"}, set(), cluster)
    assert r.key is None
    assert "BudConnection named default in b" in r.message and "does not select" in r.message
    r = resolve("b", None, {}, set(), {})
    assert r.key is None and "does not exist" in r.message


def test_explicit_refs_resolve_only_within_reach() -> None:
    # Another namespace's BudConnection cannot be borrowed by naming it.
    r = resolve("b", {"kind": "BudConnection", "name": "team-a-key"}, {}, {("a", "team-a-key")}, {})
    assert r.key is None and "does not exist in namespace b" in r.message
    ok = resolve(
        "a", {"kind": "BudConnection", "name": "team-a-key"}, {}, {("a", "team-a-key")}, {}
    )
    assert ok.key == ("BudConnection", "a", "team-a-key")
    cluster = {"shared": {"matchLabels": {"team": "a"}}}
    ref = {"kind": "ClusterBudConnection", "name": "shared"}
    assert resolve("a", ref, TEAM, set(), cluster).key == ("ClusterBudConnection", "", "shared")
    assert resolve("b", ref, {"team": "b"}, set(), cluster).key is None
    assert (
        resolve("a", {"kind": "ClusterBudConnection", "name": "x"}, TEAM, set(), cluster).key
        is None
    )


def test_connection_status_ready_and_unauthorized() -> None:
    ok = connection_status(
        {},
        ConnectionHealth(True, "Connected", "the key works", "team-a", ("read", "admin")),
        ["BudModel/a/m2", "BudModel/a/m1"],
        3,
        NOW,
    )
    assert ok["project"] == "team-a" and ok["users"] == 2
    assert ok["usedBy"] == ["BudModel/a/m1", "BudModel/a/m2"]
    assert c.get(ok["conditions"], c.READY)["status"] == "True"  # type: ignore[index]
    bad = connection_status(ok, ConnectionHealth(False, "Unauthorized", "HTTP 401"), [], 3, NOW)
    stalled = c.get(bad["conditions"], c.STALLED)
    assert stalled is not None and stalled["status"] == "True"
    assert stalled["reason"] == "Unauthorized"
    assert bad["users"] == 0 and bad["project"] == "team-a"


def test_describe_and_parse_round_trip() -> None:
    from budai_operator.reconcile.connection import describe, parse

    for key in (("BudConnection", "a", "default"), ("ClusterBudConnection", "", "shared")):
        assert parse(describe(key)) == key
    assert parse("nonsense") is None and parse("BudConnection/x") is None


def test_a_resource_with_a_remote_object_keeps_its_connection() -> None:
    from budai_operator.reconcile.connection import Resolution, keep_pinned

    cluster = ("ClusterBudConnection", "", "default")
    own = ("BudConnection", "a", "default")
    # The namespace gained its own default: an existing object stays where it lives.
    moved = Resolution(own)
    kept = keep_pinned("ClusterBudConnection/default", True, moved, {cluster, own})
    assert kept.key == cluster
    # No remote object yet, or the pinned connection is no longer allowed: resolve afresh.
    assert keep_pinned("ClusterBudConnection/default", False, moved, {cluster, own}).key == own
    assert keep_pinned("ClusterBudConnection/default", True, moved, {own}).key == own
    # Nothing resolves and the pin is gone too: still no connection.
    none = Resolution(None, "no connection")
    assert keep_pinned("ClusterBudConnection/default", True, none, set()).key is None
