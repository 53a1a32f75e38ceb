"""Runs are bounded: output sizes, log lines, stored and running executions, restarts."""

from __future__ import annotations

import time

import httpx

from budai_gateway.testing import LocalGateway
from tests.gateway.conftest import assert_error
from tests.gateway.hostile.conftest import HOSTILE_LIMITS, run_pipeline, snapshot, wait_done, watch


def test_step_and_execution_outputs_are_capped(hgw: LocalGateway, admin: httpx.Client) -> None:
    with watch(hgw):
        one = run_pipeline(
            admin,
            [{"id": "t", "action": "transform", "params": {"value": "{{ params.s * 150000 }}"}}],
            {"s": "a"},
        )
        steps = [
            {
                "id": f"s{i}",
                "action": "transform",
                "params": {"value": "{{ params.s * 90000 }}"},
                "depends_on": [f"s{i - 1}"] if i else [],
            }
            for i in range(3)
        ]
        many = run_pipeline(admin, steps, {"s": "a"})
    err = one["steps"]["t"]["error"]
    assert (
        err
        == "step output is 150,002 bytes, over the 100,000-byte cap (limits.max_step_output_bytes)"
    )
    assert one["outputs"] == {}
    assert [many["steps"][f"s{i}"]["status"] for i in range(3)] == [
        "completed",
        "completed",
        "failed",
    ]
    assert "limits.max_execution_output_bytes" in many["steps"]["s2"]["error"]


def test_log_messages_cannot_forge_lines(hgw: LocalGateway, admin: httpx.Client) -> None:
    forged = "fine\nERROR budai_gateway: forged admin login\r\x1b[2Jcleared"
    ex = run_pipeline(
        admin, [{"id": "l", "action": "log", "params": {"message": forged, "level": "warning"}}]
    )
    assert ex["status"] == "completed"
    time.sleep(0.2)
    lines = hgw.logs().splitlines()
    assert not any(ln.startswith("ERROR budai_gateway: forged") for ln in lines)
    assert any(
        "fine\\x0aERROR budai_gateway: forged admin login\\x0d\\x1b[2Jcleared" in ln for ln in lines
    )
    big = run_pipeline(admin, [{"id": "l", "action": "log", "params": {"message": "m" * 20_000}}])
    out = big["steps"]["l"]["output"]
    assert len(out["message"]) == 8192 and "limits.max_log_message_bytes" in out["truncated"]


def test_running_and_stored_executions_are_bounded(hgw: LocalGateway, admin: httpx.Client) -> None:
    pipe = admin.post(
        "/pipelines",
        json={
            "name": "slow",
            "definition": {"steps": [{"id": "w", "action": "wait", "params": {"seconds": 30}}]},
        },
    ).json()
    running = [admin.post("/executions", json={"pipeline_id": pipe["id"]}) for _ in range(5)]
    assert all(r.status_code == 201 for r in running)
    before = snapshot(admin)
    with watch(hgw):
        err = assert_error(
            admin.post("/executions", json={"pipeline_id": pipe["id"]}),
            429,
            "rate_limit_error",
            "too_many_executions",
        )
    assert "limits.max_active_executions" in err["message"]
    assert snapshot(admin) == before
    for r in running:
        admin.post(f"/executions/{r.json()['id']}/cancel")
    quick = admin.post(
        "/pipelines",
        json={
            "name": "quick",
            "definition": {"steps": [{"id": "t", "action": "transform", "params": {"value": 1}}]},
        },
    ).json()
    for _ in range(HOSTILE_LIMITS["max_stored_executions"] + 5):
        e = admin.post("/executions", json={"pipeline_id": quick["id"]})
        assert e.status_code == 201, e.text
        wait_done(admin, f"/executions/{e.json()['id']}", {"completed"})
    listed = admin.get("/executions", params={"limit": 100}).json()["data"]
    assert len(listed) == HOSTILE_LIMITS["max_stored_executions"]


def test_a_step_that_takes_the_gateway_down_is_not_replayed_for_ever() -> None:
    with (
        LocalGateway(speed=20, config={"limits": {"max_step_restarts": 2}}) as gw,
        gw.client() as c,
    ):
        pipe = c.post(
            "/pipelines",
            json={
                "name": "wedge",
                "definition": {"steps": [{"id": "w", "action": "wait", "params": {"seconds": 60}}]},
            },
        ).json()
        ex = c.post("/executions", json={"pipeline_id": pipe["id"]}).json()
        for _ in range(3):  # the step is running each time the gateway dies
            wait_done(c, f"/executions/{ex['id']}", {"running"})
            deadline = time.monotonic() + 10
            while c.get(f"/executions/{ex['id']}").json()["steps"]["w"]["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            gw.restart()
        done = wait_done(c, f"/executions/{ex['id']}", {"failed"})
        assert done["steps"]["w"]["error"] == (
            "the gateway stopped 3 times while this step ran; not run again "
            "(limits.max_step_restarts is 2)"
        )
