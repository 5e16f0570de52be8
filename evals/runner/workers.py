"""The pool: a fixed number of workers call the units this run claims while the writer flushes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from evals.llm import sparse_collections

if TYPE_CHECKING:
    import psycopg

    from evals.runner.calls import UnitCaller
    from evals.runner.claiming import UnitSupply
    from evals.runner.writer import RunWriter


async def execute(
    conn: psycopg.Connection,
    supply: UnitSupply,
    workers: int,
    caller: UnitCaller,
    writer: RunWriter,
    on_flush: Callable[[], None],
) -> None:
    """Run every unit; the writer stops (after a last flush) once all workers are done."""

    async def work() -> None:
        while (unit := await supply.next()) is not None:
            try:
                await caller.run_unit(unit)
            except Exception as exc:  # a bug for one item must not sink the batch
                writer.emit(caller.failure(unit, exc))
            writer.finished(unit.key)

    stop = asyncio.Event()
    writer_task = asyncio.create_task(writer.run(conn, stop, on_flush))
    with sparse_collections():
        try:
            await asyncio.gather(*(work() for _ in range(workers)))
        finally:
            stop.set()
            writer.wake.set()
            await writer_task
