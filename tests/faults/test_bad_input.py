"""A corpus of bad manifests: each is rejected by the API server with a message naming the
problem, or accepted and then ends ``Stalled`` with a reason and a message. Meanwhile the operator
must not crash and must not hot-loop on what it cannot fix: its gateway traffic is counted at the
gateway (a zero-latency fault rule matching every /v1 request counts hits) and in its metrics.

Manifests are built as Python dicts and sent as JSON (JSON is YAML), so the hostile strings
(unicode, quotes, template and shell injection) reach the API server byte for byte."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from budai_gateway.testing import LocalGateway

from .harness import OperatorRunner, all_objects, cond

pytestmark = [pytest.mark.kube, pytest.mark.timeout(420)]

API = "bud.studio/v1alpha1"


def res(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name, **meta}, "spec": spec}


def model(k8s_name: str, **spec: Any) -> dict[str, Any]:
    # ``spec.name`` (the remote name) is one of the fields under test, hence ``k8s_name``.
    return res("BudModel", k8s_name, {"source": "cloud", "uri": f"s3://bad/{k8s_name}", **spec})


def deployment(name: str, **spec: Any) -> dict[str, Any]:
    base = {"modelId": "model_x", "clusterName": "local-cpu", "resources": {"cpu": "10m"}}
    return res("BudDeployment", name, {**base, **spec})


def pipeline(name: str, steps: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    steps = steps if steps is not None else [{"id": "a", "action": "log"}]
    return res("BudPipeline", name, {"definition": {"steps": steps}, **spec})


def execution(name: str, **spec: Any) -> dict[str, Any]:
    return res("BudExecution", name, {"pipelineId": "pipe_x", **spec})


def drop(doc: dict[str, Any], *path: str) -> dict[str, Any]:
    target = doc
    for p in path[:-1]:
        target = target[p]
    del target[path[-1]]
    return doc


@dataclass
class Case:
    name: str
    doc: dict[str, Any]
    expect: str
    """``reject``: the API server refuses it; ``stall``: accepted, then Stalled; ``either``."""
    says: str = ""
    """Text the rejection or the Stalled message must contain (case-insensitive regex)."""
    before: dict[str, Any] | None = None
    """Applied first (and accepted): the case is an update of it (immutability)."""
    server_side: bool = False
    """Server-side apply: no last-applied annotation, so a big spec reaches the operator."""


S = {"id": "s", "action": "log"}
HUGE = "x" * 1_200_000  # above the gateway's 1 MiB body limit, below etcd's 1.5 MiB
CASES: list[Case] = [
    # -- BudModel ---------------------------------------------------------------------------
    Case("model source not in enum", model("c1", source="ftp"), "reject", r"spec\.source"),
    Case("model source wrong type", model("c2", source=5), "reject", r"spec\.source"),
    Case("model uri missing", drop(model("c3"), "spec", "uri"), "reject", r"uri"),
    Case("model uri too long", model("c4", uri="s3://" + "u" * 3000), "reject", r"spec\.uri"),
    Case("model deletionPolicy enum", model("c5", deletionPolicy="Destroy"), "reject",
         r"deletionPolicy"),
    Case("model metadata not an object", model("c6", metadata="team=x"), "reject",
         r"spec\.metadata"),
    Case("model remote name unicode", model("c7", name="modèle-ünïcode"), "reject", r"spec\.name"),
    Case("model remote name injection", model("c8", name="x; rm -rf /"), "reject", r"spec\.name"),
    Case("model externalId too long", model("c9", externalId="m" * 200), "reject",
         r"spec\.externalId"),
    Case("model unknown field", model("c10", colour="blue"), "reject", r"unknown field"),
    Case("model k8s name unicode", model("modèle"), "reject", r"RFC 1123|metadata\.name"),
    Case("model k8s name injection", model("a$(reboot)"), "reject", r"RFC 1123|metadata\.name"),
    Case("model k8s name too long", model("m" * 300), "reject", r"must be no more than|RFC 1123"),
    Case("model uri immutable", model("c14", uri="s3://other"), "reject", r"uri is immutable",
         before=model("c14")),
    Case("model source immutable", model("c15", source="hugging_face"), "reject",
         r"source is immutable", before=model("c15")),
    Case("model externalId immutable", model("c16", externalId="model_y"), "reject",
         r"externalId is immutable", before=model("c16")),
    Case("model remote name immutable", model("c17", name="renamed"), "reject",
         r"name is immutable", before=model("c17")),
    Case("model adopts a remote object that does not exist", model("c18", externalId="model_nope"),
         "stall", r"model_nope|not found"),
    Case("model oversized metadata", model("c19", metadata={"blob": HUGE}), "either",
         r"too (large|long)|413|limit|exceeds", server_side=True),
    # -- BudDeployment ----------------------------------------------------------------------
    Case("deployment replicas wrong type", deployment("c20", replicas="two"), "reject",
         r"spec\.replicas"),
    Case("deployment replicas negative", deployment("c21", replicas=-1), "reject",
         r"spec\.replicas"),
    Case("deployment replicas above max", deployment("c22", replicas=5000), "reject",
         r"spec\.replicas"),
    Case("deployment min > max",
         deployment("c23", autoScaling={"enabled": True, "minReplicas": 5, "maxReplicas": 2}),
         "reject", r"minReplicas must be less than or equal to maxReplicas"),
    Case("deployment targetCPU 0", deployment("c24", autoScaling={"enabled": True, "targetCPU": 0}),
         "reject", r"targetCPU"),
    Case("deployment targetMemory 101",
         deployment("c25", autoScaling={"enabled": True, "targetMemory": 101}), "reject",
         r"targetMemory"),
    Case("deployment maxReplicas 0", deployment("c26", autoScaling={"maxReplicas": 0}), "reject",
         r"maxReplicas"),
    Case("deployment modelRef and modelId", deployment("c27", modelRef={"name": "m"}), "reject",
         r"exactly one of modelRef and modelId"),
    Case("deployment no model", drop(deployment("c28"), "spec", "modelId"), "reject",
         r"exactly one of modelRef and modelId"),
    Case("deployment clusterId and clusterName", deployment("c29", clusterId="cluster_x"),
         "reject", r"exactly one of clusterId and clusterName"),
    Case("deployment cpu not a quantity", deployment("c30", resources={"cpu": "lots"}), "reject",
         r"resources\.cpu"),
    Case("deployment memory bad unit", deployment("c31", resources={"memory": "1Qi"}), "reject",
         r"resources\.memory"),
    Case("deployment gpu above max", deployment("c32", resources={"gpu": 100}), "reject",
         r"resources\.gpu"),
    Case("deployment stopped not a bool", deployment("c33", stopped="maybe"), "reject",
         r"spec\.stopped"),
    Case("deployment unknown cluster", deployment("c34", clusterName="atlantis"), "stall",
         r"atlantis"),
    Case("deployment gpuType injection",
         deployment("c35", resources={"cpu": "1", "gpuType": "A100\"}; DROP TABLE x; --" * 3}),
         "reject", r"gpuType"),
    # -- BudPipeline ------------------------------------------------------------------------
    Case("pipeline step id uppercase", pipeline("c36", [{"id": "Step_A", "action": "log"}]),
         "reject", r"steps\[0\]\.id"),
    Case("pipeline step id unicode", pipeline("c37", [{"id": "étape", "action": "log"}]),
         "reject", r"steps\[0\]\.id"),
    Case("pipeline step id injection", pipeline("c38", [{"id": "a;drop", "action": "log"}]),
         "reject", r"steps\[0\]\.id"),
    Case("pipeline action uppercase", pipeline("c39", [{"id": "a", "action": "Log"}]), "reject",
         r"steps\[0\]\.action"),
    Case("pipeline unknown action", pipeline("c40", [{"id": "zap", "action": "teleport"}]),
         "stall", r"step zap uses unknown action 'teleport'"),
    Case("pipeline cycle",
         pipeline("c41", [{"id": "a", "action": "log", "dependsOn": ["b"]},
                          {"id": "b", "action": "log", "dependsOn": ["a"]}]),
         "stall", r"cycle"),
    Case("pipeline self dependency",
         pipeline("c42", [{"id": "a", "action": "log", "dependsOn": ["a"]}]), "reject",
         r"step a depends on itself"),
    Case("pipeline dangling dependency",
         pipeline("c43", [{"id": "a", "action": "log", "dependsOn": ["ghost"]}]), "reject",
         r"every dependsOn entry must name a step"),
    Case("pipeline duplicate ids", pipeline("c44", [S, S]), "reject", r"step ids must be unique"),
    Case("pipeline retry maxAttempts 0",
         pipeline("c45", [{**S, "retry": {"maxAttempts": 0}}]), "reject", r"maxAttempts"),
    Case("pipeline retry backoff 0",
         pipeline("c46", [{**S, "retry": {"maxAttempts": 2, "backoffMultiplier": 0}}]), "reject",
         r"backoffMultiplier"),
    Case("pipeline timeout 0", pipeline("c47", [{**S, "timeoutSeconds": 0}]), "reject",
         r"timeoutSeconds"),
    Case("pipeline timeout huge", pipeline("c48", [{**S, "timeoutSeconds": 10**9}]), "reject",
         r"timeoutSeconds"),
    Case("pipeline too many steps",
         pipeline("c49", [{"id": f"s{i}", "action": "log"} for i in range(101)]), "reject",
         r"steps"),
    Case("pipeline too many dependencies",
         pipeline("c50", [*({"id": f"s{i}", "action": "log"} for i in range(17)),
                          {"id": "z", "action": "log", "dependsOn": [f"s{i}" for i in range(17)]}]),
         "reject", r"dependsOn"),
    Case("pipeline description too long", pipeline("c51", description="d" * 5000), "reject",
         r"description"),
    Case("pipeline paused not a bool", pipeline("c52", paused="no"), "reject", r"spec\.paused"),
    Case("pipeline condition does not parse",
         pipeline("c53", [{**S, "condition": "params.env == == 'prod'"}]), "stall",
         r"step s|condition"),
    Case("pipeline template sandbox escape",
         pipeline("c54", [{**S, "params": {
             "message": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}]),
         "stall", r"step s|unsafe|sandbox|template"),
    Case("pipeline condition on a step that is not upstream",
         pipeline("c55", [{"id": "a", "action": "log"},
                          {"id": "b", "action": "log", "condition": "steps.a.status == 'x'"}]),
         "stall", r"upstream|step b"),
    Case("pipeline template that does not parse",
         pipeline("c56", [{**S, "params": {"message": "{{ params.x }} {% for %}"}}]),
         "stall", r"step s|template"),
    Case("pipeline oversized params", pipeline("c57", [{**S, "params": {"message": HUGE}}]),
         "either", r"too (large|long)|413|limit|exceeds", server_side=True),
    Case("pipeline no steps", pipeline("c58", []), "either", r"steps"),
    # -- BudExecution -----------------------------------------------------------------------
    Case("execution pipelineRef and pipelineId", execution("c59", pipelineRef={"name": "p"}),
         "reject", r"exactly one of pipelineRef and pipelineId"),
    Case("execution no pipeline", drop(execution("c60"), "spec", "pipelineId"), "reject",
         r"exactly one of pipelineRef and pipelineId"),
    Case("execution ttl negative", execution("c61", ttlSecondsAfterFinished=-1), "reject",
         r"ttlSecondsAfterFinished"),
    Case("execution params immutable", execution("c62", params={"x": 2}), "reject",
         r"params is immutable", before=execution("c62", params={"x": 1})),
    Case("execution cancel cannot be unset", execution("c63", cancel=False), "reject",
         r"cancel cannot be unset", before=execution("c63", cancel=True)),
    Case("execution pipeline that does not exist", execution("c64", pipelineId="pipe_nope"),
         "stall", r"pipe_nope|not found"),
]  # fmt: skip


def kubectl_apply(
    kube: Any, ns: str, doc: dict[str, Any], server_side: bool = False
) -> tuple[int, str]:
    ssa = ["--server-side", "--field-manager=budai-faults"] if server_side else []
    proc = kube.kubectl("apply", *ssa, "-n", ns, "-f", "-", input=json.dumps(doc), check=False)
    return proc.returncode, (proc.stderr or "") + (proc.stdout or "")


def test_bad_manifest_corpus(
    kube: Any,
    kube_namespace: str,
    fault_gateway: LocalGateway,
    operators: Callable[..., OperatorRunner],
) -> None:
    assert len(CASES) >= 50 and len({c.name for c in CASES}) == len(CASES)
    ns = kube_namespace
    gw = fault_gateway
    op = operators(ns)
    outcome: dict[str, str] = {}
    problems: list[str] = []
    accepted: dict[str, Case] = {}  # kind/name -> case
    for case in CASES:
        if case.before is not None:
            rc, out = kubectl_apply(kube, ns, case.before)
            assert rc == 0, f"{case.name}: the valid original was refused: {out}"
        rc, out = kubectl_apply(kube, ns, case.doc, case.server_side)
        if rc != 0:
            outcome[case.name] = "rejected"
            if case.expect == "stall":
                problems.append(f"{case.name}: rejected, expected Stalled: {out[:300]}")
            elif not re.search(case.says, out, re.I):
                problems.append(f"{case.name}: rejected without naming /{case.says}/: {out[:400]}")
            elif re.search(r"Traceback|panic|internal error", out):
                problems.append(f"{case.name}: rejection is a crash report: {out[:400]}")
        elif case.before is not None or case.expect == "reject":
            outcome[case.name] = "ACCEPTED"
            problems.append(f"{case.name}: accepted by the API server, expected a rejection")
        else:
            accepted[f"{case.doc['kind']}/{case.doc['metadata']['name']}"] = case

    # Every accepted bad manifest must end Stalled with a reason and a message.
    def stalled() -> dict[str, dict[str, Any]]:
        found = {}
        for o in all_objects(kube, ns):
            key = f"{o['kind']}/{o['metadata']['name']}"
            if key in accepted and cond(o, "Stalled").get("status") == "True":
                found[key] = cond(o, "Stalled")
        return found

    deadline = time.monotonic() + 60
    seen = stalled()
    while len(seen) < len(accepted) and time.monotonic() < deadline:
        time.sleep(2)
        seen = stalled()
    for key, case in accepted.items():
        got = seen.get(key)
        if got is None:
            state = next(
                (o.get("status") for o in all_objects(kube, ns)
                 if f"{o['kind']}/{o['metadata']['name']}" == key), None,
            )  # fmt: skip
            outcome[case.name] = "NOT STALLED"
            problems.append(f"{case.name}: accepted and not Stalled after 60s: {str(state)[:500]}")
            continue
        outcome[case.name] = f"Stalled {got.get('reason')}"
        if not got.get("reason") or not re.search(case.says, got.get("message", ""), re.I):
            problems.append(f"{case.name}: Stalled {got.get('reason')!r} without /{case.says}/: "
                            f"{got.get('message', '')[:300]}")  # fmt: skip

    # No hot loop on what cannot be fixed: count every /v1 request at the gateway for 15 s.
    counter = gw.add_fault("/v1/*", latency=0.0)
    before = sum(op.gateway_requests().values())
    time.sleep(15)
    at_gateway = next(f["hits"] for f in gw.local("GET", "/faults")["data"]
                      if f["id"] == counter["id"])  # fmt: skip
    from_metrics = sum(op.gateway_requests().values()) - before
    rate = at_gateway / 15
    # Idle background is a list per kind per refresh (2 s) plus cluster health: about 2/s.
    # One retry per second per stalled resource would be far above 5/s.
    if rate > 5:
        problems.append(
            f"operator hot-loops: {at_gateway} gateway requests in 15 s ({rate:.1f}/s) "
            f"with {len(accepted)} stalled resources; metrics say {from_metrics:.0f}"
        )
    if not op.alive() or op.starts != 1:
        problems.append(f"the operator crashed: alive={op.alive()} starts={op.starts}")
    tracebacks = op.logs().count("Traceback")
    if tracebacks:
        first = op.logs()[op.logs().index("Traceback") :][:1500]
        problems.append(f"{tracebacks} tracebacks in the operator log; first:\n{first}")
    counts = {v: list(outcome.values()).count(v) for v in sorted(set(outcome.values()))}
    print(f"bad input: {len(CASES)} manifests -> {counts}; gateway requests {rate:.1f}/s")
    assert not problems, f"{len(problems)}/{len(CASES)} cases wrong ({counts}):\n" + "\n".join(
        problems
    )
