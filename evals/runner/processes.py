"""One run over several worker processes: one event loop, one LiteLLM and one warehouse
connection each, one shared budget of calls (evals.limits).

Why: one event loop with LiteLLM tops out near 250 calls/s on one core (its client CPU per
call, docs/benchmarks.md); past that a run needs more cores, so more processes.

- Workers come from a *fork server* that has imported LiteLLM and what workers need once
  (evals.fork_server, evals.runner.fork_preload), not forked from the parent: fork would copy
  the parent's threads' state (the LiteLLM preload thread, psycopg's connections) into the
  children, while the fork server is a clean process with one thread. Spawning each worker
  instead would pay one LiteLLM import per worker, all at once on the same cores: the first
  request came 7.8 s after a bare import with two spawned workers (docs/benchmarks.md).
- Nothing waits for that import but the workers' first calls: `evalhouse` starts the fork
  server before its own imports when `--processes N > 1` is on the command line (`run` after
  reading the config when its default is more than one); the pool starts its workers from a
  thread while the parent connects, stores the suite, plans and resumes; LiteLLM is warmed up
  once, in the fork server, so each worker only registers the config and opens its warehouse
  and claims connections before its first units come; the first worker ready takes the first
  units (it does not wait for the others).
- What the workers call is a `Work`: the config, how to make a caller of its units and how to
  drop units that settled meanwhile. A golden run's units (evals.runner.calls), a rejudge's or
  a replay's regrades (evals.regrade) go through the same pool, budget and writer.
- The parent plans and resumes as a single-process run does, then hands every worker the same
  list of units over its pipe (again for each part of a run done in parts, such as a rejudge's
  days: the workers stay up between parts); a worker asks the parent for its next units when
  it needs more (the parent keeps the only cursor: nothing shared to lock, nothing a killed
  worker can leave locked), claims them (evals.claims, as concurrent runs do) and calls them
  with the runner's own pool and writer.
- Each worker sends its RunSummary on every flush; the parent draws the progress bar from
  them and adds them up into the run's summary. A pipe per worker, not one shared queue: a
  worker killed halfway through a message would leave a shared queue unreadable for all. The batch record, the closing count of unsettled
  calls and the accuracy stay the parent's, from the warehouse, as in a single-process run.
- A worker killed mid-run loses the calls it had in flight and the units it had taken: they
  stay unsettled (the batch ends `failed`) and the next run makes them, once (their claims went
  with its session). The parent killed: its budget server's socket closes and every worker
  exits at once (evals.limits), which is the same as killing the whole run. With
  `shared_limits: warehouse` the workers take the warehouse's budget instead (no budget server),
  and a worker whose parent is gone exits when it next asks for units or reports progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from evals.fork_server import forkserver_context
from evals.limits import PARENT_GONE_EXIT, LimitServer
from evals.runner.claiming import CLAIM_AHEAD, UnitSupply
from evals.runner.units import resume
from evals.runner.workers import execute
from evals.runner.writer import RunWriter

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import psycopg

    from evals.claims import Claims
    from evals.config import Config
    from evals.llm import LLMClient
    from evals.runner.summary import RunSummary

CALLS_IN_FLIGHT_PER_PROCESS = 64
"""The default gives a process this many of the run's calls in flight: at 1 s latency that is
64 calls/s, well under one loop's ceiling, so a loop is never the bottleneck."""
_PARENT_CHECK_S = 0.25


def default_processes(in_flight: int, calls: int) -> int:
    """Processes for a run: one per CALLS_IN_FLIGHT_PER_PROCESS calls in flight, at most one per
    core, and one for a run too small to share (a process costs a LiteLLM import)."""
    return max(
        1,
        min(
            os.cpu_count() or 1,
            math.ceil(in_flight / CALLS_IN_FLIGHT_PER_PROCESS),
            math.ceil(calls / CLAIM_AHEAD),
        ),
    )


@dataclass(frozen=True)
class Work:
    """What calls units of one kind, in this process or a worker: `caller(client, emit)` makes
    the caller (`run_unit`, `failure`; a class and its leading arguments, so it pickles), and
    `recheck(conn, units) -> (todo, settled)` drops units that settled meanwhile."""

    config: Config
    caller: Callable[..., Any]
    recheck: Callable = resume


async def call_units(
    conn: psycopg.Connection,
    claims: Claims,
    work: Work,
    client: LLMClient | None,
    pool: WorkerPool | None,
    todo: list,
    workers: int,
    summary: RunSummary,
    redraw: Callable[[int, int, int, float], None],
) -> None:
    """Make the calls of `todo` that no concurrent run makes, here with `client` or in the
    pool's worker processes; what they did is added to `summary`."""
    if not todo:
        return
    if pool is not None:
        summary.lost_processes += await pool.call(todo, summary, redraw)
        return
    workers = max(1, min(workers, len(todo)))
    supply = UnitSupply(claims, todo, workers, recheck=work.recheck)
    writer = RunWriter(summary, claims.release)
    elsewhere_before = summary.calls_elsewhere

    def on_flush() -> None:
        summary.calls_elsewhere = elsewhere_before + supply.calls_elsewhere
        redraw(summary.calls, summary.calls_elsewhere, summary.errors, summary.cost_usd)

    await execute(conn, supply, workers, work.caller(client, writer.emit), writer, on_flush)


class WorkerPool:
    """The worker processes of one run, a pipe to each, and the budget server they share."""

    def __init__(self, work: Work, processes: int, workers: int) -> None:
        self.work, self.size, self.workers = work, processes, workers
        self.mp = forkserver_context()
        self.limits = LimitServer(work.config) if work.config.shared_limits == "run" else None
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.Process] = []
        self._starting: asyncio.Future | None = None

    async def start(self) -> None:
        """Serve the budget and start the workers, without waiting for them: a worker's start
        waits for the fork server's imports (seconds), which this process spends planning."""
        address = await self.limits.start() if self.limits is not None else None
        self._starting = asyncio.ensure_future(asyncio.to_thread(self._start_workers, address))

    def _start_workers(self, address: str | None) -> None:
        for number in range(self.size):
            mine, theirs = self.mp.Pipe()
            process = self.mp.Process(
                target=_worker_main,
                args=(self.work, address, self.workers, theirs, dict(os.environ)),
                name=f"evalhouse-run-{number}",
                daemon=True,
            )
            process.start()
            theirs.close()  # only the worker holds its end: its death is an EOF here
            self.pipes.append(mine)
            self.processes.append(process)

    async def call(
        self,
        todo: list,
        summary: RunSummary,
        redraw: Callable[[int, int, int, float], None],
    ) -> int:
        """Have the workers call `todo`; add what they did to `summary`. Returns how many
        workers died before they finished (they take no further part)."""
        await self._starting
        lost = 0
        for pipe in list(self.pipes):
            try:
                pipe.send((todo, summary.blank()))
            except OSError:  # died since the last part
                self._drop(pipe)
                lost += 1
        return lost + await asyncio.to_thread(self._serve, len(todo), summary, redraw)

    def _drop(self, pipe: Connection) -> None:
        self.pipes.remove(pipe)
        pipe.close()

    def _share(self, cursor: int, total: int) -> int:
        """Where the next take ends: `ahead` units at most, a fair share of what is left at
        least, so the processes finish together and one that dies takes little down with it."""
        ahead = max(CLAIM_AHEAD, self.workers)
        return min(total, cursor + max(1, min(ahead, (total - cursor) // (2 * self.size))))

    def _serve(
        self, total: int, summary: RunSummary, redraw: Callable[[int, int, int, float], None]
    ) -> int:
        """Hand out units as the workers ask for them, and collect their tallies, until every
        worker is done or dead."""
        cursor, lost = 0, 0
        latest: dict[int, RunSummary] = {}
        running = {pipe: number for number, pipe in enumerate(self.pipes)}
        while running:
            for pipe in wait(list(running)):
                number = running[pipe]
                try:
                    kind, part = pipe.recv()
                except (EOFError, OSError):  # killed: its last tally is what it did
                    del running[pipe]
                    self._drop(pipe)
                    lost += 1
                    continue
                if kind == "take":
                    end = self._share(cursor, total)
                    pipe.send((cursor, end))
                    cursor = end
                    continue
                latest[number] = part
                if kind == "done":
                    del running[pipe]
                parts = latest.values()
                redraw(
                    sum(p.calls for p in parts),
                    sum(p.calls_elsewhere for p in parts),
                    sum(p.errors for p in parts),
                    sum(p.cost_usd for p in parts),
                )
        for part in latest.values():
            summary.add(part)
        return lost

    async def close(self) -> None:
        """Stop the budget server (a worker still running exits) and reap the workers."""
        if self._starting is not None:
            await asyncio.wait([self._starting])  # its failure is call()'s to report
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
            pipe.close()
        if self.limits is not None:
            await self.limits.close()
        for process in self.processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()


def _worker_main(
    work: Work, address: str | None, workers: int, pipe: Connection, environ: dict[str, str]
) -> None:
    """A worker process: configure LiteLLM while the parent plans, then call its share of each
    list of units it is handed, until the parent says there is no more (None).

    The environment is the parent's now (the warehouse URL, keys), not the one the fork server
    started with for an earlier run of the same process."""
    from evals import warehouse
    from evals.claims import Claims
    from evals.llm import configured_litellm, run_calls

    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    configured_litellm(work.config)
    # connected before the first units come, while the parent is still planning them
    conn = warehouse.connect(autocommit=True)
    claims = Claims.open()
    parent = multiprocessing.parent_process()
    try:
        while True:
            while not pipe.poll(_PARENT_CHECK_S):
                if not parent.is_alive():
                    return
            try:
                job = pipe.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            todo, summary = job
            run_calls(_work(work, address, workers, (conn, claims), todo, summary, pipe))
    finally:
        claims.close()
        conn.close()


async def _work(
    work: Work,
    address: str | None,
    workers: int,
    connections: tuple[psycopg.Connection, Claims],
    todo: list,
    summary: RunSummary,
    pipe: Connection,
) -> None:
    from evals.limits import SharedLimits, process_limits
    from evals.llm import LLMClient

    def share() -> list:
        _to_parent(pipe, ("take", None))
        try:
            start, end = pipe.recv()
        except (EOFError, OSError):
            os._exit(PARENT_GONE_EXIT)
        return todo[start:end]

    workers = max(1, min(workers, len(todo)))
    if address is None:  # the warehouse's budget
        limits = process_limits(work.config)
    else:
        limits = SharedLimits(address)
        await limits.connect()
    client = LLMClient(work.config, limits=limits)
    conn, claims = connections
    supply = UnitSupply(claims, [], workers, share, recheck=work.recheck)
    writer = RunWriter(summary, claims.release)

    def on_flush() -> None:
        summary.calls_elsewhere = supply.calls_elsewhere
        _to_parent(pipe, ("progress", summary))

    try:
        await execute(conn, supply, workers, work.caller(client, writer.emit), writer, on_flush)
    finally:
        await client.aclose()
        await limits.aclose()
    _to_parent(pipe, ("done", summary))


def _to_parent(pipe: Connection, message: tuple) -> None:
    """Send to the parent; a parent that is gone ends the worker at once (as evals.limits does
    when the budget's socket closes) rather than through a clean-up that may wait on it."""
    try:
        pipe.send(message)
    except OSError:
        os._exit(PARENT_GONE_EXIT)
