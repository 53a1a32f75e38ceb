"""The gateway's pipeline parsers fuzzed with hypothesis (schemathesis in tests/gateway covers the
OpenAPI surface; this goes deeper into what the schema cannot describe): random step graphs,
conditions and templates, hostile strings included. ``POST /pipelines/validate`` must always
answer 200 with ``valid`` and ``errors`` (or a 4xx for a malformed body), never a 5xx, and a
definition it calls valid must then be accepted by ``POST /pipelines``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budai_gateway.testing import LocalGateway

from .conftest import GATEWAY_CONFIG, LEDGER

ACTIONS = ["log", "transform", "set_output", "fail", "wait", "teleport", "", "LOG", "log\x00"]
IDS = st.sampled_from(["a", "b", "c", "d", "é", "a b", "{{x}}", "", "x" * 80])
EXPRESSIONS = st.sampled_from(
    [
        "params.env == 'prod'",
        "steps.a.output.n > 1",
        "steps.b.status == 'completed'",
        "params.x ==",
        "''.__class__.__mro__[1].__subclasses__()",
        "lipsum.__globals__['os'].system('id')",
        "{{ 1 }}",
        "range(10**9) | list",
        "cycler.__init__.__globals__",
        "\u202e\u0000",
    ]
)
TEMPLATES = st.one_of(
    EXPRESSIONS.map(lambda e: "{{ " + e + " }}"),
    st.sampled_from(["{% for %}", "{{", "}}", "{% raw %}", "{{ params.who }}"]),
    st.text(max_size=40),
)
STEPS = st.lists(
    st.fixed_dictionaries(
        {"id": IDS, "action": st.sampled_from(ACTIONS)},
        optional={
            "depends_on": st.lists(IDS, max_size=3),
            "condition": EXPRESSIONS,
            "params": st.dictionaries(
                st.sampled_from(["message", "value", "seconds"]), TEMPLATES, max_size=2
            ),
            "retry": st.fixed_dictionaries(
                {"max_attempts": st.integers(-1, 5)},
                optional={"backoff_multiplier": st.floats(-1, 3, allow_nan=False)},
            ),
            "timeout_seconds": st.one_of(st.integers(-5, 10), st.floats(allow_nan=True)),
        },
    ),
    max_size=6,
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with LocalGateway(speed=20, config=GATEWAY_CONFIG) as gw:
        LEDGER.secrets.update({gw.api_key, gw.read_key})
        with gw.client() as client:
            yield client
        LEDGER.add("gateway log (gateway fuzz)", gw.logs())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_validate_never_crashes_and_agrees_with_create(
    http: httpx.Client, steps: list[dict[str, Any]]
) -> None:
    definition = {"steps": steps}
    try:
        resp = http.post("/pipelines/validate", json={"definition": definition})
    except ValueError:  # a float('nan') the JSON encoder refuses: not a request a client can send
        return
    assert resp.status_code < 500, f"validate answered {resp.status_code}: {resp.text[:500]}"
    if resp.status_code != 200:
        assert resp.json()["error"]["message"], resp.text
        return
    body = resp.json()
    assert isinstance(body["valid"], bool) and isinstance(body["errors"], list), body
    created = http.post("/pipelines", json={"name": "fuzz", "definition": definition})
    assert created.status_code < 500, f"create answered {created.status_code}: {created.text[:500]}"
    if body["valid"]:
        assert created.status_code in (201, 409), (body, created.status_code, created.text[:300])
        if created.status_code == 201:
            http.delete(f"/pipelines/{created.json()['id']}")
    else:
        assert body["errors"] and all(e.get("message") for e in body["errors"]), body
        assert created.status_code in (400, 422), (body, created.status_code, created.text[:300])
