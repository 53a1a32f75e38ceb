"""Forwarding: metadata names a configured upstream and nothing else; no secret leaves."""

from __future__ import annotations

import httpx

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import assert_error, cluster_ids, wait_status
from tests.gateway.hostile.conftest import UPSTREAM_KEY, Attacker, snapshot, watch


def _serve(admin: httpx.Client, name: str, metadata: dict[str, str]) -> None:
    m = admin.post(
        "/models", json={"name": name, "source": "cloud", "uri": "x", "metadata": metadata}
    )
    assert m.status_code == 201, m.text
    cid = cluster_ids(admin)["local-cpu"]
    d = admin.post(
        "/deployments", json={"model_id": m.json()["id"], "cluster_id": cid, "name": name}
    )
    assert d.status_code == 201, d.text
    wait_status(admin, f"/deployments/{d.json()['id']}", {"active"})


def test_metadata_cannot_choose_a_url_an_env_var_or_a_file(
    hgw: LocalGateway, admin: httpx.Client
) -> None:
    before = snapshot(admin)
    with watch(hgw):
        for field in ("upstream_url", "upstream_api_key_env", "upstream_api_key_file"):
            body = {
                "name": "evil",
                "source": "cloud",
                "uri": "x",
                "metadata": {field: "BUD_API_KEY"},
            }
            err = assert_error(
                admin.post("/models", json=body),
                422,
                "validation_error",
                "invalid_value",
                f"metadata.{field}",
            )
            assert "metadata.upstream" in err["message"]
        err = assert_error(
            admin.post(
                "/models",
                json={
                    "name": "evil",
                    "source": "cloud",
                    "uri": "x",
                    "metadata": {"upstream": "nowhere"},
                },
            ),
            422,
            "validation_error",
            "unknown_upstream",
            "metadata.upstream",
        )
        assert "target" in err["message"]
    assert snapshot(admin) == before
    m = admin.post("/models", json={"name": "ok", "source": "cloud", "uri": "x"}).json()
    r = admin.patch(f"/models/{m['id']}", json={"metadata": {"upstream_url": "http://x"}})
    assert_error(r, 422, "validation_error", "invalid_value", "metadata.upstream_url")
    assert admin.get(f"/models/{m['id']}").json()["metadata"] == {}


def test_a_read_key_forwards_only_with_the_configured_key(
    hgw: LocalGateway, admin: httpx.Client, reader: httpx.Client, attacker: Attacker
) -> None:
    _serve(admin, "fwd", {"upstream": "target", "upstream_model": "tiny"})
    attacker.requests.clear()
    with watch(hgw):
        r = reader.post(
            "/chat/completions",
            json={"model": "fwd", "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "hi"
    sent = attacker.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"].get("authorization") == f"Bearer {UPSTREAM_KEY}"
    text = repr(sent)
    assert hgw.api_key not in text and hgw.read_key not in text


def test_upstream_errors_are_summarised_not_echoed(
    hgw: LocalGateway, admin: httpx.Client, reader: httpx.Client
) -> None:
    _serve(admin, "fwd", {"upstream": "target"})
    with watch(hgw):
        body = {"model": "fwd", "messages": [{"role": "user", "content": "fail"}]}
        err = assert_error(
            reader.post("/chat/completions", json=body), 502, "server_error", "upstream_error"
        )
        assert err["message"] == "Upstream 'target' answered HTTP 500."
        r = reader.post("/chat/completions", json={**body, "stream": True})
        assert_error(r, 502, "server_error", "upstream_error")
        assert "SECRET-ECHO" not in r.text
        huge = {"model": "fwd", "messages": [{"role": "user", "content": "huge"}]}
        err = assert_error(
            reader.post("/chat/completions", json=huge), 502, "server_error", "upstream_error"
        )
        assert "limits.upstream_max_response_bytes" in err["message"]


def test_loopback_by_name_and_the_gateway_itself_are_refused(
    hgw: LocalGateway, admin: httpx.Client, reader: httpx.Client, attacker: Attacker
) -> None:
    _serve(admin, "sneaky", {"upstream": "sneaky"})
    _serve(admin, "itself", {"upstream": "itself"})
    before = snapshot(admin)
    attacker.requests.clear()
    with watch(hgw):
        msgs = [{"role": "user", "content": "x"}]
        err = assert_error(
            reader.post("/chat/completions", json={"model": "sneaky", "messages": msgs}),
            502,
            "server_error",
            "upstream_refused",
        )
        assert "allow_loopback" in err["message"]
        for stream in (False, True):
            err = assert_error(
                reader.post(
                    "/chat/completions",
                    json={"model": "itself", "messages": msgs, "stream": stream},
                ),
                502,
                "server_error",
                "upstream_refused",
            )
            assert "this gateway" in err["message"]
    assert attacker.requests == []
    assert snapshot(admin) == before  # nothing reached /_local/reset
