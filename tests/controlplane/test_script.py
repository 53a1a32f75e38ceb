"""hack/control-plane.sh behaviour that needs no running cluster (fast)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.fixtures.kube import REPO, SCRIPT, _namespace_name


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_env_prints_exports(tmp_path: Path) -> None:
    out = run("env", BUDAI_CP_STATE=str(tmp_path / "cp")).stdout
    assert f"export KUBECONFIG={tmp_path}/cp/kubeconfig" in out
    assert re.search(r'^export PATH=/\S+/bin:"\$PATH"$', out, re.M)


def test_status_and_down_when_not_up(tmp_path: Path) -> None:
    state = str(tmp_path / "cp")
    assert run("status", BUDAI_CP_STATE=state).returncode == 3
    assert run("down", BUDAI_CP_STATE=state).returncode == 0


def test_down_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    result = run("down", BUDAI_CP_STATE=str(tmp_path))
    assert result.returncode == 1
    assert "refusing" in result.stderr
    assert precious.read_text() == "keep me"


def test_build_refuses_wrappers_that_disagree_with_versions_env(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "hack", copy / "hack")
    env_file = copy / "hack" / "versions.env"
    env_file.write_text(
        re.sub(r"^HELM_VERSION=.*$", "HELM_VERSION=v3.0.0", env_file.read_text(), flags=re.M)
    )
    result = subprocess.run(
        ["bash", str(copy / "hack" / "control-plane.sh"), "build"],
        env={**os.environ, "BUDAI_CP_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "regen" in result.stderr


def test_namespace_names_are_valid_dns_labels() -> None:
    name = _namespace_name("test_something[with-Params_AND a very long name that goes on and on]")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert len(name) <= 63
    assert _namespace_name("x") != _namespace_name("x")
