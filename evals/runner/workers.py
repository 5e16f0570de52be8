"""The pool: a fixed number of workers drain the units while the writer task flushes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from evals.runner.calls import UnitCaller
    from evals.runner.units import Unit
    from evals.runner.writer import RunWriter


async def execute(
    conn: psycopg.Connection,
    units: list[Unit],
    workers: int,
    caller: UnitCaller,
    writer: RunWriter,
    on_flush: Callable[[], None],
) -> None:
    """Run every unit; the writer stops (after a last flush) once all workers are done."""
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    for unit in units:
        queue.put_nowait(unit)

    async def work() -> None:
        while True:
            try:
                unit = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await caller.run_unit(unit)
            except Exception as exc:  # a bug for one item must not sink the batch
                writer.emit(caller.failure(unit, exc))

    stop = asyncio.Event()
    writer_task = asyncio.create_task(writer.run(conn, stop, on_flush))
    try:
        await asyncio.gather(*(work() for _ in range(max(1, min(workers, len(units))))))
    finally:
        stop.set()
        writer.wake.set()
        await writer_task
