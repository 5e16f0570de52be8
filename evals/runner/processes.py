"""One run over several worker processes: one event loop, one LiteLLM and one warehouse
connection each, one shared budget of calls (evals.limits).

Why: one event loop with LiteLLM tops out near 250 calls/s on one core (its client CPU per
call, docs/benchmarks.md); past that a run needs more cores, so more processes.

- Workers are *spawned*, not forked, and started before the run plans its work, so their
  LiteLLM imports (~2 s each) overlap the parent's migrations, suite storage and resume query.
  Fork would copy the parent's threads' state (the LiteLLM preload thread, psycopg's
  connections) into the children; spawn starts each clean.
- The parent plans and resumes as a single-process run does, then hands every worker the same
  list of units and a shared cursor: each takes the next `ahead` units, claims them
  (evals.claims, as concurrent runs do) and calls them with the runner's own pool and writer.
- Each worker reports its RunSummary on every flush; the parent draws the progress bar from
  them and adds them up into the run's summary. The batch record, the closing count of unsettled
  calls and the accuracy stay the parent's, from the warehouse, as in a single-process run.
- A worker killed mid-run loses the calls it had in flight and the units it had taken: they
  stay unsettled (the batch ends `failed`) and the next run makes them, once (their claims went
  with its session). The parent killed: its budget server's socket closes and every worker
  exits at once (evals.limits), which is the same as killing the whole run.
"""

from __future__ import annotations

import asyncio
import functools
import math
import multiprocessing
import os
import pickle
import queue
import signal
from typing import TYPE_CHECKING

from evals.limits import LimitServer
from evals.runner.claiming import CLAIM_AHEAD

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.sharedctypes import Synchronized

    from evals.runner.context import RunContext
    from evals.runner.summary import RunSummary
    from evals.runner.units import Unit

CALLS_IN_FLIGHT_PER_PROCESS = 64
"""The default gives a process this many of the run's calls in flight: at 1 s latency that is
64 calls/s, well under one loop's ceiling, so a loop is never the bottleneck."""
_REPORT_WAIT_S = 0.25


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
    """The worker processes of one run and the budget server they share."""

    def __init__(self, run: RunContext, processes: int, workers: int) -> None:
        self.run, self.size, self.workers = run, processes, workers
        self.spawn = multiprocessing.get_context("spawn")
        self.limits = LimitServer(run.config)
        self.cursor = self.spawn.Value("q", 0)
        self.inboxes: list[multiprocessing.Queue] = []
        self.reports = self.spawn.Queue()
        self.processes: list[multiprocessing.Process] = []
        self.handed = False

    async def start(self) -> None:
        """Serve the budget and start the workers (they import LiteLLM, then wait for units)."""
        address = await self.limits.start()
        for number in range(self.size):
            inbox = self.spawn.Queue()
            process = self.spawn.Process(
                target=_worker_main,
                args=(self.run, address, self.size, self.workers, self.cursor),
                kwargs={"inbox": inbox, "reports": self.reports, "number": number},
                name=f"evalhouse-run-{number}",
                daemon=True,
            )
            process.start()
            self.inboxes.append(inbox)
            self.processes.append(process)

    async def call(
        self,
        todo: list[Unit],
        summary: RunSummary,
        redraw: Callable[[int, int, int, float], None],
    ) -> list[int]:
        """Have the workers call `todo`; add what they did to `summary`. Returns the exit codes
        of workers that died (empty when all finished)."""
        self.handed = True
        for inbox in self.inboxes:
            inbox.put((todo, summary))  # the summary before any call: each worker's blank tally
        return await asyncio.to_thread(self._collect, summary, redraw)

    def _collect(
        self, summary: RunSummary, redraw: Callable[[int, int, int, float], None]
    ) -> list[int]:
        latest: dict[int, RunSummary] = {}
        done: set[int] = set()
        dead: dict[int, int] = {}
        while len(done) + len(dead) < self.size:
            try:
                kind, number, part = self.reports.get(timeout=_REPORT_WAIT_S)
            except queue.Empty:
                for number, process in enumerate(self.processes):
                    if number not in done and process.exitcode not in (None, 0):
                        dead[number] = process.exitcode
                continue
            latest[number] = pickle.loads(part)
            if kind == "done":
                done.add(number)
            parts = latest.values()
            redraw(
                sum(p.calls for p in parts),
                sum(p.calls_elsewhere for p in parts),
                sum(p.errors for p in parts),
                sum(p.cost_usd for p in parts),
            )
        for part in latest.values():
            summary.add(part)
        return list(dead.values())

    async def close(self) -> None:
        """Stop the budget server (a worker still running exits) and reap the workers."""
        if not self.handed:
            for inbox in self.inboxes:
                inbox.put(None)
        await self.limits.close()
        for process in self.processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()


def _worker_main(
    run: RunContext,
    address: str,
    processes: int,
    workers: int,
    cursor: Synchronized,
    *,
    inbox: multiprocessing.Queue,
    reports: multiprocessing.Queue,
    number: int,
) -> None:
    """A worker process: import LiteLLM while the parent plans, then call its share of units."""
    from evals.llm import configured_litellm

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    configured_litellm(run.config)
    parent = multiprocessing.parent_process()
    while True:
        try:
            job = inbox.get(timeout=_REPORT_WAIT_S)
            break
        except queue.Empty:
            if not parent.is_alive():
                return
    if job is not None:
        todo, summary = job
        report = functools.partial(_report, reports, number, summary)
        asyncio.run(_work(run, address, processes, workers, cursor, todo, summary, report))


def _report(
    reports: multiprocessing.Queue, number: int, summary: RunSummary, kind: str = "progress"
) -> None:
    reports.put((kind, number, pickle.dumps(summary)))  # a copy: the queue pickles it later


async def _work(
    run: RunContext,
    address: str,
    processes: int,
    workers: int,
    cursor: Synchronized,
    todo: list[Unit],
    summary: RunSummary,
    report: Callable[..., None],
) -> None:
    from evals import warehouse
    from evals.claims import Claims
    from evals.limits import SharedLimits
    from evals.llm import LLMClient
    from evals.runner.calls import UnitCaller
    from evals.runner.claiming import UnitSupply
    from evals.runner.workers import execute
    from evals.runner.writer import RunWriter

    workers = max(1, min(workers, len(todo)))
    limits = SharedLimits(address)
    await limits.connect()
    client = LLMClient(run.config, limits=limits)
    conn = await asyncio.to_thread(warehouse.connect, autocommit=True)
    claims = await asyncio.to_thread(Claims.open)
    supply = UnitSupply(claims, todo, workers, cursor, processes)
    writer = RunWriter(summary, claims.release)

    def on_flush() -> None:
        summary.calls_elsewhere = supply.calls_elsewhere
        report()

    try:
        await execute(conn, supply, workers, UnitCaller(run, client, writer.emit), writer, on_flush)
    finally:
        await asyncio.to_thread(claims.close)
        await asyncio.to_thread(conn.close)
        await client.aclose()
        await limits.aclose()
    report(kind="done")
