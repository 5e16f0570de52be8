"""The batched writer: finished rows are COPYed in batches on a timer, not one round trip a call.

Durable: the writer commits every FLUSH_INTERVAL_S (well under a second) or as soon as
FLUSH_ROWS rows wait, so a crash or a `kill -9` loses only the calls in flight. Lean: the
progress bar is redrawn from the same timer (`on_flush`), never per call.
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

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        self.pending: list[RunRecord] = []
        self.wake = asyncio.Event()

    def emit(self, record: RunRecord) -> None:
        self.summary.count(record)
        self.pending.append(record)
        if len(self.pending) >= FLUSH_ROWS:
            self.wake.set()

    async def _flush(self, conn: psycopg.Connection) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            await asyncio.to_thread(write_runs, conn, batch)

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
