"""The Dockerfile's rules, and its entry point started from a virtualenv built the same way.

Nothing here can build an image, so the rules are read from the file (tests/chart/dockerfile.py)
and the builder stage's two install steps are replayed on this machine: `pip wheel . --no-deps`,
then a fresh venv with `<wheel>[operator]` from wheels only. The image's ENTRYPOINT is then run
from that venv, and its HEALTHCHECK command is run against the started operator.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.chart import dockerfile
from tests.chart.chartlib import CHART, template
from tests.fixtures.kube import Kube

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|apt-get|apk|git|curl|wget)\b")


@pytest.fixture(scope="module")
def stages() -> list[dockerfile.Stage]:
    _, parsed = dockerfile.parse(REPO / "Dockerfile")
    return parsed


def _env(stage: dockerfile.Stage) -> dict[str, str]:
    out: dict[str, str] = {}
    for inst in stage.all("ENV"):
        for pair in shlex.split(inst.args):
            key, _, value = pair.partition("=")
            out[key] = value
    return out


def test_multi_stage_on_slim_python_311(stages: list[dockerfile.Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    assert stages[0].name == "builder"


def test_builder_builds_the_wheel_and_installs_the_operator_extra(
    stages: list[dockerfile.Stage],
) -> None:
    runs = " ".join(i.args for i in stages[0].all("RUN"))
    assert "pip wheel . --no-deps" in runs
    assert re.search(r"-m venv /opt/venv", runs)
    assert re.search(r"pip install --only-binary=:all: .*budai-\*\.whl\)\[operator\]", runs)
    # The build context is the allow-list of .dockerignore: each COPY source must be in it.
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    for inst in stages[0].all("COPY"):
        *sources, _dest = inst.args.split()
        for src in sources:
            assert src.rstrip("/") in allowed, f"COPY {src} is excluded by .dockerignore"
            assert (REPO / src).exists(), src


def test_final_stage_has_no_build_tools(stages: list[dockerfile.Stage]) -> None:
    final = stages[-1]
    for inst in final.all("RUN"):
        assert not BUILD_TOOLS.search(inst.args), inst.args
        assert "pip install" not in inst.args, "installs belong in the builder"
    copies = final.all("COPY")
    assert copies and all(c.args.startswith("--from=builder /opt/venv ") for c in copies)
    assert not final.all("ADD")


def test_final_stage_runs_as_numeric_non_root(stages: list[dockerfile.Stage]) -> None:
    user = stages[-1].last("USER")
    assert user is not None
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) > 0, "a numeric uid lets runAsNonRoot verify it"
    assert not gid or gid.isdigit()
    values = (CHART / "values.yaml").read_text()
    assert f"runAsUser: {uid}" in values, "the chart runs as the image's user"


def test_read_only_root_filesystem_friendly(stages: list[dockerfile.Stage]) -> None:
    env = _env(stages[-1])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    for var in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        assert env[var] == "/tmp" or env[var].startswith("/tmp/"), var
    assert env["PATH"].startswith("/opt/venv/bin:")
    runs = " ".join(i.args for i in stages[0].all("RUN"))
    assert "compileall" in runs, "bytecode is compiled at build time, not written at run time"


def test_entrypoint_is_the_operator_console_script(stages: list[dockerfile.Stage]) -> None:
    entry = stages[-1].last("ENTRYPOINT")
    assert entry is not None and entry.exec_form() == ["budai-operator", "run"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["budai-operator"] == "budai_operator.cli:main"
    health = stages[-1].last("HEALTHCHECK")
    assert health is not None and "/healthz" in health.args
    # The image's ports are the chart's defaults, so `docker run` and the chart agree.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f":{values['health']['port']}/healthz" in health.args
    expose = stages[-1].last("EXPOSE")
    assert expose is not None
    assert {str(values["health"]["port"]), str(values["metrics"]["port"])} <= set(
        expose.args.split())


# --- the entry point, from a fresh virtualenv built like the image's ----------------------------


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv built with the Dockerfile's builder steps; returns its bin directory."""
    root = tmp_path_factory.mktemp("image")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--wheel-dir", str(wheels), "-q"],
        cwd=REPO, check=True, timeout=300,
    )
    (wheel,) = wheels.glob("budai-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", f"{wheel}[operator]"],
        check=True, timeout=600,
    )
    return venv / "bin"


def _image_env(bin_dir: Path, stage: dockerfile.Stage, tmp: Path) -> dict[str, str]:
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "LANG": "C.UTF-8"}
    for key, value in _env(stage).items():
        if key != "PATH":
            env[key] = value.replace("/tmp", str(tmp))  # this test's own /tmp
    return env


def test_fresh_venv_has_no_dev_packages(image_venv: Path) -> None:
    listing = subprocess.run([str(image_venv / "python"), "-m", "pip", "list"],
                             capture_output=True, text=True, check=True).stdout
    for name in ("kopf", "kubernetes_asyncio", "prometheus_client"):
        assert re.search(rf"^{name.replace('_', '[-_]')}\s", listing, re.M | re.I), name
    for dev in ("pytest", "ruff", "mypy", "fastapi"):
        assert not re.search(rf"^{dev}\s", listing, re.M | re.I), f"{dev} is not for the image"


def test_entrypoint_help_lists_every_flag_the_chart_passes(
    image_venv: Path, stages: list[dockerfile.Stage], kube: Kube, tmp_path: Path,
) -> None:
    entry = stages[-1].last("ENTRYPOINT")
    assert entry is not None
    argv = entry.exec_form()
    assert argv is not None
    proc = subprocess.run([str(image_venv / argv[0]), *argv[1:], "--help"],
                          env=_image_env(image_venv, stages[-1], tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    for values in ([], ["-f", str(Path(__file__).parent / "values-everything.yaml")]):
        container = template(kube, *values).one("StatefulSet")["spec"]["template"]["spec"][
            "containers"][0]
        for arg in container["args"]:
            flag = arg.split("=", 1)[0]
            assert flag in proc.stdout, f"the chart passes {flag}, which `run` does not know"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def started(
    image_venv: Path, stages: list[dockerfile.Stage], kube: Kube, kube_namespace: str,
    tmp_path: Path,
) -> Iterator[tuple[subprocess.Popen[str], int, dict[str, str]]]:
    """The image's entry point running against the real API server (admin kubeconfig).

    It serves only an empty namespace of its own and runs standalone, so it cannot touch other
    tests' objects or pause their operators through peering.
    """
    health = _free_port()
    key = tmp_path / "api-key"
    key.write_text("image-test-key")
    env = _image_env(image_venv, stages[-1], tmp_path)
    env.update(KUBECONFIG=kube.kubeconfig, BUD_BASE_URL="http://127.0.0.1:9",
               BUD_API_KEY_FILE=str(key))
    entry = stages[-1].last("ENTRYPOINT")
    cmd = stages[-1].last("CMD")
    assert entry is not None
    argv = [*(entry.exec_form() or []), *((cmd.exec_form() or []) if cmd else [])]
    log = (tmp_path / "operator.log").open("w")
    before = {p for p in image_venv.parent.rglob("*")}
    proc = subprocess.Popen(
        [str(image_venv / argv[0]), *argv[1:], "--standalone", f"--namespace={kube_namespace}",
         f"--health-port={health}", f"--metrics-port={_free_port()}"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        yield proc, health, env
        # The image's root filesystem is read-only: the process must not write into the venv.
        created = {p for p in image_venv.parent.rglob("*")} - before
        assert not created, sorted(map(str, created))[:10]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.mark.kube
def test_entrypoint_starts_and_answers_the_healthcheck(
    started: tuple[subprocess.Popen[str], int, dict[str, str]],
    stages: list[dockerfile.Stage], tmp_path: Path, image_venv: Path,
) -> None:
    proc, health, env = started
    check = stages[-1].last("HEALTHCHECK")
    assert check is not None
    argv = dockerfile.Instruction("CMD", check.args.split("CMD", 1)[1]).exec_form()
    assert argv is not None and argv[0] == "python"
    argv = [str(image_venv / "python"), *[a.replace(":8081/", f":{health}/") for a in argv[1:]]]
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "operator.log").read_text()
        if subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode == 0:
            break
        assert time.monotonic() < deadline, "HEALTHCHECK never passed:\n" + (
            tmp_path / "operator.log").read_text()
        time.sleep(1)
    # SIGTERM (what the kubelet sends) stops it cleanly and promptly.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, (tmp_path / "operator.log").read_text()
