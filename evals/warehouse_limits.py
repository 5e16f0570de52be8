"""One budget of calls per model for every process on one warehouse (`shared_limits: warehouse`).

The budget of evals.limits is a run's: the worker processes of one run share it through their
parent. Dagster steps (the golden runs' slices on the multiprocess, dask or k8s executor) and
concurrent runs have no common parent, only the warehouse, so this budget lives there:

- **Concurrency**: a model's `concurrency` slots are Postgres session advisory locks (ids from
  `limits:<model>:<i>`). A call holds one for all its attempts, on its process's budget
  connection. The lock's life is the holder's: a process killed mid-call ends its session and
  Postgres frees its slots at once (a vanished host: TCP keepalives, evals.claims.KEEPALIVE).
  A call with no free slot waits: one task per model and process tries again every `POLL_S`
  (with jitter) for as many slots as that process's calls wait for. No queue across processes,
  and no fairness: a process whose calls keep coming retakes a slot as soon as it gives it
  back, before another process polls (docs/deploy.md); each process serves its own callers
  first come, first served.
- **rpm**: the model's pacer is a row of `raw.call_pacing` (unlogged: it need not survive a
  crash), booked by one upsert per attempt on the warehouse's clock, so machines whose clocks
  disagree still space their starts by `RPM_WINDOW_S`/rpm seconds, as one process's pacer
  does. A reply delayed on the network shifts that start by the delay.

Costs: two round trips per call (take and give back a slot) and one more per attempt of a model
with an rpm cap (docs/benchmarks.md), and one warehouse connection per process and event loop.
Every process must give a model the same `concurrency`: a process with fewer slots configured
uses only the first of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import weakref
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from evals.claims import KEEPALIVE_VALUES, SET_KEEPALIVE, lock_id
from evals.limits import RPM_WINDOW_S

if TYPE_CHECKING:
    import psycopg

    from evals.config import ModelConfig

POLL_S = 0.01
"""How often a process whose calls wait for a slot tries again (jittered up to twice that)."""

# Takes up to %(wanted)s of the slots (the function runs row by row, stopping at the limit).
_TAKE = (
    "select id from unnest(%(ids)s::bigint[]) as id where pg_try_advisory_lock(id) limit %(wanted)s"
)
_GIVE_BACK = "select pg_advisory_unlock(%s)"
# Books the model's next start: returns the seconds from now until it (<= 0: start now).
_BOOK = """
insert into raw.call_pacing as p (model, next_at)
values (%(model)s, clock_timestamp() + make_interval(secs => %(interval)s))
on conflict (model) do update
set next_at = greatest(p.next_at, clock_timestamp()) + make_interval(secs => %(interval)s)
returning extract(epoch from p.next_at - clock_timestamp()) - %(interval)s
"""


def slot_ids(model_name: str, concurrency: int) -> list[int]:
    """The advisory lock ids of a model's slots."""
    return [lock_id(f"limits:{model_name}:{i}") for i in range(concurrency)]


class _Slots:
    """One model's slots as seen by one process: those its calls hold, and its callers waiting."""

    def __init__(self, conn: psycopg.AsyncConnection, ids: list[int]) -> None:
        self.conn, self.ids = conn, ids
        self.held: set[int] = set()
        self.waiting: deque[asyncio.Future[int]] = deque()
        self.poller: asyncio.Task | None = None
        # one take at a time: a session's advisory locks are reentrant, so two takes at once
        # could both be granted the same free slot
        self.taking = asyncio.Lock()
        self._handovers: set[asyncio.Task] = set()  # give-backs under way (kept referenced)

    async def take(self) -> int:
        if not self.waiting:  # nobody of this process is ahead: try at once
            attempt = asyncio.ensure_future(self._try(1))
            try:  # shielded: a statement cut short would leave a lock nobody knows it holds
                got = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                attempt.add_done_callback(self._give_back_unwanted)
                raise
            if got:
                return got[0]
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll())
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted as it was cancelled
                await self.give_back(future.result())
            raise

    async def _poll(self) -> None:
        """Take slots for the waiting callers until none waits (one task per model)."""
        while True:
            while self.waiting and self.waiting[0].done():  # callers that gave up
                self.waiting.popleft()
            if not self.waiting:
                return
            for slot in await self._try(len(self.waiting)):
                while self.waiting and self.waiting[0].done():
                    self.waiting.popleft()
                if self.waiting:
                    self.waiting.popleft().set_result(slot)
                else:
                    await self.give_back(slot)
            if self.waiting:
                await asyncio.sleep(POLL_S * (1 + random.random()))

    async def _try(self, wanted: int) -> list[int]:
        """Take up to `wanted` free slots (one round trip; none when all are held)."""
        async with self.taking:
            free = [i for i in self.ids if i not in self.held]
            if not free:
                return []
            cursor = await self.conn.execute(_TAKE, {"ids": free, "wanted": wanted})
            got = [row[0] for row in await cursor.fetchall()]
            self.held.update(got)
            return got

    def _give_back_unwanted(self, attempt: asyncio.Future[list[int]]) -> None:
        """The slots a cancelled caller's attempt took, given back."""
        if not attempt.cancelled() and attempt.exception() is None:
            for slot in attempt.result():
                self._handovers.add(task := asyncio.ensure_future(self.give_back(slot)))
                task.add_done_callback(self._handovers.discard)

    async def give_back(self, slot: int) -> None:
        self.held.discard(slot)
        await self.conn.execute(_GIVE_BACK, (slot,))


class _Session:
    """A process's budget connection on one event loop, and the models' slots held on it."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn
        self.slots: dict[str, _Slots] = {}


class WarehouseLimits:
    """The warehouse's budget, with the interface of evals.limits.LocalLimits (state per event
    loop, so one client serves `asyncio.run` after `asyncio.run`)."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Session] = (
            weakref.WeakKeyDictionary()
        )
        self._opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def _session(self) -> _Session:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is not None:
            return session
        async with self._opening.setdefault(loop, asyncio.Lock()):
            if loop not in self._sessions:
                self._sessions[loop] = _Session(await _connect())
            return self._sessions[loop]

    @contextlib.asynccontextmanager
    async def slot(self, model_name: str, cfg: ModelConfig) -> AsyncIterator[None]:
        """Held for the whole logical call (all its attempts)."""
        session = await self._session()
        slots = session.slots.get(model_name)
        if slots is None:
            slots = session.slots[model_name] = _Slots(
                session.conn, slot_ids(model_name, cfg.concurrency)
            )
        slot = await slots.take()
        try:
            yield
        finally:
            await slots.give_back(slot)

    async def pace(self, model_name: str, cfg: ModelConfig) -> None:
        """Before each attempt of a model with an rpm cap: wait for the booked start."""
        session = await self._session()
        cursor = await session.conn.execute(
            _BOOK, {"model": model_name, "interval": RPM_WINDOW_S / cfg.rpm}
        )
        (delay,) = await cursor.fetchone()
        if delay > 0:
            await asyncio.sleep(float(delay))

    async def aclose(self) -> None:
        """End this loop's session: any slot still held goes with it."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            for slots in session.slots.values():
                if slots.poller is not None:
                    slots.poller.cancel()
            await session.conn.close()


async def _connect() -> psycopg.AsyncConnection:
    """A session of its own on the warehouse (keepalives on both sides, as evals.claims)."""
    import psycopg

    from evals import warehouse

    url = warehouse.libpq_url(await asyncio.to_thread(warehouse.database_url))
    conn = await psycopg.AsyncConnection.connect(
        url, autocommit=True, keepalives=1, keepalives_idle=30
    )
    await conn.execute(SET_KEEPALIVE, KEEPALIVE_VALUES)
    return conn
