"""``kill -9`` and restart: nothing acknowledged is lost, lifecycles in flight carry on."""

from __future__ import annotations

import uuid

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import wait_status


def test_kill_9_keeps_state_and_resumes(fresh_gateway: LocalGateway) -> None:
    gw = fresh_gateway
    gw.set_speed(1)  # slow enough that everything is still in flight at the kill
    with gw.client() as c:
        clusters = {x["name"]: x["id"] for x in c.get("/clusters").json()["data"]}
        key = str(uuid.uuid4())
        cloud = c.post(
            "/models",
            json={"name": "kept", "source": "cloud", "uri": "x"},
            headers={"Idempotency-Key": key},
        ).json()
        hf = c.post(
            "/models",
            json={
                "name": "hf-big",
                "source": "hugging_face",
                "uri": "org/not-cached-model",
                "metadata": {"simulated_size_bytes": 600_000_000},
            },
        ).json()
        dep = c.post(
            "/deployments",
            json={"model_id": cloud["id"], "cluster_id": clusters["local-cpu"], "name": "survivor"},
        ).json()
        pipe = c.post(
            "/pipelines",
            json={
                "name": "long",
                "definition": {
                    "steps": [
                        {"id": "first", "action": "log", "params": {"message": "one"}},
                        {
                            "id": "nap",
                            "action": "wait",
                            "params": {"seconds": 1.5},
                            "depends_on": ["first"],
                        },
                        {
                            "id": "last",
                            "action": "transform",
                            "params": {"value": "done"},
                            "depends_on": ["nap"],
                        },
                    ]
                },
            },
        ).json()
        ex = c.post("/executions", json={"pipeline_id": pipe["id"]}).json()
        wait_status(c, f"/executions/{ex['id']}", {"running"})
        assert c.get(f"/models/{hf['id']}").json()["status"] == "downloading"
        assert c.get(f"/deployments/{dep['id']}").json()["status"] in ("pending", "deploying")

    gw.kill()
    gw.restart()

    with gw.client() as c:
        assert c.get(f"/models/{cloud['id']}").json()["name"] == "kept"
        assert c.get(f"/pipelines/{pipe['id']}").status_code == 200
        # The idempotency key survived too: same response, no duplicate.
        again = c.post(
            "/models",
            json={"name": "kept", "source": "cloud", "uri": "x"},
            headers={"Idempotency-Key": key},
        )
        assert again.status_code == 201 and again.json()["id"] == cloud["id"]
        done = wait_status(c, f"/executions/{ex['id']}", {"completed", "failed"}, timeout=20)
        assert done["status"] == "completed", done
        assert done["outputs"]["last"] == "done"
        assert done["steps"]["first"]["status"] == "completed"
        assert wait_status(c, f"/models/{hf['id']}", {"available"}, 20)["size_bytes"] == 600_000_000
        assert wait_status(c, f"/deployments/{dep['id']}", {"active"}, 20)["ready_replicas"] == 1
        assert len(c.get("/clusters").json()["data"]) == 2  # not seeded twice


def test_url_download_resumes_after_kill(fresh_gateway: LocalGateway) -> None:
    import http.server
    import threading
    import time
    from typing import Any

    size = 40 * 16_384

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"w" * 16_384)
                    self.wfile.flush()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        gw = fresh_gateway
        with gw.client() as c:
            url = f"http://127.0.0.1:{srv.server_address[1]}/slow.bin"
            m = c.post("/models", json={"name": "slow", "source": "url", "uri": url}).json()

            def progressing() -> bool:
                cur = c.get(f"/models/{m['id']}").json()
                return bool(cur["status"] == "downloading" and (cur["progress_percent"] or 0) > 0)

            from tests.gateway.conftest import wait_for

            wait_for(progressing, timeout=10)
        gw.kill()
        gw.restart()
        with gw.client() as c:
            assert c.get(f"/models/{m['id']}").json()["status"] == "downloading"
            done = wait_status(c, f"/models/{m['id']}", {"available", "error"}, timeout=20)
            assert done["status"] == "available", done
            assert done["size_bytes"] == size
    finally:
        srv.shutdown()
