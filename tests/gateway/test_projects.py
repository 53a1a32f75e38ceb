"""Projects: every key is a tenant; another project's ids answer exactly like ids that never
existed, on every verb and every reference inside a body; clusters are shared."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import assert_error, wait_for, wait_status

KEY_A = "bud_test_a_" + secrets.token_hex(8)
KEY_B = "bud_test_b_" + secrets.token_hex(8)
KEY_B_READ = "bud_test_bread_" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def pgw() -> Iterator[LocalGateway]:
    config = {
        "api_keys": [
            {"key": KEY_A, "scope": "admin", "name": "team-a", "project": "team-a"},
            {"key": KEY_B, "scope": "admin", "name": "team-b", "project": "team-b"},
            {"key": KEY_B_READ, "scope": "read", "name": "team-b-ro", "project": "team-b"},
        ]
    }
    with LocalGateway(speed=50, config=config) as g:
        yield g


@pytest.fixture
def a(pgw: LocalGateway) -> Iterator[httpx.Client]:
    pgw.reset()
    with pgw.client(KEY_A) as c:
        yield c


@pytest.fixture
def b(pgw: LocalGateway) -> Iterator[httpx.Client]:
    with pgw.client(KEY_B) as c:
        yield c


def _fake(real_id: str) -> str:
    """An id of the same shape and length that never existed."""
    prefix, _, rest = real_id.partition("_")
    return f"{prefix}_{'0' * len(rest)}"


def same_as_missing(r: httpx.Response, missing: httpx.Response, real: str, fake: str) -> None:
    """``r`` (a foreign id) is indistinguishable from ``missing`` (an id that never existed)."""
    assert r.status_code == missing.status_code == 404, (r.text, missing.text)
    got, want = r.json()["error"], missing.json()["error"]
    for k in ("type", "code", "param"):
        assert got[k] == want[k], (got, want)
    assert got["message"].replace(real, fake) == want["message"]
    assert len(r.content) - len(missing.content) == len(got["request_id"]) - len(want["request_id"])


def test_whoami_names_project_and_scopes_never_the_key(pgw: LocalGateway) -> None:
    for key, project, scopes in (
        (KEY_A, "team-a", ["read", "admin"]),
        (KEY_B_READ, "team-b", ["read"]),
        (pgw.api_key, "default", ["read", "admin", "local"]),
    ):
        with pgw.client(key) as c:
            r = c.get("/whoami")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["project"] == project and body["scopes"] == scopes, body
        assert key not in r.text


def test_foreign_ids_answer_like_missing_ids_on_every_verb(
    a: httpx.Client, b: httpx.Client
) -> None:
    model = a.post("/models", json={"name": "shared-name", "source": "cloud", "uri": "x"}).json()
    pipe = a.post(
        "/pipelines",
        json={"name": "p", "definition": {"steps": [{"id": "s", "action": "log", "params": {}}]}},
    ).json()
    cluster = a.get("/clusters").json()["data"][0]["id"]
    dep = a.post("/deployments", json={"model_id": model["id"], "cluster_id": cluster}).json()
    run = a.post("/executions", json={"pipeline_id": pipe["id"]}).json()
    cases: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("GET", "/models/{}", model["id"], None),
        ("PATCH", "/models/{}", model["id"], {"metadata": {"owner": "b"}}),
        ("DELETE", "/models/{}", model["id"], None),
        ("GET", "/deployments/{}", dep["id"], None),
        ("PATCH", "/deployments/{}", dep["id"], {"replicas": 3}),
        ("POST", "/deployments/{}/stop", dep["id"], None),
        ("POST", "/deployments/{}/start", dep["id"], None),
        ("DELETE", "/deployments/{}", dep["id"], None),
        ("GET", "/pipelines/{}", pipe["id"], None),
        ("PATCH", "/pipelines/{}", pipe["id"], {"status": "paused"}),
        ("DELETE", "/pipelines/{}", pipe["id"], None),
        ("GET", "/executions/{}", run["id"], None),
        ("POST", "/executions/{}/cancel", run["id"], None),
    ]
    for method, path, real, body in cases:
        fake = _fake(real)
        r = b.request(method, path.format(real), json=body)
        missing = b.request(method, path.format(fake), json=body)
        same_as_missing(r, missing, real, fake)
    # References inside a body.
    for path, field, real, body in (
        ("/deployments", "model_id", model["id"], {"cluster_id": cluster}),
        ("/executions", "pipeline_id", pipe["id"], {}),
    ):
        fake = _fake(real)
        r = b.post(path, json={**body, field: real})
        missing = b.post(path, json={**body, field: fake})
        same_as_missing(r, missing, real, fake)
        assert_error(r, 404, "not_found_error", param=field)
    # Nothing of team-a changed.
    assert a.get(f"/models/{model['id']}").json()["metadata"] == {}
    assert a.get(f"/pipelines/{pipe['id']}").json()["status"] == "active"
    got = a.get(f"/deployments/{dep['id']}").json()
    assert got["replicas"] == 1 and got["status"] != "stopped"


def test_lists_names_and_cursors_are_per_project(a: httpx.Client, b: httpx.Client) -> None:
    ma = a.post("/models", json={"name": "same", "source": "cloud", "uri": "x"})
    assert ma.status_code == 201, ma.text
    # Names are unique per project: team-b may use the same name, team-a may not twice.
    mb = b.post("/models", json={"name": "same", "source": "cloud", "uri": "y"})
    assert mb.status_code == 201, mb.text
    assert_error(
        a.post("/models", json={"name": "same", "source": "cloud", "uri": "z"}),
        409,
        "conflict_error",
        "already_exists",
    )
    assert [m["id"] for m in b.get("/models").json()["data"]] == [mb.json()["id"]]
    assert [m["id"] for m in b.get("/models", params={"name": "same"}).json()["data"]] == [
        mb.json()["id"]
    ]
    foreign, fake = ma.json()["id"], _fake(ma.json()["id"])
    r = b.get("/models", params={"after": foreign})
    missing = b.get("/models", params={"after": fake})
    assert r.status_code == missing.status_code == 400
    assert r.json()["error"]["message"].replace(foreign, fake) == missing.json()["error"]["message"]
    # Clusters are shared capacity: both projects see the same ones.
    assert a.get("/clusters").json()["data"] == b.get("/clusters").json()["data"]


def test_pipeline_actions_only_reach_their_own_project(a: httpx.Client, b: httpx.Client) -> None:
    model = a.post("/models", json={"name": "victim", "source": "cloud", "uri": "x"}).json()
    cluster = a.get("/clusters").json()["data"][0]["id"]
    dep = a.post("/deployments", json={"model_id": model["id"], "cluster_id": cluster}).json()
    steps = [
        {"id": "del", "action": "model_delete", "params": {"model_id": model["id"]}},
        {
            "id": "scale",
            "action": "deployment_scale",
            "params": {"deployment_id": dep["id"], "replicas": 4},
        },
        {
            "id": "deploy",
            "action": "deployment_create",
            "params": {"model_id": model["id"], "cluster_id": cluster},
        },
        {"id": "drop", "action": "deployment_delete", "params": {"deployment_id": dep["id"]}},
    ]
    pipe = b.post(
        "/pipelines",
        json={"name": "attack", "definition": {"steps": steps}},
    )
    assert pipe.status_code == 201, pipe.text
    run = b.post("/executions", json={"pipeline_id": pipe.json()["id"]}).json()
    done = wait_status(b, f"/executions/{run['id']}", {"completed", "failed"})
    assert done["status"] == "failed", done
    for sid in ("del", "scale", "deploy", "drop"):
        step = done["steps"][sid]
        assert step["status"] in ("failed", "skipped", "cancelled"), step
        if step["status"] == "failed":
            assert "not_found" in (step["error"] or ""), step
    assert a.get(f"/models/{model['id']}").json()["status"] == "available"
    got = a.get(f"/deployments/{dep['id']}").json()
    assert got["replicas"] == 1
    assert b.get("/deployments").json()["data"] == []


def test_chat_does_not_reach_another_projects_deployment(a: httpx.Client, b: httpx.Client) -> None:
    model = a.post("/models", json={"name": "chatty", "source": "cloud", "uri": "x"}).json()
    cluster = a.get("/clusters").json()["data"][0]["id"]
    dep = a.post(
        "/deployments", json={"model_id": model["id"], "cluster_id": cluster, "name": "chat-a"}
    ).json()
    wait_status(a, f"/deployments/{dep['id']}", {"active"})
    msg = {"messages": [{"role": "user", "content": "hi"}]}
    assert a.post("/chat/completions", json={"model": "chat-a", **msg}).status_code == 200
    for name in ("chat-a", "chatty", model["id"]):
        r = b.post("/chat/completions", json={"model": name, **msg})
        missing = b.post("/chat/completions", json={"model": "never-" + name, **msg})
        assert r.status_code == missing.status_code == 404, r.text
        assert r.json()["error"]["code"] == missing.json()["error"]["code"]


def test_local_controls_need_the_local_scope(pgw: LocalGateway, a: httpx.Client) -> None:
    r = httpx.get(pgw.root_url + "/_local/faults", headers={"Authorization": f"Bearer {KEY_A}"})
    err = assert_error(r, 403, "permission_error", "insufficient_scope")
    assert re.search(r"needs 'local'", err["message"]), err
    ok = httpx.get(pgw.root_url + "/_local/faults", headers=pgw.headers)
    assert ok.status_code == 200, ok.text


def test_capacity_is_shared_across_projects(
    pgw: LocalGateway, a: httpx.Client, b: httpx.Client
) -> None:
    """One project's deployments use cluster room the other project then cannot take."""
    cluster = next(c for c in a.get("/clusters").json()["data"] if c["name"] == "local-cpu")
    free = b.get(f"/clusters/{cluster['id']}/health").json()["available_resources"]["cpu"]
    model = a.post("/models", json={"name": "big", "source": "cloud", "uri": "x"}).json()
    dep = a.post(
        "/deployments",
        json={"model_id": model["id"], "cluster_id": cluster["id"], "resources": {"cpu": "4"}},
    ).json()
    wait_status(a, f"/deployments/{dep['id']}", {"active"})
    wait_for(
        lambda: (
            b.get(f"/clusters/{cluster['id']}/health").json()["available_resources"]["cpu"] != free
        )
    )


def test_a_database_from_before_projects_belongs_to_default(tmp_path: Any) -> None:
    import json
    import sqlite3

    from budai_gateway.store import Store
    from budai_gateway.tenancy import acting_for

    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE objects (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,"
        " kind TEXT NOT NULL, data TEXT NOT NULL, internal TEXT NOT NULL DEFAULT '{}')"
    )
    doc = {"id": "model_old", "name": "old"}
    conn.execute("INSERT INTO objects(id, kind, data) VALUES ('model_old', 'model', ?)",
                 (json.dumps(doc),))  # fmt: skip
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        with acting_for("default"):
            assert store.get("model", "model_old") == doc
        with acting_for("team-x"):
            assert store.get("model", "model_old") is None
            assert store.find("model", "name", "old") == []
    finally:
        store.close()
