"""Typed helpers for the gateway's built-in actions, mixed into ``Pipeline``.

Each helper has the action's parameters as keyword arguments with their types (a template
``Expr`` is accepted wherever a value is), so mypy rejects a misspelled or wrongly typed
parameter before anything is sent. The parameters are those of the action's params model in
``budai.pipeline_actions`` (``tests/dsl/test_action_helpers.py`` fails when they drift).
Parameters left as ``None`` are not sent, which keeps definitions small and lets the gateway
apply its defaults. Every helper also takes the step options ``depends_on``, ``condition``,
``retry`` and ``timeout`` (the step's ``timeout_seconds``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from budai.pipeline_actions import HttpMethod, LogLevel
from budai.types import AutoScaling, ChatCompletionMessageParam, ModelSource, Resources

from ._expr import Expr

if TYPE_CHECKING:
    from ._pipeline import Condition, PipelineStep, Retry

__all__ = ["ActionHelpers"]

Str = str | Expr
Int = int | Expr
Float = float | Expr
Bool = bool | Expr


def _given(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class ActionHelpers:
    """One method per built-in action; each adds a step and returns it."""

    if TYPE_CHECKING:

        def step(
            self,
            id: str,
            action: str,
            *,
            params: Mapping[str, Any] | None = None,
            depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
            condition: Condition | None = None,
            retry: Retry | None = None,
            timeout: float | None = None,
            **kwparams: Any,
        ) -> PipelineStep: ...

    def log(
        self,
        id: str,
        *,
        message: Any,
        level: LogLevel | Expr | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Write ``message`` to the gateway log; output ``{message, level, logged}``."""
        return self.step(
            id, "log", params=_given(message=message, level=level),
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def transform(
        self,
        id: str,
        *,
        value: Any,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Render ``value``; the output is the rendered value (a string that is a single
        ``{{ expr }}`` keeps the expression's native type)."""
        return self.step(
            id, "transform", params={"value": value},
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def set_output(
        self,
        id: str,
        outputs: Mapping[str, Any],
        *,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Make ``outputs`` (templates rendered) the step's output."""
        return self.step(
            id, "set_output", params={"outputs": dict(outputs)},
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def fail(
        self,
        id: str,
        *,
        message: Str | None = None,
        error_code: Str | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Fail the step (and so the execution) with ``message``."""
        return self.step(
            id, "fail", params=_given(message=message, error_code=error_code),
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def wait(
        self,
        id: str,
        *,
        seconds: Float,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Sleep ``seconds`` of real time."""
        return self.step(
            id, "wait", params={"seconds": seconds},
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def http_request(
        self,
        id: str,
        *,
        url: Str,
        method: HttpMethod | Expr | None = None,
        headers: Mapping[str, Str] | None = None,
        json: Any = None,
        body: Str | None = None,
        timeout_seconds: Float | None = None,
        expected_status: int | Sequence[int] | Expr | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Make an HTTP request; output ``{status_code, headers, body}``. The step fails when the
        status is not ``expected_status`` (or is >= 400 when that is not given).
        ``timeout_seconds`` bounds the request, ``timeout`` the whole attempt."""
        params = _given(
            method=method, url=url, headers=dict(headers) if headers is not None else None,
            json=json, body=body, timeout_seconds=timeout_seconds,
            expected_status=list(expected_status)
            if isinstance(expected_status, Sequence) else expected_status,
        )  # fmt: skip
        return self.step(
            id, "http_request", params=params,
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def model_add(
        self,
        id: str,
        *,
        name: Str,
        source: ModelSource | Expr,
        uri: Str,
        metadata: Mapping[str, Any] | None = None,
        wait: Bool | None = None,
        wait_timeout_seconds: Float | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Register a model and (unless ``wait=False``) wait until it is available; output the
        model (``step.output["id"]`` is its id)."""
        params = _given(
            name=name, source=source, uri=uri,
            metadata=dict(metadata) if metadata is not None else None,
            wait=wait, wait_timeout_seconds=wait_timeout_seconds,
        )  # fmt: skip
        return self.step(
            id, "model_add", params=params,
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def model_delete(
        self,
        id: str,
        *,
        model_id: Str,
        wait: Bool | None = None,
        wait_timeout_seconds: Float | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Delete a model; output ``{model_id, deleted}``."""
        params = _given(model_id=model_id, wait=wait, wait_timeout_seconds=wait_timeout_seconds)
        return self.step(
            id, "model_delete", params=params,
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def deployment_create(
        self,
        id: str,
        *,
        model_id: Str,
        cluster_id: Str,
        name: Str | None = None,
        replicas: Int | None = None,
        resources: Resources | None = None,
        auto_scaling: AutoScaling | None = None,
        wait: Bool | None = None,
        wait_timeout_seconds: Float | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Create a deployment and (unless ``wait=False``) wait until it is active; output it."""
        params = _given(
            model_id=model_id, cluster_id=cluster_id, name=name, replicas=replicas,
            resources=dict(resources) if resources is not None else None,
            auto_scaling=dict(auto_scaling) if auto_scaling is not None else None,
            wait=wait, wait_timeout_seconds=wait_timeout_seconds,
        )  # fmt: skip
        return self.step(
            id, "deployment_create", params=params,
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def deployment_scale(
        self,
        id: str,
        *,
        deployment_id: Str,
        replicas: Int,
        wait: Bool | None = None,
        wait_timeout_seconds: Float | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Set a deployment's replicas and wait until it is active again; output it."""
        params = _given(
            deployment_id=deployment_id, replicas=replicas,
            wait=wait, wait_timeout_seconds=wait_timeout_seconds,
        )  # fmt: skip
        return self.step(
            id, "deployment_scale", params=params,
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def deployment_delete(
        self,
        id: str,
        *,
        deployment_id: Str,
        wait: Bool | None = None,
        wait_timeout_seconds: Float | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Delete a deployment and wait until it is gone; output ``{deployment_id, deleted}``."""
        params = _given(
            deployment_id=deployment_id, wait=wait, wait_timeout_seconds=wait_timeout_seconds
        )
        return self.step(
            id, "deployment_delete", params=params,
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def cluster_health(
        self,
        id: str,
        *,
        cluster_id: Str,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Read a cluster's health; output the ``ClusterHealth`` plus ``healthy`` (bool)."""
        return self.step(
            id, "cluster_health", params={"cluster_id": cluster_id},
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip

    def chat_completion(
        self,
        id: str,
        *,
        model: Str,
        messages: Sequence[ChatCompletionMessageParam] | None = None,
        prompt: Str | None = None,
        max_tokens: Int | None = None,
        temperature: Float | None = None,
        depends_on: PipelineStep | Iterable[PipelineStep | str] | str | None = None,
        condition: Condition | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> PipelineStep:
        """Run a chat completion (``messages``, or a single user ``prompt``); output
        ``{content, usage, finish_reason, model}``."""
        params = _given(
            model=model, messages=[dict(m) for m in messages] if messages is not None else None,
            prompt=prompt, max_tokens=max_tokens, temperature=temperature,
        )  # fmt: skip
        return self.step(
            id, "chat_completion", params=params,
            depends_on=depends_on, condition=condition, retry=retry, timeout=timeout,
        )  # fmt: skip
