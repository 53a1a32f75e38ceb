"""Runs last in tests/faults (file order): the API keys handed out by every fault test are
searched for in everything those tests produced — operator and gateway log lines, custom
resources (status and annotations), Events, exception messages, failure reports — plus what
this test produces itself with verbose logging, so it never passes on an empty ledger.
``conftest.pytest_sessionfinish`` repeats the scan over what was added after this test."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from budai import BudClient
from budai.exceptions import AuthenticationError
from budai_gateway.testing import LocalGateway

from .conftest import LEDGER, find_leaks, snapshot_namespace
from .harness import OperatorRunner, execution_doc, model_doc, pipeline_doc, wait_converged

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]


def test_zz_no_api_key_anywhere(
    kube: Any,
    kube_namespace: str,
    fault_gateway: LocalGateway,
    operators: Callable[..., OperatorRunner],
) -> None:
    ns = kube_namespace
    gw = fault_gateway
    # Material of our own: a verbose operator through errors, retries and a lost response.
    op = operators(ns, extra_args=["--verbose"])
    gw.add_fault("/v1/*", status=500, count=5)
    gw.add_fault("/v1/pipelines", method="POST", drop_after=True, count=1)
    kube.apply("---\n".join([model_doc("s"), pipeline_doc("p"), execution_doc("x", "p")]),
               namespace=ns)  # fmt: skip
    wait_converged(kube, ns, 3, 120)
    time.sleep(3)  # a few idle polls in the log too
    with BudClient(api_key="bud_wrong_for_scan_0123456789", base_url=gw.url, max_retries=0) as bad:
        LEDGER.secrets.add("bud_wrong_for_scan_0123456789")
        with pytest.raises(AuthenticationError) as err:
            list(bad.models.list())
        LEDGER.add("sdk exception (wrong key)", f"{err.value!s} {err.value!r} {err.value.body!r}")
    snapshot_namespace(kube, ns, "secrets scan")
    LEDGER.add("operator log (secrets scan)", op.logs())
    LEDGER.add("gateway log (secrets scan)", gw.logs())
    # Cluster-wide too: every Bud resource and every Event the API server holds right now.
    for what in ("bm,bd,bp,bx", "events"):
        out = kube.kubectl("get", what, "-A", "-o", "json", timeout=120).stdout
        LEDGER.add(f"cluster-wide {what}", out)

    lines = sum(text.count("\n") + 1 for _, text in LEDGER.texts)
    leaks = find_leaks()
    assert not leaks, f"API key found in {len(leaks)} places: {json.dumps(leaks[:20], indent=1)}"
    print(
        f"secrets scan: {len(LEDGER.secrets)} keys searched in {len(LEDGER.texts)} texts "
        f"({lines} lines): 0 found"
    )
    assert len(LEDGER.texts) >= 6 and lines > 100, "too little material to prove anything"
