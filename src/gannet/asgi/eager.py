"""Start a request's app without a new asyncio Task, when it can finish in one step.

An asyncio Task per request was 11.5% of the instructions h1 spends on a small JSON
response under Python 3.11 (creation, the WeakSet that registers it, the scheduled first
step, teardown; measured with callgrind). Most such apps finish in their first step, so
the first step runs right away, at the end of the ``data_received`` that completed the
request, inside a fresh copy of the context (as a new Task would get).

``asyncio.current_task()`` must still name a real Task during that step: anyio, sniffio
and ``asyncio.timeout`` look it up, and anyio's cancel scopes remember it to cancel later.
So each connection has one long-lived driver task. The eager step runs "as" that task
(``_enter_task``), and if the app suspends, the same task continues it, one step at a time
in the request's own context, so the app sees one task from start to end. While the driver
is busy (an app still running after its response, with the next request pipelined), a
request gets an ordinary Task, exactly as before. Python 3.12's eager tasks do the same
thing natively; this is the 3.11 way to get it.
"""
from __future__ import annotations

import asyncio
import types
from asyncio.tasks import _enter_task, _leave_task
from collections import deque
from contextvars import Context, copy_context
from typing import Any, Callable, Coroutine, Generator

__all__ = ["EagerRunner"]

_Task = asyncio.Task


@types.coroutine
def _resume(coro: Coroutine, step: Any, context: Context) -> Generator[Any, None, None]:
    """Continue ``coro`` inside the awaiting task: pass what it yields (the futures it
    waits on) up to the task, and what the task sends or throws back down, each step run
    in the request's context. Flat on purpose: one frame between the task and the app."""
    run = context.run
    while True:
        try:
            yield step
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation, delivered to the app where it waits
            try:
                step = run(coro.throw, exc)
            except StopIteration:
                return
            continue
        try:
            step = run(coro.send, None)
        except StopIteration:
            return


class EagerRunner:
    """One connection's request starter (see the module docstring)."""

    __slots__ = ("loop", "app", "pending", "task", "handoff", "waiter", "driving", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop, app: Callable) -> None:
        self.loop = loop
        self.app = app
        self.pending: deque = deque()  # cycles to start once the current read is parsed
        self.task: asyncio.Task | None = None  # the driver, made at the first request
        self.handoff: tuple | None = None  # a suspended request for the driver to continue
        self.waiter: asyncio.Future | None = None  # what the idle driver waits on
        self.driving = False  # the driver is continuing a request
        self.closed = False

    def run_pending(self) -> None:
        """Start every queued request: its first step now, the rest (if any) in the driver.
        Requests an app starts meanwhile (the next pipelined one) join the queue."""
        pending = self.pending
        loop = self.loop
        app = self.app
        while pending:
            cycle = pending.popleft()
            if self.driving or self.closed:
                cycle.task = _Task(cycle.run(app), loop=loop, name="gannet-http")
                continue
            task = self.task
            if task is None:
                task = self.task = _Task(self._drive(), loop=loop, name="gannet-connection")
            coro = cycle.run(app)
            context = copy_context()
            _enter_task(loop, task)
            try:
                step = context.run(coro.send, None)
            except StopIteration:
                continue  # answered in one step: the common case
            finally:
                _leave_task(loop, task)
            self.driving = True
            self.handoff = (coro, step, context)
            self._wake()

    def close(self) -> None:
        """The connection is gone or handed over: the driver ends once it is idle."""
        self.closed = True
        if not self.driving:
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _drive(self) -> None:
        task = asyncio.current_task()
        while True:
            if self.handoff is None:
                if self.closed:
                    return
                waiter = self.waiter = self.loop.create_future()
                try:
                    await waiter
                except asyncio.CancelledError:
                    self.closed = True  # shutdown, while idle
                    return
                if self.handoff is None:
                    return  # closed
            coro, step, context = self.handoff
            self.handoff = None
            try:
                await _resume(coro, step, context)
            finally:
                self.driving = False
                # Cancellations meant for that request (anyio scopes, timeouts, shutdown)
                # must not outlive it: the next request starts with a clean task.
                while task.cancelling():  # type: ignore[union-attr]
                    task.uncancel()  # type: ignore[union-attr]
