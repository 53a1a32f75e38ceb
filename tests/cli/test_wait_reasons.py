"""``--wait`` that gives up says why, with the same reason the operator writes into Ready and
the gateway's own words (issue 15), instead of only "timed out"."""

from __future__ import annotations

import json

from .conftest import Budai


def test_deployment_wait_names_the_missing_capacity(budai: Budai, unique: str) -> None:
    model = json.loads(
        budai(
            "models", "create", "--name", f"cap-{unique}", "--source", "cloud",
            "--uri", f"s3://models/cap-{unique}", "--wait", "-o", "json",
        ).out
    )  # fmt: skip
    cluster = json.loads(budai("clusters", "list", "--name", "local-cpu", "-o", "json").out)[0]
    res = budai(
        "deployments", "create", "--model", str(model["id"]), "--cluster", cluster["id"],
        "--name", f"cap-{unique}", "--cpu", "500", "--memory", "1Gi",
        "--wait", "--wait-timeout", "2",
    )  # fmt: skip
    assert res.code == 1, res
    assert "timed out after 2s waiting for deployment" in res.err, res.err
    assert "InsufficientCapacity: the gateway cannot place 1 replicas" in res.err, res.err
    assert "cpu: requested 500, free" in res.err, res.err


def test_model_wait_names_the_download_and_its_eta(budai: Budai, unique: str) -> None:
    res = budai(
        "models", "create", "--name", f"huge-{unique}", "--source", "hugging_face",
        "--uri", f"org/huge-{unique}", "--metadata", "simulated_size_bytes=1000000000000000",
        "--wait", "--wait-timeout", "2",
    )  # fmt: skip
    assert res.code == 1, res
    assert "timed out after 2s waiting for model" in res.err, res.err
    assert ": Downloading: downloading " in res.err and "left" in res.err, res.err
    assert "(simulated, " in res.err, res.err
