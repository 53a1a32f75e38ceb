"""Property-based conformance: schemathesis drives the live gateway from its own /openapi.json.

Every operation gets a bounded number of generated requests, valid and invalid; the default
checks assert no 5xx, documented status codes, content types and response schemas. Only
``positive_data_acceptance`` is left out: schema-valid input can still break rules JSON Schema
cannot state (an unknown ``after`` cursor, a cyclic DAG), and those are 400/422 by contract. (The
schemathesis pytest plugin's lazy fixtures do not work with this pytest, so this uses its
Python API with hypothesis directly.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from budai_gateway.testing import LocalGateway

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzz_gateway() -> Iterator[LocalGateway]:
    """A gateway of its own: generated requests create and delete objects at random."""
    with LocalGateway(speed=50) as gw:
        # Generated requests arrive fast; do not let the rate limit turn them into 429s.
        gw.local("POST", "/rate_limit", {"capacity": 100000, "refill_per_second": 100000})
        yield gw


def load_schema(gw: LocalGateway) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict(
        {
            "base-url": gw.root_url,
            "headers": {"Authorization": f"Bearer {gw.api_key}"},
        }
    )
    schema: schemathesis.BaseSchema = schemathesis.openapi.from_url(
        gw.root_url + "/openapi.json", config=config
    )
    return schema


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi(fuzz_gateway: LocalGateway, mode: GenerationMode) -> None:
    schema = load_schema(fuzz_gateway)
    headers = {"Authorization": f"Bearer {fuzz_gateway.api_key}"}
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20
    for op in operations:
        if op.path.startswith("/_local"):
            continue  # test controls: reset and faults would sabotage the run itself

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=fuzz_gateway.root_url,
                headers=headers,
                excluded_checks=[positive_data_acceptance],
            )

        try:
            check()
        except Unsatisfiable:
            # Nothing invalid can be said to this operation (e.g. only free-form path ids).
            assert mode is GenerationMode.NEGATIVE, op.label
        except Exception as exc:
            failures.append(f"{op.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
