# The page's own spelling (List, Dict, Optional) is kept on purpose.
# ruff: noqa: UP006
"""The reference page's snippets exactly as printed, for ``mypy --strict`` only (never run):
``"your-key"``, ``model=""``, ``messages=[]`` and ``{"steps": [...]}`` must type-check even
though they cannot run. ``seed_snippets.py`` holds the runnable versions."""

from __future__ import annotations

from typing import Any, Dict, List  # noqa: UP035

from budai import BudClient
from budai.types import ChatCompletion, Deployment, Execution, Pipeline, PipelineDefinition


def typed_only() -> None:
    client: BudClient = BudClient(api_key="your-key")

    # Type-checked
    response: ChatCompletion = client.chat.completions.create(
        model="llama-3.2-1b",
        messages=[{"role": "user", "content": "Hello"}]
    )

    deployment: Deployment = client.deployments.create(
        model_id="model_abc",
        cluster_id="cluster_prod"
    )

    client2 = BudClient(api_key="your-key")
    response2 = client2.chat.completions.create(
        model="",
        messages=[],
        temperature=0.7,
    )
    content = response2.choices[0].message.content
    maybe: str | None = content
    print(response, deployment, maybe)


def process_batch(
    client: BudClient,
    prompts: List[str]
) -> List[ChatCompletion]:
    return [
        client.chat.completions.create(
            model="llama-3.2-1b",
            messages=[{"role": "user", "content": p}]
        )
        for p in prompts
    ]


def create_deployment_pipeline(
    client: BudClient,
    model_id: str,
    cluster_id: str
) -> Pipeline:
    return client.pipelines.create(
        name="Deploy",
        definition={
            "steps": [...]
        }
    )


def run_and_wait(
    client: BudClient,
    pipeline_id: str,
    params: Dict[str, Any]
) -> Execution:
    return client.executions.create(
        pipeline_id=pipeline_id,
        params=params,
        wait=True
    )


def pydantic_models() -> None:
    from budai.models import PipelineModel

    pipeline = PipelineModel(
        name="Test",
        definition={
            "steps": [...]
        }
    )
    json_str = pipeline.model_dump_json()
    parsed = PipelineModel.model_validate_json(json_str)
    print(parsed)


def definitions() -> PipelineDefinition:
    definition: PipelineDefinition = {"steps": [{"id": "a", "action": "log"}]}
    return definition
