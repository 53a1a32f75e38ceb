"""The ``budai`` command line against a real gateway: output formats, errors and exit codes,
pipeline files, live execution runs, model downloads, deployments and chat."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .conftest import Budai

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pipelines"


# -- output and configuration ------------------------------------------------------------------


def test_clusters_list_as_table_json_and_yaml(budai: Budai) -> None:
    table = budai("clusters", "list")
    assert table.code == 0, table.err
    rows = json.loads(budai("clusters", "list", "-o", "json").out)
    assert rows and all(r["id"].startswith("cluster_") for r in rows)
    for row in rows:
        assert row["id"] in table.out and row["name"] in table.out
    assert "PROVIDER" in table.out
    # --limit above the API's page size still works: the CLI walks the pages.
    assert json.loads(budai("clusters", "list", "--limit", "1000", "-o", "json").out) == rows
    assert len(json.loads(budai("clusters", "list", "--limit", "1", "-o", "json").out)) == 1
    as_yaml = yaml.safe_load(budai("-o", "yaml", "clusters", "list").out)
    assert [r["id"] for r in as_yaml] == [r["id"] for r in rows]
    health = budai("clusters", "health", rows[0]["id"], "-o", "json")
    assert health.code == 0 and json.loads(health.out)["status"] in ("healthy", "degraded")


def test_flags_win_over_the_environment(budai: Budai) -> None:
    env = {
        **budai.env,
        "BUD_API_KEY": "wrong-key-from-env",
        "BUD_BASE_URL": "http://127.0.0.1:9/v1",
    }
    ok = budai(
        "--api-key", budai.gateway.api_key, "--base-url", budai.gateway.url, "clusters", "list",
        env=env,
    )  # fmt: skip
    assert ok.code == 0, ok.err


def test_api_errors_are_one_line_with_the_request_id_and_exit_1(budai: Budai) -> None:
    missing = budai("models", "get", "model_does_not_exist")
    assert missing.code == 1
    assert missing.out == ""
    lines = missing.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and "404" in lines[0] and "request req_" in lines[0]

    secret = "bud_not_a_real_key_" + "x" * 12
    denied = budai("models", "list", env={**budai.env, "BUD_API_KEY": secret})
    assert denied.code == 1
    assert "401" in denied.err and "request req_" in denied.err
    assert secret not in denied.err + denied.out

    down = budai("--base-url", "http://127.0.0.1:9/v1", "--timeout", "2", "clusters", "list")
    assert down.code == 1 and down.err.startswith("error: ")
    assert budai.gateway.api_key not in down.err


def test_usage_errors_exit_2(budai: Budai) -> None:
    env = {k: v for k, v in budai.env.items() if k != "BUD_API_KEY"}
    no_key = budai("models", "list", env=env)
    assert no_key.code == 2 and "no API key" in no_key.err
    assert budai("models", "list", "--status", "bogus").code == 2
    assert budai("models", "frobnicate").code == 2
    assert budai("executions", "run", "x", "--param", "novalue").code == 2
    assert budai("pipelines", "create", "-f", "does-not-exist.yaml").code == 2
    assert budai("--help").code == 0


# -- models and deployments --------------------------------------------------------------------


def test_models_create_wait_shows_download_progress(budai: Budai, unique: str) -> None:
    created = budai(
        "models", "create", "--name", f"m-{unique}", "--source", "hugging_face",
        "--uri", f"org/m-{unique}", "--metadata", "team=cli", "--wait", "-o", "json",
    )  # fmt: skip
    assert created.code == 0, created.err
    model = json.loads(created.out)
    assert model["status"] == "available" and model["metadata"]["team"] == "cli"
    assert "100%" in created.err  # the progress bar ends full, on stderr
    listed = json.loads(budai("models", "list", "--name", f"m-{unique}", "-o", "json").out)
    assert [m["id"] for m in listed] == [model["id"]]
    gone = budai("models", "delete", model["id"], "--wait", "--yes")
    assert gone.code == 0 and f"deleted {model['id']}" in gone.out
    assert budai("models", "get", model["id"]).code == 1


def test_models_create_wait_exits_1_when_the_download_fails(budai: Budai, unique: str) -> None:
    failed = budai(
        "models", "create", "--name", f"bad-{unique}", "--source", "local",
        "--uri", f"/nonexistent/{unique}", "--wait", "-o", "json",
    )  # fmt: skip
    assert failed.code == 1
    assert json.loads(failed.out)["status"] == "error"
    # Under -o json the error is JSON too (issue 16): one object on the last line of stderr.
    error = json.loads(failed.err.strip().splitlines()[-1])["error"]
    assert error["message"].startswith("model ") and error["type"] == "operation_failed"


def _deployment(budai: Budai, unique: str) -> dict[str, object]:
    model = json.loads(
        budai(
            "models", "create", "--name", f"chat-{unique}", "--source", "cloud",
            "--uri", f"s3://models/{unique}", "--wait", "-o", "json",
        ).out
    )  # fmt: skip
    cluster = json.loads(budai("clusters", "list", "--name", "local-cpu", "-o", "json").out)
    cluster_id = cluster[0]["id"] if cluster else json.loads(
        budai("clusters", "list", "-o", "json").out
    )[0]["id"]  # fmt: skip
    made = budai(
        "deployments", "create", "--model", str(model["id"]), "--cluster", cluster_id,
        "--name", f"chat-{unique}", "--cpu", "1", "--memory", "1Gi", "--wait", "-o", "json",
    )  # fmt: skip
    assert made.code == 0, made.err
    dep: dict[str, object] = json.loads(made.out)
    assert dep["status"] == "active"
    return dep


def test_deployments_create_scale_and_chat_streaming(budai: Budai, unique: str) -> None:
    dep = _deployment(budai, unique)
    scaled = budai("deployments", "scale", str(dep["id"]), "2", "--wait", "-o", "json")
    assert scaled.code == 0, scaled.err
    assert json.loads(scaled.out)["replicas"] == 2
    assert json.loads(scaled.out)["status"] == "active"
    table = budai("deployments", "list", "--name", f"chat-{unique}")
    assert str(dep["id"]) in table.out and "active" in table.out

    streamed = budai("chat", f"chat-{unique}", "Say hello to the command line")
    assert streamed.code == 0, streamed.err
    whole = budai("chat", f"chat-{unique}", "Say hello to the command line", "--no-stream")
    assert whole.code == 0, whole.err
    assert streamed.out.strip() and streamed.out == whole.out
    as_json = json.loads(budai("chat", f"chat-{unique}", "hi", "-o", "json").out)
    assert as_json["object"] == "chat.completion"
    from_stdin = budai("chat", f"chat-{unique}", "-", "--no-stream", input="from stdin")
    assert from_stdin.code == 0 and from_stdin.out.strip()
    unknown = budai("chat", f"nope-{unique}", "hi")
    assert unknown.code == 1 and "404" in unknown.err

    assert budai("deployments", "delete", str(dep["id"]), "--wait", "--yes").code == 0


# -- pipelines and executions ------------------------------------------------------------------


def test_pipelines_create_from_yaml_and_run_with_params(budai: Budai, unique: str) -> None:
    created = budai(
        "pipelines", "create", "-f", str(EXAMPLES / "hello.yaml"), "--name", f"hello-{unique}",
        "-o", "json",
    )  # fmt: skip
    assert created.code == 0, created.err
    pipeline = json.loads(created.out)
    assert pipeline["description"] == "greet someone, loudly when asked to"

    ran = budai(
        "executions", "run", f"hello-{unique}", "--param", "who=Bud", "--param", "loud=true",
        "--wait", "-o", "json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    execution = json.loads(ran.out)
    # A string that is one {{ expression }} keeps the expression's type (here a bool).
    assert execution["outputs"]["result"] == {"greeting": "Hello, Bud!", "shouted": True}
    assert execution["outputs"]["shout"] == "HELLO, BUD!"
    # Off a terminal, the live display becomes one line per step change on stderr.
    assert f"{execution['id']} shout: completed" in ran.err

    quiet = budai("executions", "run", pipeline["id"], "--wait")
    assert quiet.code == 0, quiet.err
    assert "skipped" in quiet.out and "completed" in quiet.out  # the final step table

    started = json.loads(budai("executions", "run", pipeline["id"], "-o", "json").out)
    assert started["status"] in ("pending", "running", "completed")
    listed = json.loads(
        budai("executions", "list", "--pipeline", f"hello-{unique}", "-o", "json").out
    )
    assert started["id"] in [e["id"] for e in listed]
    shown = budai("executions", "get", started["id"])
    assert shown.code == 0 and "greeting" in shown.out


def test_failed_execution_exits_1(budai: Budai, tmp_path: Path, unique: str) -> None:
    source = tmp_path / "failing.py"
    source.write_text(
        "from budai.dsl import Pipeline\n"
        f"with Pipeline('failing-{unique}') as pipeline:\n"
        "    first = pipeline.transform('first', value=1)\n"
        "    pipeline.fail('explode', message='kaboom', depends_on=first)\n"
    )
    assert budai("pipelines", "create", "-f", str(source)).code == 0
    ran = budai("executions", "run", f"failing-{unique}", "--wait")
    assert ran.code == 1
    assert "explode: failed (kaboom)" in ran.err
    assert ran.err.strip().splitlines()[-1].startswith("error: execution ")
    assert "kaboom" in ran.err.strip().splitlines()[-1]


def test_pipelines_create_from_python_files(budai: Budai, tmp_path: Path, unique: str) -> None:
    # The example's module-level `pipeline` variable.
    example = budai("pipelines", "create", "-f", str(EXAMPLES / "health_check.py"),
                    "--name", f"health-{unique}", "-o", "json")  # fmt: skip
    assert example.code == 0, example.err
    assert len(json.loads(example.out)["definition"]["steps"]) == 3

    # Several pipelines: pick one with file.py:variable, or get a usage error naming them.
    two = tmp_path / "two.py"
    two.write_text(
        "from budai.dsl import Pipeline\n"
        f"first = Pipeline('first-{unique}')\n"
        "first.log('a', message='1')\n"
        f"second = Pipeline('second-{unique}')\n"
        "second.log('b', message='2')\n"
    )
    ambiguous = budai("pipelines", "create", "-f", str(two))
    assert ambiguous.code == 2 and "first, second" in ambiguous.err
    picked = budai("pipelines", "create", "-f", f"{two}:second", "-o", "json")
    assert picked.code == 0, picked.err
    assert json.loads(picked.out)["name"] == f"second-{unique}"
    got = budai("pipelines", "get", f"second-{unique}")
    assert got.code == 0 and "log" in got.out
    duplicate = budai("pipelines", "create", "-f", f"{two}:second")
    assert duplicate.code == 1 and "409" in duplicate.err

    # Every problem is listed at once, before anything is sent.
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from budai.dsl import Pipeline\n"
        f"with Pipeline('broken-{unique}') as pipeline:\n"
        "    a = pipeline.log('a', message='a')\n"
        "    b = pipeline.log('b', message='b', depends_on='ghost')\n"
        "    a >> b >> a\n"
    )
    refused = budai("pipelines", "create", "-f", str(broken))
    assert refused.code == 1
    assert "2 problems" in refused.err
    assert "unknown step 'ghost'" in refused.err and "cycle: a >> b >> a" in refused.err
    assert budai("pipelines", "get", f"broken-{unique}").code == 1

    graph = budai("pipelines", "graph", f"health-{unique}")
    assert graph.out.startswith("flowchart TD") and "s_probe --> s_up" in graph.out

    deleted = budai("pipelines", "delete", f"second-{unique}", "--yes")
    assert deleted.code == 0 and deleted.out.startswith("deleted pipe_")


def test_pipelines_validate_locally_and_on_the_server(budai: Budai, tmp_path: Path) -> None:
    for example in ("hello.yaml", "health_check.py", "deploy_model.py"):
        checked = budai("pipelines", "validate", "--server", "-f", str(EXAMPLES / example))
        assert checked.code == 0, (example, checked.err)
        assert checked.out.startswith("valid: ")
    # The local check knows the action catalogue too (issue 16), as the gateway does.
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("steps:\n  - id: x\n    action: teleport\n")
    local = budai("pipelines", "validate", "-f", str(unknown))
    assert local.code == 1 and "unknown action 'teleport'" in local.err
    server = budai("pipelines", "validate", "--server", "-f", str(unknown))
    assert server.code == 1 and "teleport" in server.err


def test_the_key_is_never_printed(budai: Budai, unique: str) -> None:
    key = budai.gateway.api_key
    outputs = [
        budai("--api-key", key, "models", "list", "-o", "json"),
        budai("--api-key", key, "models", "get", f"model_{unique}"),
        budai("--api-key", key, "--help"),
    ]
    for result in outputs:
        assert key not in result.out and key not in result.err


def test_pipelines_apply_creates_then_updates(budai: Budai, tmp_path: Path, unique: str) -> None:
    source = tmp_path / "applied.yaml"
    source.write_text(
        f"name: applied-{unique}\ndefinition:\n  steps:\n"
        "    - {id: one, action: transform, params: {value: 1}}\n"
    )
    first = json.loads(budai("pipelines", "apply", "-f", str(source), "-o", "json").out)
    source.write_text(
        f"name: applied-{unique}\ndescription: now with two steps\ndefinition:\n  steps:\n"
        "    - {id: one, action: transform, params: {value: 1}}\n"
        "    - {id: two, action: transform, params: {value: 2}, depends_on: [one]}\n"
    )
    second = budai("pipelines", "apply", "-f", str(source), "-o", "json")
    assert second.code == 0, second.err
    updated = json.loads(second.out)
    assert updated["id"] == first["id"]
    assert [s["id"] for s in updated["definition"]["steps"]] == ["one", "two"]
    assert updated["description"] == "now with two steps"


def test_get_as_yaml_feeds_create(budai: Budai, tmp_path: Path, unique: str) -> None:
    created = budai("pipelines", "create", "-f", str(EXAMPLES / "health_check.py"),
                    "--name", f"export-{unique}", "-o", "json")  # fmt: skip
    assert created.code == 0, created.err
    exported = budai("pipelines", "get", f"export-{unique}", "-o", "yaml")
    copy = tmp_path / "copy.yaml"
    copy.write_text(exported.out)
    imported = budai(
        "pipelines", "create", "-f", str(copy), "--name", f"copy-{unique}", "-o", "json"
    )
    assert imported.code == 0, imported.err
    original = json.loads(created.out)
    clone = json.loads(imported.out)
    assert clone["definition"] == original["definition"]
    assert clone["description"] == original["description"]
