"""The types: lenient parsing (unknown fields and values kept), TypedDict attributes on response
objects, ``Response[T]``, pages, and the validating models of ``budai.models``."""

from __future__ import annotations

import typing
from datetime import datetime

import pytest
import typing_extensions
from pydantic import ValidationError as PydanticValidationError

import budai
import budai.types as t
from budai import exceptions as exc
from budai.models import (
    ClusterModel,
    DeploymentModel,
    ExecutionModel,
    ModelModel,
    PipelineModel,
)
from budai.types._base import parse_object

SEED_TYPES = [
    "ChatCompletion", "ChatCompletionChunk", "Choice", "Message", "ToolCall", "Usage", "Pipeline",
    "PipelineDefinition", "Step", "RetryConfig", "Execution", "ExecutionStep", "Model",
    "ModelSource", "Deployment", "AutoScaling", "Resources", "Cluster", "ClusterHealth",
    "AvailableResources", "Response", "SyncPage", "AsyncPage",
]


def test_every_seed_type_is_exported() -> None:
    for name in SEED_TYPES:
        assert name in t.__all__ and getattr(t, name) is not None
    assert typing.get_args(t.ModelSource) == ("hugging_face", "url", "local", "cloud")
    assert typing_extensions.is_typeddict(t.Step)
    assert typing_extensions.is_typeddict(t.AvailableResources)
    assert set(t.Step.__required_keys__) == {"id", "action"}
    assert set(t.RetryConfig.__required_keys__) == {"max_attempts", "backoff_multiplier"}


def test_unknown_fields_and_values_are_kept() -> None:
    m = parse_object(t.Model, {
        "id": "model_1", "name": "m", "source": "s3", "uri": "u", "status": "quarantined",
        "created_at": "2026-11-27T10:00:00Z", "size_bytes": 5, "new_field": {"x": 1},
    })
    assert m.source == "s3" and m.status == "quarantined"  # kept as sent
    assert isinstance(m.created_at, datetime) and m.size_bytes == 5  # the rest still validated
    assert m.new_field == {"x": 1}  # type: ignore[attr-defined]
    assert m.to_dict()["new_field"] == {"x": 1}
    ex = parse_object(t.Execution, {
        "id": "exec_1", "pipeline_id": "pipe_1", "status": "running",
        "steps": {"a": {"id": "a", "action": "log", "status": "running", "attempts": 2,
                        "started_at": "2026-11-27T10:00:00Z"}},
    })
    assert isinstance(ex.steps["a"], t.ExecutionStep) and ex.steps["a"].attempts == 2
    assert not ex.is_terminal


def test_a_non_object_body_is_an_api_error() -> None:
    with pytest.raises(exc.BudAPIError, match="list where a Model"):
        parse_object(t.Model, [])


def test_typed_dict_attributes_are_plain_dicts() -> None:
    d = parse_object(t.Deployment, {
        "id": "dep_1", "name": "d", "model_id": "m", "cluster_id": "c", "status": "active",
        "replicas": 1, "endpoint_url": None, "created_at": "2026-11-27T10:00:00Z",
        "auto_scaling": {"enabled": True, "min_replicas": 1, "max_replicas": 3,
                         "target_cpu": 70, "target_memory": 80, "cooldown": 30},
        "resources": {"cpu": "1", "memory": "2Gi", "gpu": 0, "gpu_type": None},
    })
    assert d.endpoint_url == ""  # null before the deployment serves
    assert d.auto_scaling == {"enabled": True, "min_replicas": 1, "max_replicas": 3,
                              "target_cpu": 70, "target_memory": 80, "cooldown": 30}
    assert type(d.resources) is dict and d.resources["memory"] == "2Gi"


def test_response_and_pages() -> None:
    r = t.Response(data=[1], headers={"a": "b"}, status_code=200, request_id="req_1",
                   rate_limit_remaining=None, rate_limit_reset=None)
    assert r.retries_taken == 0 and r.data == [1]
    calls: list[str] = []

    def fetch(after: str) -> t.SyncPage[int]:
        calls.append(after)
        return t.SyncPage([3, 4], False, None)

    page = t.SyncPage([1, 2], True, "c2", fetch)
    assert list(page) == [1, 2, 3, 4] and calls == ["c2"] and len(page) == 2
    assert "has_more=True" in repr(page) and page.object == "list"


def test_models_validate_and_round_trip() -> None:
    p = PipelineModel(name="Test", definition={"steps": [{"id": "a", "action": "log"}]})
    assert PipelineModel.model_validate_json(p.model_dump_json()) == p
    with pytest.raises(PydanticValidationError, match="step ids"):
        PipelineModel(name="x", definition={"steps": [{"id": "Bad Id", "action": "log"}]})
    with pytest.raises(PydanticValidationError):
        PipelineModel(name="x", definition={"steps": [{"id": "a"}]})  # no action
    with pytest.raises(PydanticValidationError):
        ModelModel(name="m", source="ftp", uri="u")  # type: ignore[arg-type]
    with pytest.raises(PydanticValidationError):
        ClusterModel(name="c", provider="gcp", region="r")  # type: ignore[arg-type]
    d = DeploymentModel(model_id="m", cluster_id="c", resources={"cpu": "1", "memory": "1Gi"})
    assert DeploymentModel.model_validate_json(d.model_dump_json()) == d
    e = ExecutionModel(pipeline_id="p")
    assert e.status == "pending"
    api = parse_object(t.Pipeline, {
        "id": "pipe_1", "name": "n", "definition": {"steps": [{"id": "a", "action": "log"}]},
        "created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:00Z",
        "status": "active",
    })
    assert PipelineModel.from_api(api).id == "pipe_1"


def test_stream_types_are_exported_lazily() -> None:
    from budai._streaming import AsyncStream, Stream

    assert budai.Stream is Stream and budai.AsyncStream is AsyncStream
