"""Per-model call limits: how many calls are in flight (`concurrency`), how fast they start (`rpm`).

One budget per model for the whole run, however many processes make its calls:

- `LocalLimits` (one process): an asyncio semaphore and a pacer per model and event loop.
- `LimitServer` + `SharedLimits` (a run spread over worker processes, evals.runner.processes):
  the parent serves the budget on a Unix socket; a worker asks it for a slot before each call
  and for a start time before each attempt. Why a small server rather than a multiprocessing
  semaphore: a call waiting for a slot must not block its event loop (a semaphore would need a
  thread per waiting call), slots go first come first served across processes, and the slots of
  a worker killed mid-call come back the moment its connection closes (a semaphore would keep
  them taken for good). A worker passes a slot its call is done with straight to its own next
  waiting call, up to `HANDOFFS` times, before it goes back to the server: one loopback round
  trip per `HANDOFFS` calls instead of one per call (~0.3 ms of CPU per call between worker and
  parent, docs/benchmarks.md), while every slot still returns to the server's queue often
  enough that a process that started late gets its share. One more round trip per paced attempt.
- A worker that loses the server has lost its parent (killed, or gone after an error): it exits
  at once, as if killed with it, rather than make calls outside the budget.
- `WarehouseLimits` (evals.warehouse_limits, `shared_limits: warehouse`): one budget for every
  process on the warehouse, Dagster steps on other machines and concurrent runs included.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import time
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evals.config import Config, ModelConfig
    from evals.warehouse_limits import WarehouseLimits

PARENT_GONE_EXIT = 3
"""Exit status of a worker whose parent's budget server went away."""

HANDOFFS = 8
"""Calls a slot serves in a row within one worker before it goes back to the budget server."""
ASKS_AHEAD = 8
"""Slot requests a worker keeps waiting at the server at most: enough to fill the budget in a few
round trips, few enough that a worker starting later is not queued behind hundreds of them."""


RPM_WINDOW_S = 60.5
"""The span an rpm cap's starts are spread over: a minute plus headroom for the delay between a
booked start and the request reaching the provider (LiteLLM's client work, a busy event loop).
Spread over exactly 60 s, a late first start made a provider counting arrivals see rpm + 1
in one minute (bench/rate_limits.py); the headroom costs 0.8 % of the allowance."""


class Pacer:
    """Spaces call starts to honour a requests-per-minute cap (no bursts, no busy waiting)."""

    def __init__(self, rpm: int) -> None:
        self.interval = RPM_WINDOW_S / rpm
        self.next_at = 0.0

    def book(self) -> float:
        """Book the next start: the seconds from now until it."""
        now = time.monotonic()
        start = max(now, self.next_at)
        self.next_at = start + self.interval
        return start - now

    async def wait(self) -> None:
        delay = self.book()
        if delay > 0:
            await asyncio.sleep(delay)


class LocalLimits:
    """The budget of calls made by this process alone: state per event loop, so one client
    serves `asyncio.run` after `asyncio.run`."""

    def __init__(self) -> None:
        self._states: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, tuple[asyncio.Semaphore, Pacer | None]]
        ] = weakref.WeakKeyDictionary()

    def _state(self, model_name: str, cfg: ModelConfig) -> tuple[asyncio.Semaphore, Pacer | None]:
        states = self._states.setdefault(asyncio.get_running_loop(), {})
        state = states.get(model_name)
        if state is None:
            pacer = Pacer(cfg.rpm) if cfg.rpm else None
            state = states[model_name] = (asyncio.Semaphore(cfg.concurrency), pacer)
        return state

    def slot(self, model_name: str, cfg: ModelConfig) -> contextlib.AbstractAsyncContextManager:
        """Held for the whole logical call (all its attempts)."""
        return self._state(model_name, cfg)[0]

    async def pace(self, model_name: str, cfg: ModelConfig) -> None:
        """Before each attempt of a model with an rpm cap."""
        await self._state(model_name, cfg)[1].wait()

    async def aclose(self) -> None:
        """Nothing to end: the state lives and dies with its event loop."""


def process_limits(config: Config) -> LocalLimits | WarehouseLimits:
    """The budget a process's calls use when no run shares one with it (`shared_limits`)."""
    if config.shared_limits == "warehouse":
        from evals.warehouse_limits import WarehouseLimits

        return WarehouseLimits()
    return LocalLimits()


class LimitServer:
    """The run's budget, served to its worker processes (the parent's event loop runs it).

    Protocol, one line each way: `a ID MODEL` asks for a slot (answered `ID 0` when granted),
    `r 0 MODEL` gives one back, `p ID MODEL` books an attempt's start (answered `ID SECONDS`).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.in_use: Counter[str] = Counter()
        self.max_in_use: Counter[str] = Counter()
        self.pacers: dict[str, Pacer] = {}
        self.waiting: dict[str, deque[tuple[asyncio.StreamWriter, bytes]]] = {}
        self.held: dict[asyncio.StreamWriter, Counter[str]] = {}
        self._handlers: set[asyncio.Task] = set()
        self._server: asyncio.AbstractServer | None = None
        self._folder: tempfile.TemporaryDirectory | None = None
        self.address = ""

    async def start(self) -> str:
        """Listen on a socket in a private temporary folder; its path is the address."""
        self._folder = tempfile.TemporaryDirectory(prefix="evalhouse-limits-")
        self.address = str(Path(self._folder.name) / "limits.sock")
        self._server = await asyncio.start_unix_server(self._serve, self.address)
        return self.address

    async def close(self) -> None:
        """Stop serving; workers still connected see it and exit."""
        if self._server is not None:
            self._server.close()
            for writer in list(self.held):
                writer.close()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
        if self._folder is not None:
            self._folder.cleanup()

    def _grant(self, model: str, writer: asyncio.StreamWriter, request_id: bytes) -> None:
        self.in_use[model] += 1
        self.max_in_use[model] = max(self.max_in_use[model], self.in_use[model])
        self.held[writer][model] += 1
        writer.write(request_id + b" 0\n")

    def _free(self, model: str) -> None:
        """A slot came back: the longest waiting live worker gets it."""
        self.in_use[model] -= 1
        queue = self.waiting.get(model)
        while queue:
            waiter, request_id = queue.popleft()
            if waiter in self.held:  # not a worker that has gone meanwhile
                self._grant(model, waiter, request_id)
                return

    def _acquire(self, model: str, writer: asyncio.StreamWriter, request_id: bytes) -> None:
        if self.in_use[model] < self.config.model(model).concurrency:
            self._grant(model, writer, request_id)
        else:
            self.waiting.setdefault(model, deque()).append((writer, request_id))

    def _book(self, model: str) -> float:
        pacer = self.pacers.get(model)
        if pacer is None:
            pacer = self.pacers[model] = Pacer(self.config.model(model).rpm)
        return pacer.book()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.held[writer] = Counter()
        handler = asyncio.current_task()
        self._handlers.add(handler)
        try:
            while line := await reader.readline():
                op, request_id, model_bytes = line.rstrip(b"\n").split(b" ", 2)
                model = model_bytes.decode()
                if op == b"a":
                    self._acquire(model, writer, request_id)
                elif op == b"r":
                    self.held[writer][model] -= 1
                    self._free(model)
                else:
                    writer.write(b"%s %s\n" % (request_id, repr(self._book(model)).encode()))
        except (ConnectionError, ValueError):
            pass
        finally:
            for model, count in self.held.pop(writer).items():  # a worker gone mid-call
                for _ in range(count):
                    self._free(model)
            writer.close()
            self._handlers.discard(handler)


class SharedLimits:
    """A worker process's side of the run's budget (one event loop: the worker's)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None
        self._pending: dict[bytes, asyncio.Future | str] = {}  # a pace's start, or a slot's model
        self._ids = itertools.count()
        # Per model: this worker's calls waiting for a slot (each future gets the slot's uses so
        # far), and the slots asked of the server and not granted yet.
        self._waiting: dict[str, deque[asyncio.Future]] = {}
        self._asked: Counter[str] = Counter()

    async def connect(self) -> None:
        """Before the first call, on the loop that makes the calls."""
        reader, self._writer = await asyncio.open_unix_connection(self.address)
        self._reader_task = asyncio.create_task(self._read(reader))

    def _ask(self, op: bytes, model_name: str, reply: asyncio.Future | str) -> None:
        request_id = str(next(self._ids)).encode()
        self._pending[request_id] = reply
        self._writer.write(b"%s %s %s\n" % (op, request_id, model_name.encode()))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while (line := await reader.readline()).endswith(b"\n"):
                request_id, value = line.split()
                reply = self._pending.pop(request_id)
                if isinstance(reply, str):  # a slot granted
                    self._asked[reply] -= 1
                    self._pass_on(reply, uses=0)
                    self._ask_for_waiting(reply)
                elif not reply.cancelled():
                    reply.set_result(float(value))
        except (ConnectionError, ValueError):  # a torn reply: the server died writing it
            pass
        os._exit(PARENT_GONE_EXIT)  # the budget's server is gone, so is the run

    def _pass_on(self, model_name: str, uses: int) -> None:
        """A slot is free: the next call of this worker waiting for one takes it, unless it has
        served HANDOFFS calls; else it goes back to the server."""
        waiting = self._waiting.get(model_name)
        if uses < HANDOFFS:
            while waiting:
                call = waiting.popleft()
                if not call.done():  # not a call cancelled while it waited
                    call.set_result(uses)
                    return
        self._writer.write(b"r 0 %s\n" % model_name.encode())

    def _ask_for_waiting(self, model_name: str) -> None:
        """A slot request per waiting call, up to ASKS_AHEAD: while calls wait, at least one is
        at the server (a handed-on slot serves a waiting call without one)."""
        wanted = min(len(self._waiting.get(model_name, ())), ASKS_AHEAD)
        while self._asked[model_name] < wanted:
            self._asked[model_name] += 1
            self._ask(b"a", model_name, model_name)

    async def _take(self, model_name: str) -> int:
        call = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(model_name, deque()).append(call)
        self._ask_for_waiting(model_name)
        try:
            return await call
        except asyncio.CancelledError:
            if call.done() and not call.cancelled():  # handed a slot, then cancelled
                self._pass_on(model_name, call.result())
            raise

    @contextlib.asynccontextmanager
    async def slot(self, model_name: str, cfg: ModelConfig) -> AsyncIterator[None]:
        """Held for the whole logical call (all its attempts)."""
        uses = await self._take(model_name)
        try:
            yield
        finally:
            self._pass_on(model_name, uses + 1)

    async def pace(self, model_name: str, cfg: ModelConfig) -> None:
        """Before each attempt of a model with an rpm cap: wait for the booked start."""
        start = asyncio.get_running_loop().create_future()
        self._ask(b"p", model_name, start)
        delay = await start
        if delay > 0:
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self._writer is not None:
            self._writer.close()
