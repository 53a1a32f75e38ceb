"""A small real HTTP server for SDK tests: scripted replies, request recording, and a tiny
in-memory implementation of the contract (``FakeBud``) for end-to-end flows.

It listens on a free loopback port (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive), so the
SDK talks to it over a real socket. Scripted replies (``server.script(...)``) are consumed in
order before the routes are consulted, which is how tests produce status sequences, Retry-After
headers, non-JSON bodies, slow responses and connection resets on purpose.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "sk-test-0123456789abcdef"
READ_KEY = "sk-read-0123456789abcdef"


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """A scripted response. ``sse`` sends an event stream (dicts, or raw strings such as
    ``"[DONE]"``); ``reset`` aborts the connection with a TCP RST instead of answering."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    sse: list[Any] | None = None
    sse_gap: float = 0.0
    reset: bool = False


Handler = Callable[[Recorded], Reply]


def error_reply(status: int, type_: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": {"message": message, "type": type_, **extra}})


class ScriptedServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._scripts: dict[tuple[str, str], deque[Reply]] = {}
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                outer._serve(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for ``method path`` (path without the ``/v1`` prefix)."""
        with self._lock:
            self._scripts.setdefault((method, path), deque()).extend(replies)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # --- serving ---

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path = split.path.removeprefix("/v1")
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = Recorded(
            method=h.command,
            path=path,
            query={k: v[-1] for k, v in parse_qs(split.query).items()},
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(rec)
            queue = self._scripts.get((rec.method, path))
            reply = queue.popleft() if queue else None
        if reply is None:
            reply = self._dispatch(rec)
        self._write(h, rec, reply)

    def _dispatch(self, rec: Recorded) -> Reply:
        for method, pattern, handler in self._routes:
            if method == rec.method and pattern.match(rec.path):
                return handler(rec)
        return error_reply(404, "not_found_error", f"no route for {rec.method} {rec.path}")

    def _write(self, h: BaseHTTPRequestHandler, rec: Recorded, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.reset:
            # SO_LINGER 0 makes close() send a RST: the client sees a connection reset.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return
        request_id = rec.headers.get("x-request-id") or f"req_{next(self._ids):06d}"
        headers = {
            "X-Request-ID": request_id,
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "999",
            "X-RateLimit-Reset": str(int(time.time()) + 60),
            **reply.headers,
        }
        h.send_response(reply.status)
        for k, v in headers.items():
            h.send_header(k, v)
        if reply.sse is not None:
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Connection", "close")
            h.end_headers()
            for event in reply.sse:
                data = event if isinstance(event, str) else json.dumps(event)
                h.wfile.write(f"data: {data}\n\n".encode())
                h.wfile.flush()
                if reply.sse_gap:
                    time.sleep(reply.sse_gap)
            h.close_connection = True
            return
        if reply.body is not None:
            payload = reply.body
        elif reply.json is not None:
            payload = json.dumps(reply.json).encode()
            h.send_header("Content-Type", "application/json")
        else:
            payload = b""
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)


# --- a tiny stateful implementation of the contract --------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeBud:
    """Enough of the gateway for end-to-end SDK flows: auth, CRUD, cursor pagination,
    idempotency replay, chat (plain and streamed) and executions that finish after a few polls."""

    def __init__(self, server: ScriptedServer, polls_to_finish: int = 2) -> None:
        self.server = server
        self.polls_to_finish = polls_to_finish
        self.store: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in ("models", "deployments", "clusters", "pipelines", "executions")
        }
        self._idem: dict[str, tuple[bytes, Reply]] = {}
        self._polls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.store["clusters"]["cluster_prod"] = {
            "id": "cluster_prod", "name": "prod", "provider": "onpremise", "region": "local",
            "status": "active", "node_count": 2, "kubernetes_version": "1.31.0",
            "created_at": _now(),
        }
        self.store["models"]["model_abc"] = {
            "id": "model_abc", "name": "llama-3.2-1b", "source": "hugging_face",
            "uri": "meta-llama/Llama-3.2-1B", "size_bytes": 2_000_000_000, "status": "available",
            "metadata": {}, "created_at": _now(), "updated_at": _now(),
            "progress_percent": None, "error": None,
        }
        r = server.route
        for coll in self.store:
            r("GET", f"/{coll}", self._auth(lambda rec, c=coll: self._list(c, rec)))
            r("GET", f"/{coll}/[^/]+", self._auth(lambda rec, c=coll: self._get(c, rec)))
        r("POST", "/models", self._write(self._create_model))
        r("POST", "/deployments", self._write(self._create_deployment))
        r("PATCH", "/deployments/[^/]+", self._write(self._patch_deployment))
        r("POST", "/deployments/[^/]+/(stop|start)", self._write(self._stop_start))
        r("DELETE", "/(models|deployments|pipelines)/[^/]+", self._write(self._delete))
        r("POST", "/pipelines", self._write(self._create_pipeline))
        r("POST", "/pipelines/validate", self._auth(self._validate))
        r("POST", "/executions", self._write(self._create_execution))
        r("POST", "/executions/[^/]+/cancel", self._write(self._cancel))
        r("GET", "/clusters/[^/]+/health", self._auth(self._health))
        r("POST", "/chat/completions", self._write(self._chat))
        r("GET", "/health", lambda rec: Reply(200, {"status": "ok", "version": "fake"}))

    # --- plumbing ---

    def _auth(self, fn: Handler) -> Handler:
        def wrapped(rec: Recorded) -> Reply:
            key = rec.headers.get("authorization", "").removeprefix("Bearer ")
            if key not in (API_KEY, READ_KEY):
                return error_reply(401, "authentication_error", "invalid API key")
            if key == READ_KEY and rec.method != "GET" and not rec.path.endswith("/validate"):
                return error_reply(403, "permission_error", "this key is read-only")
            return fn(rec)

        return wrapped

    def _write(self, fn: Handler) -> Handler:
        def idempotent(rec: Recorded) -> Reply:
            key = rec.headers.get("idempotency-key")
            if key and key in self._idem:
                body, reply = self._idem[key]
                if body != rec.body:
                    return error_reply(
                        409, "conflict_error", "key reused", code="idempotency_key_reused"
                    )
                return reply
            reply = fn(rec)
            if key:
                self._idem[key] = (rec.body, reply)
            return reply

        return self._auth(idempotent)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    def _missing(self, coll: str, obj_id: str) -> Reply:
        return error_reply(404, "not_found_error", f"{coll[:-1]} {obj_id} not found",
                           code=f"{coll[:-1]}_not_found", param="id")

    # --- handlers ---

    def _list(self, coll: str, rec: Recorded) -> Reply:
        items = list(self.store[coll].values())
        filters = {k: v for k, v in rec.query.items() if k not in ("limit", "after")}
        items = [i for i in items if all(str(i.get(k)) == v for k, v in filters.items())]
        limit = int(rec.query.get("limit", 20))
        start = 0
        if "after" in rec.query:
            ids = [i["id"] for i in items]
            start = ids.index(rec.query["after"]) + 1
        page = items[start : start + limit]
        has_more = start + limit < len(items)
        return Reply(200, {"object": "list", "data": page, "has_more": has_more,
                           "next_cursor": page[-1]["id"] if has_more and page else None})

    def _get(self, coll: str, rec: Recorded) -> Reply:
        obj_id = rec.path.split("/")[2]
        obj = self.store[coll].get(obj_id)
        if obj is None:
            return self._missing(coll, obj_id)
        if coll == "executions":
            self._advance(obj)
        elif coll == "models" and obj["status"] == "downloading":
            obj.update(status="available", progress_percent=None, size_bytes=1_000_000)
        elif coll == "deployments" and obj["status"] in ("pending", "deploying", "scaling"):
            obj.update(status="active", ready_replicas=obj["replicas"],
                       endpoint_url=f"{self.server.url}/deployments/{obj['id']}")
        return Reply(200, obj)

    def _create_model(self, rec: Recorded) -> Reply:
        b = rec.json
        obj = {"id": self.new_id("model"), "size_bytes": 0, "status": "downloading",
               "metadata": {}, "created_at": _now(), "updated_at": _now(),
               "progress_percent": 0.0, "error": None, **b}
        self.store["models"][obj["id"]] = obj
        return Reply(201, obj)

    def _create_deployment(self, rec: Recorded) -> Reply:
        b = rec.json
        if b["model_id"] not in self.store["models"]:
            return self._missing("models", b["model_id"])
        obj = {"id": self.new_id("dep"), "name": b.get("name") or "deployment",
               "status": "pending", "replicas": 1, "endpoint_url": "",
               "auto_scaling": None, "resources": {"cpu": "1", "memory": "2Gi"},
               "created_at": _now(), "updated_at": _now(), "ready_replicas": 0, "error": None,
               **b}
        self.store["deployments"][obj["id"]] = obj
        return Reply(201, obj)

    def _patch_deployment(self, rec: Recorded) -> Reply:
        obj = self.store["deployments"].get(rec.path.split("/")[2])
        if obj is None:
            return self._missing("deployments", rec.path.split("/")[2])
        obj.update(rec.json or {})
        obj["status"] = "scaling"
        return Reply(200, obj)

    def _stop_start(self, rec: Recorded) -> Reply:
        _, _, dep_id, action = rec.path.split("/")
        obj = self.store["deployments"].get(dep_id)
        if obj is None:
            return self._missing("deployments", dep_id)
        obj["status"] = "stopped" if action == "stop" else "deploying"
        return Reply(200, obj)

    def _delete(self, rec: Recorded) -> Reply:
        _, coll, obj_id = rec.path.split("/")
        obj = self.store[coll].pop(obj_id, None)
        if obj is None:
            return self._missing(coll, obj_id)
        if coll == "pipelines":
            return Reply(204)
        return Reply(202, {**obj, "status": "deleting"})

    def _create_pipeline(self, rec: Recorded) -> Reply:
        b = rec.json
        for p in self.store["pipelines"].values():
            if p["name"] == b["name"]:
                reply = error_reply(409, "conflict_error", "name exists", code="already_exists",
                                    param="name")
                reply.headers["Location"] = f"/v1/pipelines/{p['id']}"
                return reply
        obj = {"id": self.new_id("pipe"), "description": None, "status": "active",
               "created_at": _now(), "updated_at": _now(), **b}
        self.store["pipelines"][obj["id"]] = obj
        return Reply(201, obj)

    def _validate(self, rec: Recorded) -> Reply:
        steps = (rec.json or {}).get("definition", {}).get("steps", [])
        ids = {s.get("id") for s in steps}
        errors = [
            {"param": f"definition.steps[{i}].depends_on[{j}]", "message": f"unknown step {d}"}
            for i, s in enumerate(steps)
            for j, d in enumerate(s.get("depends_on") or [])
            if d not in ids
        ]
        return Reply(200, {"valid": not errors, "errors": errors})

    def _create_execution(self, rec: Recorded) -> Reply:
        b = rec.json
        pipe = self.store["pipelines"].get(b["pipeline_id"])
        if pipe is None:
            return self._missing("pipelines", b["pipeline_id"])
        steps = {
            s["id"]: {"id": s["id"], "action": s["action"], "status": "pending", "output": None,
                      "error": None, "started_at": None, "completed_at": None,
                      "duration_seconds": None, "attempts": 0}
            for s in pipe["definition"]["steps"]
        }
        obj = {"id": self.new_id("exec"), "pipeline_id": pipe["id"], "status": "pending",
               "params": b.get("params") or {}, "started_at": None, "completed_at": None,
               "duration_seconds": None, "outputs": {}, "steps": steps, "error": None,
               "created_at": _now()}
        self.store["executions"][obj["id"]] = obj
        self._polls[obj["id"]] = 0
        return Reply(201, obj)

    def _advance(self, ex: dict[str, Any]) -> None:
        if ex["status"] in ("completed", "failed", "cancelled"):
            return
        self._polls[ex["id"]] += 1
        ex["status"] = "running"
        ex["started_at"] = ex["started_at"] or _now()
        if self._polls[ex["id"]] >= self.polls_to_finish:
            fail = any(s["action"] == "fail" for s in ex["steps"].values())
            for s in ex["steps"].values():
                s.update(status="failed" if s["action"] == "fail" else "completed",
                         attempts=1, started_at=_now(), completed_at=_now(),
                         duration_seconds=0.01, output={"ok": True})
                if s["status"] == "completed":
                    ex["outputs"][s["id"]] = s["output"]
            ex.update(status="failed" if fail else "completed", completed_at=_now(),
                      duration_seconds=0.02, error="step failed" if fail else None)

    def _cancel(self, rec: Recorded) -> Reply:
        ex = self.store["executions"].get(rec.path.split("/")[2])
        if ex is None:
            return self._missing("executions", rec.path.split("/")[2])
        ex["status"] = "cancelled"
        return Reply(200, ex)

    def _health(self, rec: Recorded) -> Reply:
        cid = rec.path.split("/")[2]
        if cid not in self.store["clusters"]:
            return self._missing("clusters", cid)
        return Reply(200, {"status": "healthy", "node_count": 2, "available_resources": {
            "cpu": "15500m", "memory_gb": 60.0, "gpu_count": 0, "gpu_types": []}})

    def _chat(self, rec: Recorded) -> Reply:
        b = rec.json
        text = "Hello from " + b["model"]
        base = {"id": "chatcmpl_1", "created": int(time.time()), "model": b["model"]}
        if b.get("stream"):
            chunks: list[Any] = [
                {**base, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": word},
                              "finish_reason": None}]}
                for word in text.split(" ")
            ]
            chunks.append({**base, "object": "chat.completion.chunk",
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            return Reply(200, sse=[*chunks, "[DONE]"])
        return Reply(200, {**base, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text},
             "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})
