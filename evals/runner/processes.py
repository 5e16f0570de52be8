"""One run over several worker processes: one event loop, one LiteLLM and one warehouse
connection each, one shared budget of calls (evals.limits).

Why: one event loop with LiteLLM tops out near 250 calls/s on one core (its client CPU per
call, docs/benchmarks.md); past that a run needs more cores, so more processes.

- Workers come from a *fork server* that has imported LiteLLM once (started before the run
  plans its work, so that import overlaps the parent's suite storage and resume query), not
  forked from the parent: fork would copy the parent's threads' state (the LiteLLM preload
  thread, psycopg's connections) into the children, while the fork server is a clean process
  with one thread. Spawning each worker instead would pay one LiteLLM import per worker, all
  at once on the same cores: the first request came 7.8 s after a bare import with two spawned
  workers, against 0.9 s for one process (docs/benchmarks.md).
- The parent plans and resumes as a single-process run does, then hands every worker the same
  list of units over its pipe; a worker asks the parent for its next units when it needs more
  (the parent keeps the only cursor: nothing shared to lock, nothing a killed worker can leave
  locked), claims them (evals.claims, as concurrent runs do) and calls them with the runner's
  own pool and writer.
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
from multiprocessing.connection import wait
from typing import TYPE_CHECKING

from evals.limits import PARENT_GONE_EXIT, LimitServer
from evals.runner.claiming import CLAIM_AHEAD

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection

    from evals.runner.context import RunContext
    from evals.runner.summary import RunSummary
    from evals.runner.units import Unit

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


class WorkerPool:
    """The worker processes of one run, a pipe to each, and the budget server they share."""

    def __init__(self, run: RunContext, processes: int, workers: int) -> None:
        self.run, self.size, self.workers = run, processes, workers
        self.mp = multiprocessing.get_context("forkserver")
        self.mp.set_forkserver_preload(["litellm", "evals.llm", "evals.runner.driver"])
        self.limits = LimitServer(run.config) if run.config.shared_limits == "run" else None
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.Process] = []
        self.handed = False

    async def start(self) -> None:
        """Serve the budget and start the workers (they import LiteLLM, then wait for units)."""
        address = await self.limits.start() if self.limits is not None else None
        for number in range(self.size):
            mine, theirs = self.mp.Pipe()
            process = self.mp.Process(
                target=_worker_main,
                args=(self.run, address, self.workers, theirs, dict(os.environ)),
                name=f"evalhouse-run-{number}",
                daemon=True,
            )
            process.start()
            theirs.close()  # only the worker holds its end: its death is an EOF here
            self.pipes.append(mine)
            self.processes.append(process)

    async def call(
        self,
        todo: list[Unit],
        summary: RunSummary,
        redraw: Callable[[int, int, int, float], None],
    ) -> int:
        """Have the workers call `todo`; add what they did to `summary`. Returns how many
        workers died before they finished."""
        self.handed = True
        for pipe in self.pipes:
            pipe.send((todo, summary))  # the summary before any call: each worker's blank tally
        return await asyncio.to_thread(self._serve, len(todo), summary, redraw)

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
        for pipe in self.pipes:
            if not self.handed:
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
    run: RunContext, address: str | None, workers: int, pipe: Connection, environ: dict[str, str]
) -> None:
    """A worker process: configure LiteLLM while the parent plans, then call its share of units.

    The environment is the parent's now (the warehouse URL, keys), not the one the fork server
    started with for an earlier run of the same process."""
    from evals.llm import configured_litellm

    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    configured_litellm(run.config)
    parent = multiprocessing.parent_process()
    while not pipe.poll(_PARENT_CHECK_S):
        if not parent.is_alive():
            return
    job = pipe.recv()
    if job is not None:
        todo, summary = job
        asyncio.run(_work(run, address, workers, todo, summary, pipe))


async def _work(
    run: RunContext,
    address: str | None,
    workers: int,
    todo: list[Unit],
    summary: RunSummary,
    pipe: Connection,
) -> None:
    from evals import warehouse
    from evals.claims import Claims
    from evals.limits import SharedLimits, process_limits
    from evals.llm import LLMClient
    from evals.runner.calls import UnitCaller
    from evals.runner.claiming import UnitSupply
    from evals.runner.workers import execute
    from evals.runner.writer import RunWriter

    def share() -> list[Unit]:
        _to_parent(pipe, ("take", None))
        try:
            start, end = pipe.recv()
        except (EOFError, OSError):
            os._exit(PARENT_GONE_EXIT)
        return todo[start:end]

    workers = max(1, min(workers, len(todo)))
    if address is None:  # the warehouse's budget
        limits = process_limits(run.config)
    else:
        limits = SharedLimits(address)
        await limits.connect()
    client = LLMClient(run.config, limits=limits)
    conn = await asyncio.to_thread(warehouse.connect, autocommit=True)
    claims = await asyncio.to_thread(Claims.open)
    supply = UnitSupply(claims, [], workers, share)
    writer = RunWriter(summary, claims.release)

    def on_flush() -> None:
        summary.calls_elsewhere = supply.calls_elsewhere
        _to_parent(pipe, ("progress", summary))

    try:
        await execute(conn, supply, workers, UnitCaller(run, client, writer.emit), writer, on_flush)
    finally:
        await asyncio.to_thread(claims.close)
        await asyncio.to_thread(conn.close)
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
