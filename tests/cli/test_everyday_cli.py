"""The ``budai`` script for everyday use (issue 16), through its entry point against the real
gateway: names or ids everywhere, ``-o`` on every command (errors too), confirmations before
deletes, ``--limit`` notes, newest-first executions, local validation listing every problem,
the action catalogue and shell completion."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import click
import yaml

from budai.cli import cli

from .conftest import Budai, Result


def j(result: Result) -> Any:
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_every_command_takes_output(budai: Budai) -> None:
    missing = []

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")
            return
        if path.endswith("completion"):
            return  # prints a shell script, in the shell's language
        if not any("-o" in p.opts for p in cmd.params if isinstance(p, click.Option)):
            missing.append(path)

    walk(cli, "budai")
    assert not missing, missing


def test_names_or_ids_everywhere(budai: Budai, unique: str) -> None:
    name = f"n-{unique}"
    model = j(budai("models", "create", "--name", name, "--source", "cloud", "--uri", "x",
                    "--wait", "-o", "json"))
    assert isinstance(model, dict)
    assert j(budai("models", "get", name, "-o", "json")) == j(
        budai("models", "get", model["id"], "-o", "json"))
    cluster = j(budai("clusters", "get", "local-cpu", "-o", "json"))
    assert isinstance(cluster, dict) and cluster["name"] == "local-cpu"
    assert j(budai("clusters", "health", "local-cpu", "-o", "json"))
    dep = j(budai("deployments", "create", "--model", name, "--cluster", "local-cpu",
                  "--name", f"d-{unique}", "--wait", "-o", "json"))
    assert isinstance(dep, dict) and dep["model_id"] == model["id"]
    assert dep["cluster_id"] == cluster["id"]
    scaled = j(budai("deployments", "scale", f"d-{unique}", "2", "--wait", "-o", "json"))
    assert isinstance(scaled, dict) and scaled["replicas"] == 2
    listed = j(budai("deployments", "list", "--model", name, "-o", "json"))
    assert [d["id"] for d in listed] == [dep["id"]]
    stopped = j(budai("deployments", "stop", f"d-{unique}", "-o", "json"))
    assert isinstance(stopped, dict) and stopped["status"] == "stopped"
    missing = budai("models", "get", f"ghost-{unique}")
    assert missing.code == 1 and f"no model with the id or name 'ghost-{unique}'" in missing.err
    gone = j(budai("deployments", "delete", f"d-{unique}", "--wait", "--yes", "-o", "json"))
    assert gone == {"id": dep["id"], "deleted": True}


def test_deletes_ask_first(budai: Budai, unique: str) -> None:
    model = j(budai("models", "create", "--name", f"del-{unique}", "--source", "cloud",
                    "--uri", "x", "-o", "json"))
    assert isinstance(model, dict)
    refused = budai("models", "delete", f"del-{unique}")  # no terminal, nothing on stdin
    assert refused.code == 1 and "not deleted" in refused.err and "--yes" in refused.err
    said_no = budai("models", "delete", f"del-{unique}", input="n\n")
    assert said_no.code == 1
    assert j(budai("models", "get", model["id"], "-o", "json"))  # nothing changed
    said_yes = budai("models", "delete", f"del-{unique}", input="y\n")
    assert said_yes.code == 0, said_yes.err
    assert f"Delete model del-{unique} ({model['id']})?" in said_yes.err


def test_errors_as_json_under_o_json(budai: Budai, unique: str) -> None:
    api = budai("models", "get", f"model_{unique}", "-o", "json")
    assert api.code == 1 and api.out == ""
    err = json.loads(api.err)["error"]
    assert err["status_code"] == 404 and err["type"] == "not_found_error"
    assert err["request_id"] and "model_" in err["message"]
    usage = budai("-o", "json", "deployments", "scale", "x", "not-a-number")
    assert usage.code == 2 and json.loads(usage.err)["error"]["type"] == "usage_error"
    plain = budai("models", "get", f"model_{unique}")
    assert plain.err.startswith("error: ")


def test_limit_notes_and_newest_first(budai: Budai, unique: str, tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(f"name: order-{unique}\nsteps:\n  - {{id: a, action: log}}\n")
    assert budai("pipelines", "create", "-f", str(f)).code == 0
    ids = []
    for _ in range(4):
        run = j(budai("executions", "run", f"order-{unique}", "-o", "json"))
        assert isinstance(run, dict)
        ids.append(run["id"])
    top = budai("executions", "list", "--pipeline", f"order-{unique}", "--limit", "3",
                "-o", "json")
    assert [e["id"] for e in json.loads(top.out)] == ids[:0:-1]  # the three newest
    assert "showing the first 3 executions; more exist" in top.err
    whole = budai("executions", "list", "--pipeline", f"order-{unique}", "--limit", "4")
    assert "more exist" not in whole.err


def test_numbers_have_one_format(budai: Budai, unique: str) -> None:
    budai("models", "create", "--name", f"size-{unique}", "--source", "hugging_face",
          "--uri", f"org/size-{unique}", "--wait")
    table = budai("models", "list", "--name", f"size-{unique}").out
    row = next(line for line in table.splitlines() if f"size-{unique}" in line)
    assert re.search(r"\d+\.\d (MiB|GiB)", row), row  # sizes in binary units, not raw bytes
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", row), row  # one timestamp form


def test_validate_lists_every_problem_locally(budai: Budai, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "steps:\n"
        "  - {id: a, action: teleport}\n"
        "  - {id: b, action: log, params: {mesage: hi}}\n"
        "  - {id: c, action: log, depends_on: [b], condition: 'steps.b.outputs ==='}\n"
        "  - {id: d, action: log, depends_on: [b],\n"
        "     params: {message: '{{ steps.b.outputs.x | nosuchfilter }}'}}\n"
    )
    result = budai("pipelines", "validate", "-f", str(bad))
    assert result.code == 1
    assert "4 problems" in result.err and "more)" not in result.err
    for needle in ("unknown action 'teleport'", "no parameter 'mesage'", "invalid condition",
                   "unknown filter 'nosuchfilter'"):
        assert needle in result.err, result.err
    as_json = budai("pipelines", "validate", "-f", str(bad), "-o", "json")
    assert len(json.loads(as_json.err)["error"]["problems"]) == 4


def test_actions_list_shows_params(budai: Budai) -> None:
    table = budai("actions", "list")
    assert table.code == 0 and "http_request" in table.out and "url*: string" in table.out
    data = j(budai("actions", "list", "-o", "json"))
    assert isinstance(data, list)
    names = {a["name"] for a in data}
    assert {"log", "http_request", "chat_completion"} <= names
    one = yaml.safe_load(budai("actions", "get", "wait", "-o", "yaml").out)
    assert one[0]["parameters"]["required"] == ["seconds"]


def test_completion_scripts(budai: Budai) -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "#compdef budai"),
                          ("fish", "complete --no-files --command budai")):
        script = budai("completion", shell)
        assert script.code == 0 and marker in script.out, (shell, script.out[:200])
    bash = budai("completion", "bash").out
    checked = subprocess.run(["bash", "-n"], input=bash, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert budai("completion", "tcsh").code == 2
