"""Every public sync method has an async twin with the same signature, resource by resource,
including the ``.with_response`` wrappers and the clients themselves."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from budai import AsyncBudClient, BudClient
from budai.resources import chat, clusters, deployments, executions, models, pipelines

PAIRS: list[tuple[type[Any], type[Any]]] = [
    (BudClient, AsyncBudClient),
    (chat.Chat, chat.AsyncChat),
    (chat.Completions, chat.AsyncCompletions),
    (models.Models, models.AsyncModels),
    (deployments.Deployments, deployments.AsyncDeployments),
    (clusters.Clusters, clusters.AsyncClusters),
    (pipelines.Pipelines, pipelines.AsyncPipelines),
    (executions.Executions, executions.AsyncExecutions),
]
# Sync-only protocol methods and their async counterparts.
RENAMED = {"__enter__": "__aenter__", "__exit__": "__aexit__"}
# `list` returns a paginator usable with `await` and `async for`; the rest are coroutines.
NOT_COROUTINES = {"list", "with_options", "is_closed", "with_response", "completions"}


def public(cls: type[Any]) -> dict[str, Any]:
    return {name: member for name, member in inspect.getmembers(cls) if not name.startswith("_")}


def signature_of(member: Any) -> list[tuple[str, Any, Any]]:
    func = member.func if hasattr(member, "func") else member  # cached_property
    sig = inspect.signature(func)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=lambda c: c.__name__)
def test_every_sync_method_has_an_async_twin(sync_cls: type[Any], async_cls: type[Any]) -> None:
    sync_members = public(sync_cls)
    async_members = public(async_cls)
    assert sorted(sync_members) == sorted(async_members)
    for name, member in sync_members.items():
        twin = async_members[name]
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        assert signature_of(member) == signature_of(twin), name
        if callable(member) and not isinstance(member, type):
            is_coro = inspect.iscoroutinefunction(twin)
            assert is_coro == (name not in NOT_COROUTINES), name
    for sync_name, async_name in RENAMED.items():
        if sync_name in vars(sync_cls):
            assert async_name in vars(async_cls)
            assert len(signature_of(vars(sync_cls)[sync_name])) == len(
                signature_of(vars(async_cls)[async_name])
            )


def test_return_annotations_match_modulo_async_types() -> None:
    for sync_cls, async_cls in PAIRS[1:]:
        for name, member in vars(sync_cls).items():
            if name.startswith("_") or not callable(getattr(member, "func", member)):
                continue
            func = getattr(member, "func", member)
            ret = str(inspect.signature(func).return_annotation)
            twin_member = vars(async_cls)[name]
            twin = str(inspect.signature(getattr(twin_member, "func", twin_member))
                       .return_annotation)
            expected = (
                ret.replace("SyncPage[", "AsyncPaginator[")
                .replace("Stream[", "AsyncStream[")
            )
            if ret.endswith(("WithResponse", "WithStreamingResponse")) or ret == "Completions":
                expected = "Async" + ret
            assert twin == expected, f"{sync_cls.__name__}.{name}: {ret} vs {twin}"


def test_with_response_wrappers_cover_every_method() -> None:
    c = BudClient(api_key="k")
    a = AsyncBudClient(api_key="k")
    pairs = [(getattr(c, r), getattr(a, r))
             for r in ("models", "deployments", "clusters", "pipelines", "executions")]
    pairs.append((c.chat.completions, a.chat.completions))
    for sync_res, async_res in pairs:
        res = type(sync_res).__name__
        methods = {n for n, m in vars(type(sync_res)).items()
                   if inspect.isfunction(m) and not n.startswith("_")}
        assert methods == set(vars(sync_res.with_response)), res
        assert methods == set(vars(async_res.with_response)), res
        for name in methods:
            assert signature_of(getattr(sync_res.with_response, name)) == signature_of(
                getattr(sync_res, name)
            )
            assert signature_of(getattr(async_res.with_response, name)) == signature_of(
                getattr(async_res, name)
            )
    c.close()
