"""Budgeted evaluation of pipeline templates and conditions, in worker processes.

A template is attacker-controlled code as far as the gateway is concerned: ``10**(10**8)`` or
``'a' * 10**9`` is one operator call that no thread can interrupt. So templates that are more
than plain lookups run here, in a small pool of worker processes, each with

- checks before the expensive operators (``**``, ``*``, ``%`` and the padding methods/filters)
  so the common blow-ups fail at once with a message naming the budget;
- a count of loop iterations (every ``for`` iterates through a counting wrapper), a cap on
  string, list and output sizes, and a cap on integer digits;
- an address-space limit (``MemoryError`` ends the evaluation) and a wall-clock budget: the
  parent kills a worker that has not answered in time and starts a fresh one.

The parent side (:class:`SandboxPool`) talks to the workers from the event loop. Since a round
trip costs ~0.3 ms, a template is first tried in-process with the same environment and budgets
for a 5 ms CPU slice (every hook checks the clock, and the size checks bound any single
operation); one that needs more, or uses a super-linear filter, goes to a worker. A worker that
runs past 50 ms is niced below the gateway and replaced once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import operator
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.filters import FILTERS

from budai_gateway.expressions import (
    _FULL_EXPR,
    ExpressionError,
    _Env,
    _parse_expression,
    bare_condition,
    is_template,
)


@dataclass(frozen=True)
class Budgets:
    time_seconds: float = 2.0
    memory_mb: int = 512
    max_int_digits: int = 4300
    max_string_bytes: int = 1_000_000
    max_loop_iterations: int = 100_000
    max_output_bytes: int = 1_000_000


class BudgetExceeded(ExpressionError):
    """An evaluation went over one of its budgets; the message names the setting."""


class Reroute(Exception):
    """An in-process evaluation ran past its short slice: run it in a worker instead."""


def _over(what: str, size: int, cap: int, setting: str) -> BudgetExceeded:
    return BudgetExceeded(
        f"{what} would be {size:,} long, over the {cap:,} budget (limits.{setting})"
    )


_NUMBERS = (int, float)
_PLAIN = frozenset({str, int, float, bool, type(None)})
_SMALL = 2**62
_BINOPS = {"+": operator.add, "*": operator.mul, "%": operator.mod}
_BRACE_SPEC = re.compile(r"\{[^{}]*:((?:[^{}]|\{[^{}]*\})*)\}")
_PCT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class BudgetedEnv(_Env):
    """The pipeline sandbox with budgets. One evaluation at a time per process."""

    intercepted_binops = frozenset({"**", "*", "%", "+"})

    def __init__(self, budgets: Budgets) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.budgets = budgets
        self.iterations = 0
        self.deadline: float | None = None  # set for in-process runs (see SandboxPool.inline)
        self.ticks = 0
        self.max_bits = int(budgets.max_int_digits * math.log2(10)) + 1
        self.filters["_budget_iter"] = self._iterate
        self.filters["_budget_concat"] = self._concat
        for name in ("center", "indent", "wordwrap", "truncate", "format"):
            self.filters[name] = self._checked_filter(name)
        for name, fn in list(self.filters.items()):
            if not name.startswith("_") and name not in (
                "center",
                "indent",
                "wordwrap",
                "truncate",
                "format",
            ):
                self.filters[name] = self._sized_filter(fn)
        self.globals.clear()  # no range/lipsum/cycler/namespace: expressions see params, steps

    def tick(self) -> None:
        # CPU time of this thread, read every 64 hooks: a busy machine that preempts the
        # event loop does not make a cheap template look slow.
        if self.deadline is not None:
            self.ticks += 1
            if not self.ticks & 63 and time.thread_time() > self.deadline:
                raise Reroute

    # -- sizes ---------------------------------------------------------------------------------

    def check_size(self, value: Any) -> Any:
        b = self.budgets
        if isinstance(value, str | bytes) and len(value) > b.max_string_bytes:
            raise _over("a string", len(value), b.max_string_bytes, "template_max_string_bytes")
        if isinstance(value, list | tuple | dict) and len(value) > b.max_string_bytes:
            raise _over("a list", len(value), b.max_string_bytes, "template_max_string_bytes")
        if isinstance(value, int) and value.bit_length() > self.max_bits:
            raise BudgetExceeded(
                f"a number has over {b.max_int_digits:,} digits (limits.template_max_int_digits)"
            )
        return value

    def _check_width(self, width: Any) -> None:
        cap = self.budgets.max_string_bytes
        if isinstance(width, int) and width > cap:
            raise _over("a padded string", width, cap, "template_max_string_bytes")

    def _check_brace_format(self, fmt: str) -> None:
        for spec in _BRACE_SPEC.findall(fmt):
            if "{" in spec:
                raise BudgetExceeded("nested format specs are not allowed in templates")
            for digits in re.findall(r"\d+", spec):
                self._check_width(int(digits))

    def _check_percent_format(self, fmt: str) -> None:
        for m in _PCT_WIDTH.finditer(fmt):
            for part in m.groups():
                if part == "*":
                    raise BudgetExceeded("'*' widths are not allowed in % formatting")
                if part:
                    self._check_width(int(part))

    # -- operators -----------------------------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        # Fast path: arithmetic on machine-sized numbers cannot blow up.
        if (
            operator != "**"
            and type(left) in _NUMBERS
            and type(right) in _NUMBERS
            and -_SMALL < left < _SMALL
            and -_SMALL < right < _SMALL
        ):
            return _BINOPS[operator](left, right)
        self.tick()
        b = self.budgets
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1:
                bits = right * max(abs(left).bit_length() - 1, 1)
                if bits > self.max_bits:
                    raise BudgetExceeded(
                        f"{left} ** {right} has over {b.max_int_digits:,} digits "
                        "(limits.template_max_int_digits)"
                    )
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, str | list | tuple):
                left, right = right, left
            if isinstance(left, str | list | tuple) and isinstance(right, int):
                size = len(left) * right
                if size > b.max_string_bytes:
                    what = "a string" if isinstance(left, str) else "a list"
                    raise _over(what, size, b.max_string_bytes, "template_max_string_bytes")
            elif (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > self.max_bits + 1
            ):
                raise BudgetExceeded(
                    f"a product has over {b.max_int_digits:,} digits "
                    "(limits.template_max_int_digits)"
                )
        elif operator == "%" and isinstance(left, str):
            self._check_percent_format(left)
        return self.check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.tick()
        name = getattr(__obj, "__name__", "")
        if isinstance(getattr(__obj, "__self__", None), str):
            if name in ("format", "format_map"):
                __self._check_brace_format(__obj.__self__)
            if name in ("center", "ljust", "rjust", "zfill") and args:
                __self._check_width(args[0])
            elif name == "expandtabs":
                raise BudgetExceeded("str.expandtabs is not allowed in templates")
            elif name == "replace" and len(args) >= 2:
                src, old, new = __obj.__self__, str(args[0]), str(args[1])
                grow = (len(src) // max(len(old), 1) + 1) * len(new)
                if len(src) + grow > __self.budgets.max_string_bytes:
                    raise _over(
                        "a replaced string",
                        len(src) + grow,
                        __self.budgets.max_string_bytes,
                        "template_max_string_bytes",
                    )
        return __self.check_size(super().call(__context, __obj, *args, **kwargs))

    # -- filters -------------------------------------------------------------------------------

    def _iterate(self, iterable: Any) -> Iterator[Any]:
        cap = self.budgets.max_loop_iterations
        for item in iterable:
            self.tick()
            self.iterations += 1
            if self.iterations > cap:
                raise BudgetExceeded(
                    f"loops ran over {cap:,} iterations (limits.template_max_loop_iterations)"
                )
            yield item

    def _concat(self, parts: list[Any]) -> str:
        total = 0
        out = []
        self.tick()
        for p in parts:
            if isinstance(p, StrictUndefined):
                str(p)  # the strict error, as plain Jinja raises it
            s = str(p)
            total += len(s)
            if total > self.budgets.max_string_bytes:
                raise _over("a string", total, self.budgets.max_string_bytes,
                            "template_max_string_bytes")  # fmt: skip
            out.append(s)
        return "".join(out)

    def _checked_filter(self, name: str) -> Any:
        fn = FILTERS[name]

        def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
            self.tick()
            if name == "format":
                self._check_percent_format(str(value))
            elif name in ("center", "wordwrap", "indent"):
                width = args[0] if args else kwargs.get("width")
                self._check_width(width)
                if name == "indent" and isinstance(width, str):
                    self._check_width(len(width) * (str(value).count("\n") + 1))
            return self.check_size(fn(value, *args, **kwargs))

        checked.__name__ = name
        return checked

    def _sized_filter(self, fn: Any) -> Any:
        def sized(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            return self.check_size(fn(*args, **kwargs))

        # Jinja inspects these markers to pass the environment or context first.
        for marker in ("jinja_pass_arg",):
            if hasattr(fn, marker):
                setattr(sized, marker, getattr(fn, marker))
        return sized

    # -- parsing: every loop and every ``~`` goes through the counting filters ------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree: nodes.Template = _instrument(super()._parse(source, name, filename))
        return tree


def _instrument(tree: Any) -> Any:
    for node in list(tree.find_all((nodes.For, nodes.Concat))):
        if isinstance(node, nodes.For):
            node.iter = nodes.Filter(node.iter, "_budget_iter", [], [], None, None)
    # Concat nodes are replaced in their parents (a node cannot replace itself).
    for parent in tree.find_all(nodes.Node):
        for field in parent.fields:
            value = getattr(parent, field, None)
            if isinstance(value, nodes.Concat):
                setattr(parent, field, _concat_filter(value))
            elif isinstance(value, list):
                setattr(
                    parent,
                    field,
                    [_concat_filter(v) if isinstance(v, nodes.Concat) else v for v in value],
                )
    return tree


def _concat_filter(node: nodes.Concat) -> nodes.Filter:
    return nodes.Filter(nodes.List(node.nodes), "_budget_concat", [], [], None, None)


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


class _Evaluator:
    """The worker side: one environment, compiled templates cached by source."""

    def __init__(self, budgets: Budgets) -> None:
        self.env = BudgetedEnv(budgets)
        self.cache: dict[tuple[str, str], Any] = {}

    def expression(self, source: str, ctx: dict[str, Any]) -> Any:
        tpl = self.cache.get(("e", source))
        if tpl is None:
            # What Environment.compile_expression does, with the tree instrumented.
            expr = _parse_expression(source)
            tree = nodes.Template(
                [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1
            )
            tpl = self.env.from_string(_instrument(tree))
            self.cache[("e", source)] = tpl
        context = tpl.new_context(ctx)
        for _ in tpl.root_render_func(context):
            pass
        result = context.vars.get("result")
        if isinstance(result, StrictUndefined):
            str(result)  # the strict error now, not later far from the cause
        return result

    def render_string(self, value: str, ctx: dict[str, Any]) -> Any:
        if not is_template(value):
            return value
        match = _FULL_EXPR.match(value)
        if match is not None:
            return self.expression(match.group("expr"), ctx)
        tpl = self.cache.get(("t", value))
        if tpl is None:
            tpl = self.env.from_string(value)
            self.cache[("t", value)] = tpl
        cap = self.env.budgets.max_output_bytes
        out: list[str] = []
        size = 0
        # Parts come from the template's text or its loops, and loops tick in _iterate.
        for part in tpl.root_render_func(tpl.new_context(ctx)):
            size += len(part)
            if size > cap:
                raise _over("the rendered output", size, cap, "template_max_output_bytes")
            out.append(part)
        return "".join(out)

    def render(self, value: Any, ctx: dict[str, Any]) -> Any:
        if isinstance(value, str):
            return self.render_string(value, ctx)
        if isinstance(value, dict):
            return {k: self.render(v, ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, ctx) for v in value]
        return value

    def run(self, op: str, payload: Any, ctx: dict[str, Any]) -> Any:
        self.env.iterations = 0
        if op == "condition":
            return bool(self.expression(bare_condition(payload), ctx))
        raw = self.render(payload, ctx)
        # JSON-native already (the usual case: params of strings): no round trip needed.
        flat = isinstance(raw, dict) and all(type(v) in _PLAIN for v in raw.values())
        result = raw if flat or type(raw) in _PLAIN else _jsonable(raw)
        cap = self.env.budgets.max_output_bytes
        size = len(json.dumps(result))
        if size > cap:
            raise _over("the rendered output", size, cap, "template_max_output_bytes")
        return result


def _limit_memory(mb: int) -> None:
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
        current = pages * resource.getpagesize()
        limit = current + mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):  # not Linux: the time budget still holds
        pass


def worker_main(conn: Connection, budgets: Budgets) -> None:
    """Serve evaluations until the pipe closes. JSON both ways: nothing is unpickled."""
    _limit_memory(budgets.memory_mb)
    ev = _Evaluator(budgets)
    conn.send_bytes(b'"ready"')  # imports done: the parent's clock may start
    while True:
        try:
            op, payload, ctx = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", ev.run(op, payload, ctx))
        except BudgetExceeded as exc:
            answer = ("budget", str(exc))
        except MemoryError:
            ev.cache.clear()
            answer = ("budget", f"evaluation needed over {budgets.memory_mb} MB "
                      "(limits.template_memory_mb)")  # fmt: skip
        except RecursionError:
            answer = ("error", "the template nests too deeply")
        except Exception as exc:
            answer = ("error", str(exc) or type(exc).__name__)
        conn.send_bytes(json.dumps(answer).encode())


SLOW_SECONDS = 0.05  # an evaluation running longer is niced (see _Worker.call)
INLINE_SECONDS = 0.005  # CPU seconds an in-process attempt gets before going to a worker


class _Worker:
    """``python -m budai_gateway.sandbox`` on one end of a socket pair; the parent end is read
    and written by the event loop (asyncio streams), so waiting costs no thread."""

    def __init__(self, proc: subprocess.Popen[bytes], reader: Any, writer: Any) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.used = False
        self.niced = False

    @classmethod
    async def start(cls, budgets: Budgets) -> _Worker:
        parent, child = socket.socketpair()
        cmd = [sys.executable, "-m", "budai_gateway.sandbox", str(child.fileno()),
               json.dumps(dataclasses.asdict(budgets))]  # fmt: skip
        # Popen forks and execs: a few milliseconds, in a thread all the same.
        proc = await asyncio.to_thread(
            subprocess.Popen, cmd, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL
        )
        child.close()
        reader, writer = await asyncio.open_connection(sock=parent, limit=2**26)
        worker = cls(proc, reader, writer)
        try:
            await asyncio.wait_for(worker.read_frame(), 30)  # start-up is not the budget's
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            worker.kill()
            raise ExpressionError("the evaluation worker did not start") from exc
        return worker

    async def read_frame(self) -> bytes:
        (size,) = struct.unpack("!i", await self.reader.readexactly(4))
        data: bytes = await self.reader.readexactly(size)
        return data

    async def call(self, message: bytes, budget: float) -> bytes:
        # The framing of multiprocessing.connection.Connection: a 4-byte big-endian length.
        self.writer.write(struct.pack("!i", len(message)) + message)
        await self.writer.drain()

        pending = asyncio.ensure_future(self.read_frame())
        done, _ = await asyncio.wait([pending], timeout=min(SLOW_SECONDS, budget))
        if not done:
            # A slow evaluation goes below the gateway's priority, so a template burning its
            # budget does not take the CPU from the event loop; since an unprivileged process
            # cannot be raised back, this worker is replaced once it answers.
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, 10)
            self.niced = True
        try:
            return await asyncio.wait_for(pending, max(budget - SLOW_SECONDS, 0.001))
        finally:
            pending.cancel()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.writer.close()
        # Reap without blocking the loop.
        threading.Thread(target=self.proc.wait, daemon=True).start()


class SandboxPool:
    """A few worker processes, used from the event loop (``await pool.evaluate(...)``)."""

    def __init__(self, budgets: Budgets, size: int = 2) -> None:
        self.budgets = budgets
        self.size = size
        self._idle: list[_Worker] = []
        self._sem: asyncio.Semaphore | None = None
        self._inline = _Evaluator(budgets)
        self.kills = 0

    def inline(self, op: str, payload: Any, ctx: dict[str, Any]) -> tuple[bool, Any]:
        """Try the evaluation here, for at most INLINE_SECONDS: (True, result) or (False, None)
        when it needs a worker. Every budget hook checks the clock and each single operation
        is bounded by the size budgets, so this cannot hold the event loop for long."""
        env = self._inline.env
        env.deadline = time.thread_time() + INLINE_SECONDS
        try:
            return True, self._inline.run(op, payload, ctx)
        except Reroute:
            return False, None
        except BudgetExceeded:
            raise
        except RecursionError as exc:
            raise ExpressionError("the template nests too deeply") from exc
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(str(exc) or type(exc).__name__) from exc
        finally:
            env.deadline = None

    async def evaluate(self, op: str, payload: Any, ctx: dict[str, Any]) -> Any:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.size)
        async with self._sem:
            worker = self._idle.pop() if self._idle else await _Worker.start(self.budgets)
            try:
                raw = await worker.call(
                    json.dumps([op, payload, ctx]).encode(), self.budgets.time_seconds
                )
                kind, value = json.loads(raw)
            except TimeoutError as exc:
                self.kills += 1
                worker.kill()
                raise BudgetExceeded(
                    f"evaluation took longer than {self.budgets.time_seconds:g} s "
                    "(limits.template_time_seconds)"
                ) from exc
            except (EOFError, OSError, asyncio.IncompleteReadError) as exc:
                self.kills += 1
                worker.kill()
                raise ExpressionError("the evaluation worker died") from exc
            except BaseException:
                self.kills += 1
                worker.kill()
                raise
            worker.used = True
            if worker.niced:
                worker.kill()  # its replacement starts at normal priority
            else:
                self._idle.append(worker)
        if kind == "ok":
            return value
        if kind == "budget":
            raise BudgetExceeded(value)
        raise ExpressionError(value)

    def close(self) -> None:
        for w in self._idle:
            w.kill()
        self._idle.clear()


if __name__ == "__main__":
    worker_main(Connection(int(sys.argv[1])), Budgets(**json.loads(sys.argv[2])))
