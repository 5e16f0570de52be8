"""The batched writer: finished rows are COPYed in batches on a timer, not one round trip a call.

Durable: the writer commits every FLUSH_INTERVAL_S (well under a second) or as soon as
FLUSH_ROWS rows wait, so a crash or a `kill -9` loses only the calls in flight. Lean: the
progress bar is redrawn from the same timer (`on_flush`), never per call. Shared: a finished
unit's claim is released only after the flush that committed its rows, so a concurrent run
that claims it next sees them (evals.claims).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from evals.runlog import RunRecord, write_runs

if TYPE_CHECKING:
    import psycopg

    from evals.runner.summary import RunSummary

FLUSH_INTERVAL_S = 0.25
FLUSH_ROWS = 2000


class RunWriter:
    """Collects finished rows (counting them into the summary) and writes them in batches."""

    def __init__(self, summary: RunSummary, release: Callable[[list[str]], None]) -> None:
        self.summary = summary
        self.release = release
        self.pending: list[RunRecord] = []
        self.finished_keys: list[str] = []
        self.wake = asyncio.Event()

    def emit(self, record: RunRecord) -> None:
        self.summary.count(record)
        self.pending.append(record)
        if len(self.pending) >= FLUSH_ROWS:
            self.wake.set()

    def finished(self, unit_key: str) -> None:
        """The unit's rows are all emitted: release its claim after the next flush."""
        self.finished_keys.append(unit_key)

    async def _flush(self, conn: psycopg.Connection) -> None:
        batch, self.pending = self.pending, []
        finished, self.finished_keys = self.finished_keys, []
        if batch:
            await asyncio.to_thread(write_runs, conn, batch)
        if finished:
            await asyncio.to_thread(self.release, finished)

    async def run(
        self, conn: psycopg.Connection, stop: asyncio.Event, on_flush: Callable[[], None]
    ) -> None:
        """Flush on the timer (or when woken) until `stop`, then flush what is left."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.wake.wait(), FLUSH_INTERVAL_S)
            except TimeoutError:
                pass
            self.wake.clear()
            await self._flush(conn)
            on_flush()
        await self._flush(conn)
        on_flush()
