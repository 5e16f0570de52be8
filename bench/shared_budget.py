"""Per-call cost of the warehouse's budget (evals.warehouse_limits) against a process's own.

Takes and gives back a slot (and books an rpm start) N times per budget, one task after another
(the client CPU and round trips a call pays), then with many tasks at once against a
concurrency cap they exceed (what a loaded run does: waiting, polling, handing over). Uses the
warehouse selected by EVALHOUSE_DATABASE_URL, else a throwaway embedded Postgres.

    .venv/bin/python -m bench.shared_budget [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from bench._warehouse import bench_warehouse
from evals.config import ModelConfig
from evals.limits import LocalLimits
from evals.warehouse_limits import WarehouseLimits

_RPM_FAST = 60_000_000  # an rpm cap that never makes a call wait: only its booking is timed


async def _sequential(limits, cfg: ModelConfig, calls: int) -> float:
    """Microseconds per call: one slot (and one booking when `cfg` has an rpm cap) at a time."""
    started = time.perf_counter()
    for _ in range(calls):
        async with limits.slot("bench", cfg):
            if cfg.rpm:
                await limits.pace("bench", cfg)
    return (time.perf_counter() - started) / calls * 1e6


async def _contended(limits, cfg: ModelConfig, tasks: int, calls: int, hold_s: float) -> float:
    """Calls per second with `tasks` tasks sharing `cfg.concurrency` slots, each held `hold_s`."""
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with limits.slot("bench-capped", cfg):
                await asyncio.sleep(hold_s)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return calls / (time.perf_counter() - started)


async def _round_trip_us(calls: int) -> float:
    """One `select 1` on an async connection to the same warehouse: the floor of a round trip."""
    import psycopg

    from evals import warehouse

    url = warehouse.libpq_url(warehouse.database_url())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(calls):
            await conn.execute("select 1")
        return (time.perf_counter() - started) / calls * 1e6


async def _measure(calls: int) -> dict[str, float]:
    plain = ModelConfig(model="openai/bench", concurrency=64)
    paced = plain.model_copy(update={"rpm": _RPM_FAST})
    capped = ModelConfig(model="openai/bench", concurrency=16)
    results = {"select 1 round trip us": await _round_trip_us(calls)}
    for name, limits in (("local", LocalLimits()), ("warehouse", WarehouseLimits())):
        await _sequential(limits, paced, 50)  # connect, first bookings
        results[f"{name} slot us/call"] = await _sequential(limits, plain, calls)
        results[f"{name} slot+rpm us/call"] = await _sequential(limits, paced, calls)
        # 64 tasks, 16 slots held 50 ms each: the cap allows 320 calls/s
        results[f"{name} 16 slots x 50 ms calls/s"] = await _contended(
            limits, capped, 64, calls // 2, 0.05
        )
        await limits.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with bench_warehouse():
        results = asyncio.run(_measure(args.calls))
    for name, value in results.items():
        print(f"{name:36} {value:10.1f}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
