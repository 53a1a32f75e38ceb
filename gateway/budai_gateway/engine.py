"""The pipeline engine: runs an execution's DAG with the contract's semantics.

One asyncio task per running execution. Every state change of a step is written to the store
before the engine moves on, so a restarted gateway resumes an execution from what it persisted
(steps that were running when the process died run again; finished ones are kept).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from budai.pipeline_rules import retry_delay
from budai_gateway.actions import ACTION_FUNCS, Context, StepFailed
from budai_gateway.errors import printable
from budai_gateway.expressions import Evaluator
from budai_gateway.schemas import Definition, Step
from budai_gateway.services.executions import TERMINAL
from budai_gateway.services.state import State, iso
from budai_gateway.tenancy import current_project

log = logging.getLogger("budai_gateway.engine")
StepResult = tuple[str, Any, str | None]
"""A step's id, its output and its error (None when it succeeded)."""


class Engine:
    """The :class:`~budai_gateway.services.executions.ExecutionRunner` of the gateway: one task
    and one cancel event per running execution."""

    def __init__(self, actions: Context) -> None:
        self.actions = actions
        self.state: State = actions.state
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.cancel_events: dict[str, asyncio.Event] = {}

    def active(self) -> int:
        return len(self.tasks)

    def start(self, exec_id: str) -> None:
        if exec_id in self.tasks:
            return
        self.cancel_events[exec_id] = asyncio.Event()
        self.tasks[exec_id] = asyncio.create_task(self._run_guarded(exec_id))

    def cancel(self, exec_id: str) -> None:
        event = self.cancel_events.get(exec_id)
        if event is not None:
            event.set()
        elif exec_id not in self.tasks:
            self.start(exec_id)  # a runner that starts sees cancel_requested and stops

    def stop_all(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        self.tasks.clear()

    async def _run_guarded(self, exec_id: str) -> None:
        store = self.state.store
        # The runner acts for the execution's project, so its actions see only that project's
        # objects, whoever started the task (a request, or the scheduler after a restart).
        current_project.set(store.project_of(exec_id))
        try:
            await Runner(self, exec_id).run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("execution %s crashed", exec_id)
            doc = store.get("execution", exec_id)
            if doc is not None and doc["status"] not in TERMINAL:
                error = f"internal engine error: {exc!r}"
                doc.update(status="failed", error=error, completed_at=iso())
                store.put("execution", doc)
        finally:
            self.tasks.pop(exec_id, None)
            self.cancel_events.pop(exec_id, None)


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _iso_to_ts(value: str | None) -> float | None:
    if value is None:
        return None
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Runner:
    """One execution's run: the DAG walk, each step's attempts, the caps on outputs."""

    def __init__(self, engine: Engine, exec_id: str) -> None:
        self.state = engine.state
        self.actions = engine.actions
        self.exec_id = exec_id
        limits = self.state.settings.limits
        self.evaluator = Evaluator(
            self.state.sandbox() if limits.template_budgets else None,
            limits.template_max_output_bytes if limits.template_budgets else None,
        )
        self.cancel_event = engine.cancel_events.setdefault(exec_id, asyncio.Event())

    def _save_step(self, step: dict[str, Any]) -> None:
        self.state.store.put_step(self.exec_id, step)

    async def run(self) -> None:
        store = self.state.store
        doc = store.get("execution", self.exec_id)
        if doc is None or doc["status"] in TERMINAL:
            return
        internal = store.get_internal(self.exec_id)
        definition = Definition.model_validate(internal["definition"])
        self.specs: dict[str, Step] = {s.id: s for s in definition.steps}
        self.states = {s["id"]: s for s in store.steps(self.exec_id)}
        self._recover_interrupted(internal)
        if doc["status"] == "pending":
            doc["status"] = "running"
            doc["started_at"] = iso()
            store.put("execution", doc)
        started_ts = _iso_to_ts(doc["started_at"]) or time.time()
        self._prepare(doc)
        cancelled = await self._walk(bool(internal.get("cancel_requested")))
        self._conclude(doc, cancelled, started_ts)

    def _recover_interrupted(self, internal: dict[str, Any]) -> None:
        """A step that was running when the gateway died runs again, a bounded number of times:
        a step that crashes or wedges the gateway must not be replayed for ever."""
        max_restarts = self.state.settings.limits.max_step_restarts
        restarts: dict[str, int] = dict(internal.get("restarts") or {})
        interrupted = [st for st in self.states.values() if st["status"] == "running"]
        for st in interrupted:
            restarts[st["id"]] = restarts.get(st["id"], 0) + 1
        if interrupted:
            internal["restarts"] = restarts
            self.state.store.put_internal(self.exec_id, internal)
        for st in interrupted:
            if restarts[st["id"]] > max_restarts:
                st["status"] = "failed"
                st["error"] = (
                    f"the gateway stopped {restarts[st['id']]} times while this step ran; "
                    f"not run again (limits.max_step_restarts is {max_restarts})"
                )
                st["completed_at"] = iso()
            else:
                st["status"] = "pending"
            self._save_step(st)

    def _prepare(self, doc: dict[str, Any]) -> None:
        """The walk's bookkeeping from the persisted steps: context, waits, what is ready."""
        states, specs = self.states, self.specs
        self.ctx_steps: dict[str, dict[str, Any]] = {
            sid: {
                "status": st["status"],
                "output": st["output"],
                "outputs": st["output"],
                "error": st["error"],
            }
            for sid, st in states.items()
        }
        self.context = {"params": doc["params"], "steps": self.ctx_steps}
        self.children: dict[str, list[str]] = {sid: [] for sid in specs}
        self.waiting: dict[str, int] = {}
        for sid, spec in specs.items():
            deps = set(spec.depends_on)
            for d in deps:
                self.children[d].append(sid)
            self.waiting[sid] = sum(
                1 for d in deps if states[d]["status"] not in ("completed", "skipped")
            )
        self.ready = [
            sid for sid in specs if states[sid]["status"] == "pending" and self.waiting[sid] == 0
        ]
        self.failure: str | None = None
        failed_earlier = [s for s in states.values() if s["status"] == "failed"]
        if failed_earlier:
            first = failed_earlier[0]
            self.failure = f"step '{first['id']}' failed: {first['error']}"
        self.output_total = sum(
            _json_size(st["output"]) for st in states.values() if st["status"] == "completed"
        )

    def _over_cap(self, output: Any) -> str | None:
        """The error for an output over a cap, naming the cap; None when it fits."""
        limits = self.state.settings.limits
        size = _json_size(_jsonable(output))
        if size > limits.max_step_output_bytes:
            return (
                f"step output is {size:,} bytes, over the {limits.max_step_output_bytes:,}"
                "-byte cap (limits.max_step_output_bytes)"
            )
        if self.output_total + size > limits.max_execution_output_bytes:
            return (
                f"the execution's outputs would reach {self.output_total + size:,} bytes, over "
                f"the {limits.max_execution_output_bytes:,}-byte cap "
                "(limits.max_execution_output_bytes)"
            )
        self.output_total += size
        return None

    def _finish_step(self, sid: str, status: str, output: Any, error: str | None) -> None:
        st = self.states[sid]
        now = time.time()
        st["status"] = status
        st["output"] = _jsonable(output) if status == "completed" else None
        st["error"] = error
        if status != "skipped" or st["started_at"] is not None:
            st["completed_at"] = iso(now)
            begun = _iso_to_ts(st["started_at"])
            st["duration_seconds"] = round(now - begun, 6) if begun else None
        self._save_step(st)
        self.ctx_steps[sid] = {
            "status": status,
            "output": st["output"],
            "outputs": st["output"],
            "error": error,
        }
        if status in ("completed", "skipped"):
            for child in self.children[sid]:
                self.waiting[child] -= 1
                if self.waiting[child] == 0:
                    self.ready.append(child)

    async def _launch_ready(self, running: dict[asyncio.Task[StepResult], str]) -> None:
        """Start every ready step whose condition holds (skip the others), until one fails."""
        while self.ready and self.failure is None:
            sid = self.ready.pop(0)
            spec = self.specs[sid]
            st = self.states[sid]
            if st["status"] != "pending":
                continue
            if spec.condition is not None:
                try:
                    go = await self.evaluator.condition_async(spec.condition, self.context)
                except Exception as exc:
                    self._finish_step(sid, "failed", None, f"condition failed: {exc}")
                    self.failure = f"step '{sid}' failed: condition failed: {exc}"
                    return
                if not go:
                    self._finish_step(sid, "skipped", None, None)
                    continue
            st["status"] = "running"
            if st["started_at"] is None:
                st["started_at"] = iso()
            self.ctx_steps[sid]["status"] = "running"
            self._save_step(st)
            running[asyncio.create_task(self._run_step(spec, st, self.context))] = sid

    async def _walk(self, cancelled: bool) -> bool:
        """Run the DAG until nothing is left to run; True when it was cancelled."""
        running: dict[asyncio.Task[StepResult], str] = {}
        cancel_wait: asyncio.Task[Any] = asyncio.create_task(self.cancel_event.wait())
        try:
            while True:
                if self.cancel_event.is_set():
                    cancelled = True
                if not cancelled:
                    await self._launch_ready(running)
                if not running:
                    return cancelled
                done, _ = await asyncio.wait(
                    [*running, cancel_wait], return_when=asyncio.FIRST_COMPLETED
                )
                if cancel_wait in done:
                    for task in running:
                        task.cancel()
                    await asyncio.gather(*running, return_exceptions=True)
                    for sid in running.values():
                        self._finish_step(sid, "failed", None, "cancelled")
                    running.clear()
                    return True
                for finished in done:
                    sid = running.pop(finished)
                    _, output, error = finished.result()
                    if error is None:
                        error = self._over_cap(output)
                    if error is None:
                        self._finish_step(sid, "completed", output, None)
                    else:
                        self._finish_step(sid, "failed", None, error)
                        if self.failure is None:
                            self.failure = f"step '{sid}' failed: {error}"
        finally:
            cancel_wait.cancel()
            for task in running:
                task.cancel()

    def _conclude(self, doc: dict[str, Any], cancelled: bool, started_ts: float) -> None:
        """Skip what never ran; the execution's final status, error and duration."""
        store = self.state.store
        leftovers = [st for st in self.states.values() if st["status"] == "pending"]
        for st in leftovers:
            st["status"] = "skipped"
        if leftovers:
            store.put_steps(self.exec_id, leftovers)
        doc = store.get("execution", self.exec_id) or doc
        now = time.time()
        if cancelled:
            doc["status"] = "cancelled"
            doc["error"] = "cancelled by request"
        elif self.failure is not None:
            doc["status"] = "failed"
            doc["error"] = self.failure
        else:
            doc["status"] = "completed"
            doc["error"] = None
        doc["completed_at"] = iso(now)
        doc["duration_seconds"] = round(now - started_ts, 6)
        store.put("execution", doc)

    async def _run_step(
        self, spec: Step, st: dict[str, Any], context: dict[str, Any]
    ) -> StepResult:
        retry = spec.retry
        max_attempts = retry.max_attempts if retry else 1
        func = ACTION_FUNCS[spec.action]
        while True:
            attempt = st["attempts"] + 1
            if attempt > 1:
                st["attempts"] = attempt
                self._save_step(st)
            else:
                st["attempts"] = attempt
            error: str
            try:
                params = await self.evaluator.render_async(spec.params, context)
            except Exception as exc:
                # Rendering is deterministic: retrying cannot help.
                return spec.id, None, f"template error: {exc}"
            try:
                coro = func(self.actions, params)
                if spec.timeout_seconds is not None:
                    output = await asyncio.wait_for(coro, spec.timeout_seconds)
                else:
                    output = await coro
                return spec.id, output, None
            except TimeoutError:
                error = f"timed out after {spec.timeout_seconds:g}s"
            except StepFailed as exc:
                error = str(exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt >= max_attempts:
                if max_attempts > 1:
                    error = f"{error} (after {attempt} attempts)"
                return spec.id, None, error
            assert retry is not None
            delay = retry_delay(attempt, retry.initial_delay_seconds, retry.backoff_multiplier)
            log.info(
                "step %s attempt %d failed (%s); retrying in %.3fs",
                spec.id,
                attempt,
                printable(error),
                delay,
            )
            await asyncio.sleep(delay)
