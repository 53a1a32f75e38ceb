"""A Pythonic builder for pipeline definitions.

Example::

    from budai.dsl import Pipeline, Retry

    with Pipeline("smoke", description="check a URL", retry=Retry(max_attempts=2)) as p:
        fetch = p.http_request("fetch", url=p.param("url"), expected_status=[200, 404])
        found = p.log("found", message=f"got {fetch.output['status_code']}")
        found.when(fetch.output["status_code"] == 200)
        missing = p.fail("missing", message="not there")
        missing.when(fetch.output["status_code"] == 404)
        fetch >> [found, missing]

    definition = p.build()   # a PipelineDefinition; raises PipelineValidationError listing
                             # every problem found
    client.pipelines.create(name=p.name, definition=p)

References: ``step.output["key"]`` renders ``{{ steps.<id>.output.key }}`` when used as a param
(or inside an f-string) and makes the step depend on ``step``; ``p.param("env")`` renders
``{{ params.env }}``. Conditions are expression objects built with ``==``, ``<``, ``&``, ``|``,
``~`` or raw Jinja strings, and may only read steps upstream of the step they guard.
"""

from ._expr import Expr, Raw, Ref
from ._pipeline import Condition, Pipeline, PipelineStep, PipelineValidationError, Retry

__all__ = [
    "Condition",
    "Expr",
    "Pipeline",
    "PipelineStep",
    "PipelineValidationError",
    "Raw",
    "Ref",
    "Retry",
]
