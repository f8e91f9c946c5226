"""The WSGI thread pool and the hand-off between it and the event loop.

Theory of operation. h1 reads a request, body included, on the event loop and calls
``WSGIRunner.submit(cycle)``: no future, no task, no lock. One of ``--threads`` workers
picks it up (see below); it builds the
environ, calls the app, walks its iterable and turns what it produced into small tuples
("messages") appended to one shared deque. The first message of a batch schedules one
``call_soon_threadsafe(flush)``; every message appended before that flush runs rides the
same loop wake-up, so under load one wake-up writes many responses. ``flush`` (loop
thread) performs each message with the h1 responder and finally calls ``cycle_done``.

Requests reach the workers through a deque; ``submit`` (loop thread) appends and, unless
a wake-up is already due, schedules one for the end of the loop iteration. At most one
wake-up is in flight: the woken worker, before calling the app, wakes the next if work
is left, and every worker drains the deque before sleeping. So a burst costs a couple of
thread switches instead of one per request, and a slow app call never strands queued work
while other workers sleep. The common case — the app returns a one-item list — is one
deque append, one worker run, one message and one transport write.

Streaming responses (generators, ``write()``, file-likes read in blocks) post each block as
it comes (PEP 3333: blocks are never held back). Flow control: after every half
``--wsgi-write-buffer`` of output the worker posts a "sync" message; the loop reports it
drained once that point has been written and the transport is below its high-water mark.
A worker runs at most one half window ahead of the last drained sync. When its client
falls further behind, the *iteration* parks — the iterator and where it was stay on a
``_Response`` object — and the thread goes back to the pool; once the client drains, the
loop re-queues the parked iteration and any worker resumes it. So a client that does not
read never holds a thread. The exception is the legacy ``write()`` callable, which runs
inside the app's own stack and cannot be parked: it waits, until the client drains or the
response ends (disconnect, abort, ``--write-timeout``), and then raises ``ClientGone``.

Memory per connection is bounded by ``--wsgi-write-buffer`` plus the transport's
high-water mark (64 KiB) plus the largest single block the app yields; a parked response
keeps that much until its client reads or the write timeout aborts it. Request bodies
together cost at most ``--wsgi-body-buffer`` of memory (the rest is on disk, see cycle.py).

``wsgi.file_wrapper`` around a regular file is not read by the worker at all: the worker
hands the file to the loop, which sends it with ``os.sendfile`` (h1's zero-copy path), and
the app's ``close()`` then runs back on a worker. A slow downloader holds no thread.

Errors: before the head was handed over, a 500 (the reason logged); after, the
connection is aborted. A response its client left is aborted through the stream as well
when its request ends, which logs its one access line, marked aborted, as for ASGI. ``close()`` on the app's iterable is always called, on the worker,
before the request counts as done (``cycle_done``), so a graceful shutdown, which waits
for ``state.active`` to reach 0, waits for running WSGI calls and their ``close()``.
A parked response whose client goes is resumed once more, sees the disconnect and is
closed the same way. At exit ``close()`` waits a bounded time for the threads as a whole
and closes what is still parked.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import queue
import stat
import threading
import time
from collections import deque
from typing import Any, Callable

from ..logging import log_safe
from .cycle import WSGICycle
from .environ import (EnvironBuilder, ErrorStream, FileWrapper, InvalidResponse,
                      base_environ, check_status, encode_headers)

__all__ = ["WSGIRunner", "ClientGone"]

logger = logging.getLogger("gannet.error")

try:  # the validator wraps iterables; we look through it to find a file_wrapper
    from wsgiref.validate import IteratorWrapper as _ValidatorIterator
except ImportError:  # pragma: no cover
    _ValidatorIterator = None  # type: ignore[assignment,misc]

# Message opcodes (first item of each tuple posted to the loop).
_FULL = 0        # (op, cycle, status, headers, body, done): head and the whole body
_HEAD = 1        # (op, cycle, status, headers, block): head and a first block, more follow
_BLOCK = 2       # (op, cycle, block)
_END = 3         # (op, cycle): end of body; request done
_DONE = 4        # (op, cycle): request done, nothing more to write
_ERROR = 5       # (op, cycle): 500 if the head is not out yet, else abort; request done
_SYNC = 6        # (op, cycle, response): response.drained() once the client drained this far
_SENDFILE = 7    # (op, cycle, status, headers, file, offset, count, result)

_PARKED = object()  # an iteration stopped until its client drains (see _Response)
_CLOSE_DEADLINE = 1.0  # seconds close() waits for all the workers together


class ClientGone(ConnectionResetError):
    """Raised from ``write()`` (and ends iteration) when the client has disconnected."""


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"WSGI response blocks must be bytes, not {type(data).__name__}")


def _content_length(headers: "tuple[tuple[bytes, bytes], ...]") -> int | None:
    for name, value in headers:
        if len(name) == 14 and name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class WSGIRunner:
    def __init__(self, state: Any, app: Callable, config: Any) -> None:
        self.state = state
        self.loop: asyncio.AbstractEventLoop = state.loop
        self.app = app
        # Work for the pool: cycles, and (cycle, result) pairs whose close() is due.
        self.work: deque[Any] = deque()
        # Wake-up queues of the workers asleep, and whether a wake-up is on its way.
        self.sleepers: deque[queue.SimpleQueue] = deque()
        self.waking = False
        self.wake_scheduled = False
        self.pending: deque[tuple] = deque()
        self.scheduled = False
        self.closed = False
        self.tasks: set[asyncio.Task] = set()
        # Responses whose iteration is parked until their client drains (see _Response).
        self.parked: set[_Response] = set()
        self.half_window = max(config.wsgi_write_buffer // 2, 1)
        self.multithread = config.threads > 1
        self.multiprocess = int(getattr(config, "workers", 1) or 1) > 1
        self.workers = [_Worker(self, i) for i in range(config.threads)]
        for worker in self.workers:
            worker.thread.start()

    # ------------------------------------------------------------ any thread
    def submit(self, item: Any) -> None:
        """Queue work (h1 calls this on the loop thread with a complete request)."""
        self.work.append(item)
        if not self.waking and not self.wake_scheduled:
            # The worker is woken at the end of this loop iteration, once every request
            # that arrived with this one is queued: measured here, waking it at once
            # (it preempts the loop mid-batch, on one core) cost ~25% more CPU per request.
            self.wake_scheduled = True
            self.loop.call_soon(self._deferred_wake)

    def _deferred_wake(self) -> None:
        self.wake_scheduled = False
        if self.work and not self.waking:
            self.wake_one()

    def wake_one(self) -> None:
        # At most one wake-up in flight: a worker that wakes takes the work, and before it
        # calls the app it wakes the next one if work is left (see _Worker.run). So a burst
        # of requests costs two thread wake-ups, not one per request, and a slow app call
        # never strands queued work while other workers sleep.
        try:
            sleeper = self.sleepers.pop()
        except IndexError:
            return  # every worker is busy; each checks the work queue before sleeping
        self.waking = True
        sleeper.put(True)

    def post(self, message: tuple) -> None:
        # deque.append is atomic; the flag makes the first message of a batch wake the
        # loop. flush clears it *before* draining, so a message appended after the clear
        # either is drained by that flush or schedules the next one: none is stranded.
        self.pending.append(message)
        if not self.scheduled:
            self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(self.flush)
            except RuntimeError:  # the loop is closed: the process is exiting
                pass

    # ------------------------------------------------------------ loop thread
    def flush(self) -> None:
        self.scheduled = False
        pending = self.pending
        popleft = pending.popleft
        # Flat on purpose: _FULL runs once per request, so _HEAD repeats its lines
        # rather than share a helper call.
        while pending:
            message = popleft()
            op = message[0]
            cycle = message[1]
            try:
                if op == _FULL:
                    if not (cycle.disconnected or cycle.complete):
                        cycle.status = message[2]
                        cycle.headers = message[3]
                        cycle.started = True
                        try:
                            cycle.conn.send_response(cycle, message[4])  # the one-write path
                        except Exception as exc:  # noqa: BLE001
                            self.failed(cycle, exc)
                    elif not cycle.complete:
                        cycle.status = message[2]  # the access line shows what the app said
                        cycle.conn.abort(cycle)  # its client left: a "client gone" access line
                    if message[5]:
                        cycle.conn.cycle_done(cycle)
                elif op == _BLOCK:
                    if not (cycle.disconnected or cycle.complete):
                        try:
                            cycle.conn.send_body(cycle, message[2], True)
                        except Exception as exc:  # noqa: BLE001
                            self.failed(cycle, exc)
                elif op == _SYNC:
                    conn = cycle.conn
                    if conn.write_paused and not (cycle.disconnected or cycle.complete):
                        self._spawn(self._drained_after_drain(conn, cycle, message[2]))
                    else:
                        message[2].drained(cycle)
                elif op == _HEAD:
                    if not (cycle.disconnected or cycle.complete):
                        cycle.status = message[2]
                        cycle.headers = message[3]
                        cycle.started = True
                        try:
                            cycle.conn.send_head_and_body(cycle, message[4], True)
                        except Exception as exc:  # noqa: BLE001
                            self.failed(cycle, exc)
                elif op == _END:
                    if not (cycle.disconnected or cycle.complete):
                        try:
                            cycle.conn.send_body(cycle, b"", False)
                        except Exception as exc:  # noqa: BLE001
                            self.failed(cycle, exc)
                    elif not cycle.complete:
                        cycle.conn.abort(cycle)  # its client left: an "aborted" access line
                    cycle.conn.cycle_done(cycle)
                elif op == _DONE:
                    if not cycle.complete:
                        # Only a response its client left is not complete here: the
                        # stream's abort logs its access line, marked aborted, as for ASGI.
                        cycle.conn.abort(cycle)
                    cycle.conn.cycle_done(cycle)
                elif op == _ERROR:
                    if not cycle.complete:
                        if cycle.head_sent or cycle.disconnected:
                            cycle.conn.abort(cycle)  # the access line says "aborted"
                        else:
                            cycle.conn.send_error(cycle, 500)
                    cycle.conn.cycle_done(cycle)
                elif op == _SENDFILE:
                    cycle.status = message[2]
                    cycle.headers = message[3]
                    cycle.started = True
                    task = self._spawn(self._sendfile(cycle, *message[4:]))
                    cycle.task = task
                    tasks = self.state.tasks  # graceful shutdown waits for (or cancels) it
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)  # else every drain waits it out
            except Exception:  # noqa: BLE001 - one bad message must not strand the others
                logger.exception("internal error while writing a WSGI response")

    def failed(self, cycle: WSGICycle, exc: Exception) -> None:
        """The responder refused what the app produced (bad header, length mismatch)."""
        first = not cycle.disconnected
        cycle.disconnected = True  # the worker stops producing for this response
        if first:
            logger.error("Invalid response from WSGI application: %s", exc)
        conn = cycle.conn
        if cycle.head_sent:
            conn.abort(cycle)
        elif not cycle.complete:
            conn.send_error(cycle, 500)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _drained_after_drain(self, conn: Any, cycle: WSGICycle, response: "_Response") -> None:
        # drain() returns when the transport goes below its low-water mark, or at once
        # when the connection is lost (a disconnect, an abort, the write timeout).
        try:
            await conn.drain()
        finally:
            response.drained(cycle)

    async def _sendfile(self, cycle: WSGICycle, file: Any, offset: int, count: int,
                        result: Any) -> None:
        try:
            if not cycle.disconnected:
                await cycle.conn.sendfile(cycle, file, offset, count, False)
        except asyncio.CancelledError:
            if not cycle.complete:
                cycle.conn.abort(cycle)
        except (ConnectionError, OSError) as exc:
            logger.debug("sendfile ended early: %s", exc)
            if not cycle.complete:
                cycle.conn.abort(cycle)
        except Exception as exc:  # noqa: BLE001
            self.failed(cycle, exc)
        finally:
            # close() is the app's code (Django runs request_finished there): a worker
            # calls it, then posts _DONE. After shutdown there is no worker: call it here.
            if self.closed:
                _close(result)
                if not cycle.complete:
                    cycle.conn.abort(cycle)
                cycle.conn.cycle_done(cycle)
            else:
                self.submit((cycle, result))

    def close(self) -> None:
        """Stop the workers (at shutdown, after the drain waited for running calls).

        Bounded as a whole by ``_CLOSE_DEADLINE``, not per thread: a thread stuck in the
        app cannot be killed, and the graceful timeout has already been spent waiting for
        it. The threads are daemons, so the process exits without them."""
        if self.closed:
            return
        self.closed = True
        for worker in self.workers:
            worker.wakeup.put(False)
        deadline = time.monotonic() + _CLOSE_DEADLINE
        for worker in self.workers:
            worker.thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        stuck = sum(1 for worker in self.workers if worker.thread.is_alive())
        if stuck:
            logger.warning("%d WSGI thread(s) still running the app at exit were abandoned", stuck)
        # Responses parked (or re-queued) when the workers stopped: close their iterables
        # here, since no worker is left to resume them.
        leftovers: dict[int, _Response] = {}
        while True:
            try:
                item = self.work.popleft()
            except IndexError:
                break
            if type(item) is _Response:
                leftovers[id(item)] = item
            elif type(item) is tuple:
                _close(item[1])
            else:
                item.release_body()
        for response in list(self.parked):
            with response.mutex:
                if response.parked == 2:
                    response.parked = 0
                    leftovers[id(response)] = response
        self.parked.clear()
        for response in leftovers.values():
            response.abandon()


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001
            logger.exception("Exception in the close() of a WSGI response")


class _Worker:
    """One pool thread. It produces one response at a time through its ``_Response``
    (reused request after request, so ``start_response``/``write`` are bound once, not per
    request); when that response is parked, the worker takes a fresh one and moves on."""

    def __init__(self, runner: WSGIRunner, index: int) -> None:
        self.runner = runner
        self.post = runner.post
        self.response = _Response(runner)
        self.wakeup: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.run, name=f"gannet-wsgi-{index}", daemon=True)

    def run(self) -> None:
        runner = self.runner
        work = runner.work
        sleepers = runner.sleepers
        wakeup = self.wakeup
        new_context = contextvars.Context
        while True:
            try:
                item = work.popleft()
            except IndexError:
                # Sleep. Registered first, then re-checked, so work queued in between is
                # not missed; deque append/pop/remove are atomic.
                sleepers.append(wakeup)
                if work:
                    try:
                        sleepers.remove(wakeup)
                        continue
                    except ValueError:
                        pass  # a waker took us off the list: its wake-up is coming
                if not wakeup.get():
                    return  # close()
                runner.waking = False
                continue
            if work and not runner.waking:
                runner.wake_one()  # more is queued: someone else takes it while we run
            kind = type(item)
            try:
                if kind is tuple:  # a close() deferred until sendfile finished
                    _close(item[1])
                    self.post((_DONE, item[0]))
                elif kind is _Response:  # a parked response whose client drained
                    if item.context.run(item.resume):
                        _settle(item)
                else:
                    response = self.response
                    # A fresh context per request (a C call, no copy): what one request's
                    # app set is never seen by the next; kept only across a park.
                    context = response.context = new_context()
                    if context.run(response.handle, item):
                        # Parked: that response object now belongs to its iteration,
                        # which any worker resumes later; this one takes a fresh one.
                        self.response = _Response(runner)
                        _settle(response)
            except BaseException:  # noqa: BLE001 - the pool must survive anything
                logger.exception("internal error in a WSGI worker")
                cycle = item[0] if kind is tuple else item.cycle if kind is _Response else item
                if cycle is not None:
                    self.post((_ERROR, cycle))


def _settle(response: "_Response") -> None:
    """A response just parked and its worker has left its context: make it resumable by
    the loop, or resume it here if its client drained while the worker was leaving."""
    if response.errors.size:  # what the app wrote to wsgi.errors so far: one record
        response.errors.flush()
    while response.settle() and response.context.run(response.resume):
        pass


class _Response:
    """The response one worker is producing: the app's callables, where the iteration is,
    and the flow-control handshake with the loop.

    Flow control. After every half ``--wsgi-write-buffer`` of output the producer posts a
    "sync" for its cycle (``sync_cycle``); the loop calls ``drained`` once that point is
    written and the transport is below its high-water mark. At the next half window, if
    that sync is still outstanding, an iteration *parks* (``handle``/``resume`` return
    True, the worker goes back to the pool) and ``drained`` re-queues this object, which
    any worker resumes. The legacy ``write()`` cannot park (the app's stack is in the
    way): it waits, bounded by the response's end (disconnect, abort, write timeout).
    ``mutex`` orders the producer's "park or go on" against the loop's "drained"; it is
    taken twice per half window of streamed output, never for a one-block response.

    Context. Each request's app runs in a fresh ``contextvars.Context`` (``Worker.run``
    makes it; an empty context is one cheap C call), and a resumed iteration runs in that
    same context again on whatever thread: a generator that set context variables (Flask's
    ``stream_with_context`` pushes the request context) finds them, and can reset its
    tokens, after moving threads; and no later request sees them, even if the app never
    reset them. A
    context can be entered by one thread at a time, so parking has two steps: "parking"
    (``parked == 1``) while the worker is still leaving the context, "parked" (2) once it
    has; a drain that arrives in between is noted (``ready``) and the leaving worker
    resumes the iteration itself (``_settle``).
    """

    __slots__ = ("runner", "app", "post", "half_window", "builder", "start_response_bound",
                 "cycle", "code", "headers", "head_posted", "complete",
                 "window", "result", "blocks", "sync_cycle", "parked", "ready", "blocker",
                 "mutex", "context", "errors")

    def __init__(self, runner: WSGIRunner) -> None:
        self.runner = runner
        self.app = runner.app
        self.post = runner.post
        self.half_window = runner.half_window
        self.errors = ErrorStream()
        base = base_environ(self.errors, runner.multithread, runner.multiprocess, FileWrapper)
        self.builder = EnvironBuilder(base, runner.state.raw_root_path)
        self.start_response_bound = self.start_response
        self.cycle: Any = None
        self.code = 0
        self.headers: tuple[tuple[bytes, bytes], ...] = ()
        self.head_posted = False
        self.complete = False  # one block carried the whole declared Content-Length
        self.window = 0
        self.result: Any = None
        self.blocks: Any = None  # the iterator being walked; kept across a park
        self.sync_cycle: Any = None  # the cycle whose last sync the loop has not drained
        self.parked = 0  # 1: parking (its worker is leaving the context), 2: parked
        self.ready = False  # drained while parking: the leaving worker resumes it
        self.blocker: threading.Lock | None = None  # write() waiting for a drain
        self.mutex = threading.Lock()
        self.context: contextvars.Context | None = None  # the running request's (Worker.run)

    # ------------------------------------------------------------ worker thread
    def handle(self, cycle: WSGICycle) -> bool:
        """Run the app for ``cycle``; True when the response parked (see the class doc)."""
        self.cycle = cycle
        self.code = 0
        self.head_posted = False
        self.complete = False
        self.window = 0
        if cycle.disconnected:  # the client left while the request waited for a thread
            cycle.release_body()
            self.cycle = None
            self.post((_DONE, cycle))
            return False
        result: Any = None
        self.errors.in_call = True  # wsgi.errors holds text until the call ends (one record)
        try:
            environ = self.builder.build(cycle)
            result = self.app(environ, self.start_response_bound)
            if type(result) is list and len(result) == 1 and self.code and not self.head_posted:
                body = result[0]  # the common case: one message, one write
                if type(body) is not bytes:
                    body = _as_bytes(body)
                final: Any = (_FULL, cycle, self.code, self.headers, body, True)
            else:
                self.result = result
                final = self.iterate(cycle, result)
                if final is _PARKED:
                    return True
        except BaseException as exc:  # noqa: BLE001 - the app's errors must not kill the pool
            final = self.failure(cycle, exc)
        self.finish(cycle, result, final)
        return False

    def resume(self) -> bool:
        """Go on with a parked iteration (on whichever worker took it); True if it parked again."""
        self.runner.parked.discard(self)
        cycle = self.cycle
        try:
            if cycle.disconnected:
                raise ClientGone("client disconnected")
            if self.sync(cycle, True):  # the sync deferred by the park
                return True
            final = self.pump(cycle)
            if final is _PARKED:
                return True
        except BaseException as exc:  # noqa: BLE001
            final = self.failure(cycle, exc)
        self.finish(cycle, self.result, final)
        return False

    def failure(self, cycle: WSGICycle, exc: BaseException) -> tuple:
        if isinstance(exc, ClientGone):
            logger.debug("WSGI response to %s %s aborted: the client went away or stopped "
                         "reading; the app's iterable is closed",
                         cycle.scope["method"], log_safe(cycle.scope["path"]))
            return (_DONE, cycle)
        if isinstance(exc, InvalidResponse):
            logger.error("Invalid response from WSGI application for %s %s: %s",
                         cycle.scope["method"], log_safe(cycle.scope["path"]), exc)
        elif cycle.disconnected and isinstance(exc, OSError):
            logger.debug("WSGI app failed after the client went away: %r", exc)
        else:
            logger.error("Exception in WSGI application", exc_info=exc)
        return (_ERROR, cycle)

    def finish(self, cycle: WSGICycle, result: Any, final: Any) -> None:
        if final is not None and result is not None and type(result) is not list:
            _close(result)  # PEP 3333: always, also on errors and disconnects
        cycle.release_body()
        self.cycle = None
        self.result = None
        self.blocks = None
        self.errors.in_call = False  # later writes (the app's own threads) log as they come
        if self.errors.size:  # the call is over: what it wrote to wsgi.errors is one record
            self.errors.flush()
        if final is not None:
            self.post(final)

    def iterate(self, cycle: WSGICycle, result: Any) -> Any:
        wrapper = result
        if _ValidatorIterator is not None and type(result) is _ValidatorIterator:
            wrapper = result.original_iterator
        if type(wrapper) is FileWrapper and self.code and not self.head_posted:
            message = self.file_message(cycle, wrapper.filelike, result)
            if message is not None:
                self.head_posted = True
                self.post(message)
                return None  # close() and cycle_done follow the sendfile
        self.blocks = iter(result)
        return self.pump(cycle)

    def pump(self, cycle: WSGICycle) -> Any:
        """Walk the iterable from where it is: the final message, or _PARKED."""
        for block in self.blocks:
            if type(block) is not bytes:
                block = _as_bytes(block)
            if not block:
                continue
            if cycle.disconnected:
                raise ClientGone("client disconnected")
            if self.complete:
                raise RuntimeError("response body longer than its Content-Length")
            if not self.head_posted:
                if not self.code:
                    raise RuntimeError("the app produced a body before calling start_response")
                if _content_length(self.headers) == len(block):
                    # The declared length says this block is the whole body: head and
                    # body in one write, as for a list (Flask, Django responses).
                    self.head_posted = self.complete = True
                    self.post((_FULL, cycle, self.code, self.headers, block, False))
                    continue
            if self.send(cycle, block, True):
                return _PARKED
        if not self.code:
            raise RuntimeError("the app returned without calling start_response")
        if self.complete:
            return (_DONE, cycle)
        if not self.head_posted:
            self.head_posted = True
            return (_FULL, cycle, self.code, self.headers, b"", True)
        return (_END, cycle)

    def file_message(self, cycle: WSGICycle, file: Any, result: Any) -> tuple | None:
        try:
            fileno = file.fileno()
            info = os.fstat(fileno)
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None  # pipes, sockets, devices: read in blocks
        try:
            offset = file.tell()
        except (AttributeError, OSError, ValueError):
            offset = os.lseek(fileno, 0, os.SEEK_CUR)
        count = max(info.st_size - offset, 0)
        declared = _content_length(self.headers)
        if declared is not None and 0 <= declared < count:
            count = declared
        return (_SENDFILE, cycle, self.code, self.headers, file, offset, count, result)

    def send(self, cycle: WSGICycle, block: bytes, can_park: bool) -> bool:
        """Hand one block to the loop; True when the iteration must park."""
        if cycle.disconnected:
            raise ClientGone("client disconnected")
        if self.head_posted:
            self.post((_BLOCK, cycle, block))
        else:
            self.head_posted = True
            self.post((_HEAD, cycle, self.code, self.headers, block))
        self.window += len(block)
        if self.window >= self.half_window:
            self.window = 0
            return self.sync(cycle, can_park)
        return False

    def sync(self, cycle: WSGICycle, can_park: bool) -> bool:
        """Post a sync unless the previous one is still outstanding: then park (True) or,
        for write(), wait until the loop drained it or the response ended."""
        with self.mutex:
            if self.sync_cycle is not cycle:
                self.sync_cycle = cycle
                blocker = None
            elif can_park:
                self.parked = 1
                # Registered before the loop can see the flag (it takes the mutex), so
                # the set never keeps a response that was already resumed.
                self.runner.parked.add(self)
                return True
            else:
                blocker = self.blocker = threading.Lock()
                blocker.acquire()
        if blocker is not None:
            runner = self.runner
            # Bounded: the loop releases it when the client drains or the connection goes
            # (drain() returns once the transport is lost, which an abort or the write
            # timeout causes); the poll covers a response ended without a drain wake-up.
            while not blocker.acquire(timeout=0.5):
                if cycle.disconnected or cycle.complete or runner.closed:
                    with self.mutex:
                        self.blocker = None
                    raise ClientGone("client disconnected while write() waited")
            with self.mutex:
                self.sync_cycle = cycle
        self.post((_SYNC, cycle, self))
        return False

    # ------------------------------------------------------------ loop thread
    def drained(self, cycle: WSGICycle) -> None:
        """The client took this response's output up to ``cycle``'s last sync."""
        with self.mutex:
            if self.sync_cycle is not cycle:
                return  # an earlier response's sync: that response is over
            self.sync_cycle = None
            parked = self.parked
            if parked == 2:
                self.parked = 0
            elif parked == 1:
                self.ready = True  # its worker is still leaving: it resumes it (_settle)
            blocker = self.blocker
            self.blocker = None
        if parked or blocker is not None:
            if cycle.complete and not cycle.disconnected:
                # The response was cut (aborted, timed out) while its producer waited:
                # nothing more can be written, so the producer must stop.
                cycle.disconnected = True
            if parked == 2:
                self.runner.submit(self)
            elif blocker is not None:
                blocker.release()

    def settle(self) -> bool:
        """Worker thread, once out of the context: True if the drain came meanwhile."""
        with self.mutex:
            if self.ready:
                self.ready = False
                self.parked = 0
                return True
            self.parked = 2
            return False

    def abandon(self) -> None:
        """At exit, for a response still parked: close its iterable here, no worker is left."""
        cycle = self.cycle
        result = self.result
        self.cycle = self.result = self.blocks = None
        if result is not None:
            _close(result)
        if cycle is not None:
            cycle.release_body()

    # ------------------------------------------------------------ the app's callables
    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Callable:
        if exc_info is not None:
            try:
                if self.head_posted:
                    # PEP 3333: too late to change the response; re-raise the app's error.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.code:
            raise AssertionError("start_response() called again without exc_info")
        code = check_status(status)
        self.headers = encode_headers(headers)
        self.code = code
        # write() is tied to this request: this object serves the worker's next request
        # too, and a thread that kept the callable must not write into that one.
        cycle = self.cycle
        cycle.writer = self
        return cycle.write

    def write(self, cycle: WSGICycle, data: bytes) -> None:
        """``cycle``'s write() callable (WSGICycle.write calls it); only while ``cycle``'s
        response is the one this object produces."""
        if self.cycle is not cycle:
            raise AssertionError("write() called after its response ended")
        if type(data) is not bytes:
            data = _as_bytes(data)
        if data:
            self.send(cycle, data, False)
