"""The HTTP surface: chat bounds, auth before the body, slow and half-open clients, nesting,
file modes, the generated key, and idempotency records committed with their object."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from budai_gateway.testing import LocalGateway, free_port
from tests.gateway.conftest import assert_error, make_active_deployment
from tests.gateway.hostile.conftest import snapshot, watch


def _raw(gw: LocalGateway, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes and read what comes back until the gateway closes or ``wait`` passes."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and b'"request_id"' in out:
                    break
        except TimeoutError:
            pass
        return out


def test_chat_bounds(hgw: LocalGateway, admin: httpx.Client, reader: httpx.Client) -> None:
    make_active_deployment(admin, "echo")
    msgs = [{"role": "user", "content": "x"}]
    before = snapshot(admin)
    with watch(hgw):
        for body, param, limit in [
            ({"n": 16}, "n", "limits.chat_max_n"),
            ({"max_tokens": 100_000}, "max_tokens", "limits.chat_max_tokens"),
            (
                {"messages": [{"role": "user", "content": "p" * 100_001}]},
                "messages",
                "limits.chat_max_prompt_bytes",
            ),
        ]:
            r = reader.post("/chat/completions", json={"model": "echo", "messages": msgs, **body})
            err = assert_error(r, 422, "validation_error", "invalid_value", param)
            assert limit in err["message"]
        # The largest request the limits allow: the reply stays within chat_max_reply_bytes.
        big = {
            "model": "echo",
            "n": 4,
            "stream": True,
            "messages": [{"role": "user", "content": "word " * 19_000}],
        }
        size = 0
        with reader.stream("POST", "/chat/completions", json=big) as s:
            assert s.status_code == 200
            last = b""
            for chunk in s.iter_bytes():
                size += len(chunk)
                last = chunk
        assert size <= 65_536 + 1024 and last.endswith(b"data: [DONE]\n\n")
        plain = reader.post("/chat/completions", json={**big, "stream": False})
        assert plain.status_code == 200
        assert sum(len(c["message"]["content"]) for c in plain.json()["choices"]) <= 65_536
        assert plain.json()["choices"][-1]["finish_reason"] == "length"
    assert snapshot(admin) == before


def test_auth_and_scope_come_before_the_body(hgw: LocalGateway, admin: httpx.Client) -> None:
    before = snapshot(admin)
    with watch(hgw):
        for auth, code in [
            (b"", b"401"),
            (b"Authorization: Bearer nope\r\n", b"401"),
            (f"Authorization: Bearer {hgw.read_key}\r\n".encode(), b"403"),
        ]:
            # Content-Length promises a body that never comes: had the gateway waited for it,
            # the answer would be a 408 (limits.body_timeout_seconds), not the refusal.
            out = _raw(
                hgw,
                b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\n" + auth + b"Content-Length: 500000\r\n\r\n",
            )
            assert out.startswith(b"HTTP/1.1 " + code), out[:200]
    assert snapshot(admin) == before


def test_a_slow_body_times_out(hgw: LocalGateway, admin: httpx.Client) -> None:
    before = snapshot(admin)
    with watch(hgw):
        out = _raw(
            hgw,
            b"POST /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + hgw.api_key.encode()
            + b"\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"name": ',
            wait=5,
        )
    assert out.startswith(b"HTTP/1.1 408"), out[:200]
    assert b"limits.body_timeout_seconds" in out
    assert snapshot(admin) == before


def test_failed_authentication_is_rate_limited(hgw: LocalGateway, admin: httpx.Client) -> None:
    assert admin.get("/models").status_code == 200  # this key has worked from this address
    with watch(hgw), httpx.Client(base_url=hgw.url, timeout=5) as anon:
        codes = [
            anon.get("/models", headers={"Authorization": f"Bearer guess{i}"}).status_code
            for i in range(60)
        ]
        assert codes[:20] == [401] * 20 and 429 in codes[20:]
        r = anon.get("/models", headers={"Authorization": "Bearer guess"})
        err = assert_error(r, 429, "rate_limit_error", "too_many_failed_authentications")
        assert int(r.headers["retry-after"]) >= 1 and "retry in" in err["message"]
        # The same address (one operator serving many tenants) with a key that already worked
        # is not locked out by another tenant's wrong key.
        assert admin.get("/models").status_code == 200
    time.sleep(1.0)  # the bucket refills (5/s in the hostile config)
    assert admin.get("/models").status_code == 200


def test_slowloris_and_half_open_connections_are_closed(
    hgw: LocalGateway, admin: httpx.Client
) -> None:
    with watch(hgw):
        slow = socket.create_connection(("127.0.0.1", hgw.port), timeout=5)
        t0 = time.monotonic()
        closed_at = None
        for ch in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                slow.sendall(bytes([ch]))
                slow.settimeout(0.15)
                if slow.recv(1) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic() - t0
                break
        # Closed before the headers were complete (sending them all takes ~18 s).
        assert closed_at is not None, "the slow connection stayed open"
        idle = [socket.create_connection(("127.0.0.1", hgw.port)) for _ in range(300)]
        time.sleep(0.3)
        open_now = 0
        for s in idle:
            s.setblocking(False)
            try:
                open_now += s.recv(1) != b""
            except BlockingIOError:
                open_now += 1
            except OSError:
                pass
        assert open_now <= 32  # limits.max_half_open_connections
        assert admin.get("/models").status_code == 200
        time.sleep(1.5)
        for s in idle:
            s.setblocking(True)
            s.settimeout(0.5)
            try:
                data = s.recv(1)
            except OSError:
                data = b""  # reset: closed too
            assert data == b""
            s.close()
        slow.close()


def test_nesting_deeper_than_the_limit_is_422(hgw: LocalGateway, admin: httpx.Client) -> None:
    before = snapshot(admin)
    with watch(hgw):
        meta: object = 1
        for _ in range(40):
            meta = {"a": meta}
        r = admin.post(
            "/models", json={"name": "deep", "source": "cloud", "uri": "x", "metadata": meta}
        )
        err = assert_error(r, 422, "validation_error", "invalid_body")
        assert "limits.max_json_depth" in err["message"]
        for cond in ["(" * 300 + "1" + ")" * 300, "not " * 600 + "1", "-" * 900 + "1"]:
            body = {
                "name": "deep",
                "definition": {
                    "steps": [
                        {
                            "id": "t",
                            "action": "transform",
                            "params": {"value": 1},
                            "condition": cond,
                        }
                    ]
                },
            }
            err = assert_error(
                admin.post("/pipelines", json=body), 422, "validation_error", "invalid_definition"
            )
            assert "nests deeper than 64 levels (limits.max_expression_depth)" in err["message"]
        r = admin.post(
            "/pipelines/validate",
            json={
                "definition": {
                    "steps": [
                        {
                            "id": "t",
                            "action": "transform",
                            "params": {"value": "{{ " + "(" * 200 + "1" + ")" * 200 + " }}"},
                        }
                    ]
                }
            },
        )
        assert r.status_code == 200 and r.json()["valid"] is False
        assert "limits.max_expression_depth" in r.json()["errors"][0]["message"]
    assert snapshot(admin) == before
    # A long attribute chain parses without recursion, and is refused all the same.
    chain = "{{ params" + ".a" * 900 + " }}"
    body = {
        "name": "chain",
        "definition": {"steps": [{"id": "t", "action": "transform", "params": {"value": chain}}]},
    }
    err = assert_error(
        admin.post("/pipelines", json=body), 422, "validation_error", "invalid_definition"
    )
    assert "limits.max_expression_depth" in err["message"]


def test_database_and_generated_key_are_private_and_the_key_survives(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BUD_API_KEY"}
    cmd = [
        sys.executable,
        "-m",
        "budai_gateway",
        "serve",
        "--port",
        str(port),
        "--db",
        str(db),
        "--log-level",
        "warning",
    ]

    def start() -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"log{time.monotonic_ns()}"
        proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return proc, log
            except httpx.HTTPError:
                time.sleep(0.05)
        proc.kill()
        raise AssertionError(log.read_text())

    proc, log = start()
    try:
        key_file = Path(str(db) + ".key")
        key = key_file.read_text().strip()
        assert key.startswith("bud_local_") and key in log.read_text()
        for path in (db, key_file, Path(str(db) + "-wal")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=auth).status_code == 200
    finally:
        proc.kill()
        proc.wait(10)
    proc, log = start()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=auth).status_code == 200
        text = log.read_text()
        assert key not in text and f"using the admin key saved in {key_file}" in text
    finally:
        proc.kill()
        proc.wait(10)


def test_an_object_and_its_idempotency_record_commit_together(
    hgw: LocalGateway, admin: httpx.Client
) -> None:
    idem = str(uuid.uuid4())
    body = {"name": "once", "source": "cloud", "uri": "x"}
    r = admin.post("/models", json=body, headers={"Idempotency-Key": idem})
    assert r.status_code == 201
    made = r.json()["id"]
    # Put the record back in the state it has between the object's commit and the response
    # being stored (what a crash there leaves behind): the retry must find the object.
    with sqlite3.connect(hgw.db_path) as db:
        row = db.execute(
            "SELECT status, headers FROM idempotency WHERE idem_key = ?", (idem,)
        ).fetchone()
        assert row[0] == 201
        db.execute(
            "UPDATE idempotency SET status = 0, headers = ?, body = x'' WHERE idem_key = ?",
            (json.dumps({"object_id": made}), idem),
        )
    again = admin.post("/models", json=body, headers={"Idempotency-Key": idem})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == made
    assert [m["id"] for m in admin.get("/models").json()["data"]] == [made]
