"""The warehouse's budget (`shared_limits: warehouse`): one concurrency and rpm budget per model
for processes with no common parent, its slots back the moment a holder is killed."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)
from test_runner import fake_model, grader_items, write_suite

from evals.config import ModelConfig
from evals.warehouse_limits import WarehouseLimits, slot_ids

MODEL = ModelConfig(model="openai/m", concurrency=3)


def _advisory_locks(url: str, ids: list[int]) -> int:
    """Slots of `ids` held right now, by any session (pg_locks splits a bigint in two halves)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and granted"
            " and objsubid = 1 and ((classid::bigint << 32) | objid::bigint) = any(%s)",
            (ids,),
        ).fetchone()[0]


def test_a_process_holds_at_most_concurrency_slots_as_advisory_locks(warehouse_url: str) -> None:
    ids = slot_ids("m", 3)
    seen: dict[str, int] = {}

    async def main() -> None:
        limits = WarehouseLimits()
        inside, go = 0, asyncio.Event()
        entered = asyncio.Condition()

        async def call() -> None:
            nonlocal inside
            async with limits.slot("m", MODEL):
                async with entered:
                    inside += 1
                    entered.notify_all()
                await go.wait()
                inside -= 1

        calls = [asyncio.create_task(call()) for _ in range(5)]
        async with entered:
            await entered.wait_for(lambda: inside == 3)
        await asyncio.sleep(0.1)  # polls that would take a fourth slot have had their turn
        seen["inside"] = inside
        seen["locks"] = await asyncio.to_thread(_advisory_locks, warehouse_url, ids)
        go.set()
        await asyncio.gather(*calls)
        seen["after"] = await asyncio.to_thread(_advisory_locks, warehouse_url, ids)
        await limits.aclose()

    asyncio.run(main())
    assert seen == {"inside": 3, "locks": 3, "after": 0}


def test_a_caller_cancelled_while_taking_a_slot_leaves_none_taken(warehouse_url: str) -> None:
    one = ModelConfig(model="openai/m", concurrency=1)
    locks: list[int] = []
    after: list[str] = []

    async def main() -> None:
        limits = WarehouseLimits()
        async with limits.slot("m", one):  # connected: a take is now one statement
            pass
        for turn in range(20):  # cancelled at various points of the take
            taking = limits.slot("m", one)
            caller = asyncio.create_task(taking.__aenter__())
            for _ in range(turn % 4):
                await asyncio.sleep(0)
            caller.cancel()
            try:
                await caller
                await taking.__aexit__(None, None, None)  # it had its slot: its own to give back
            except asyncio.CancelledError:
                pass
            await asyncio.sleep(0.05)  # a slot taken for a cancelled caller goes back
            locks.append(await asyncio.to_thread(_advisory_locks, warehouse_url, slot_ids("m", 1)))
        async with asyncio.timeout(2), limits.slot("m", one):  # the one slot is free
            after.append("taken")
        await limits.aclose()

    asyncio.run(main())
    assert locks == [0] * 20 and after == ["taken"]


_HOLDER = """
import asyncio, sys
from evals.config import ModelConfig
from evals.warehouse_limits import WarehouseLimits

async def main():
    limits, cfg = WarehouseLimits(), ModelConfig(model="openai/m", concurrency=3)
    async with limits.slot("m", cfg), limits.slot("m", cfg), limits.slot("m", cfg):
        print("held", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


def test_kill_9_of_a_holder_gives_its_slots_back(warehouse_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        waited: dict[str, float] = {}

        async def main() -> None:
            limits = WarehouseLimits()
            with pytest.raises(TimeoutError):  # every slot is the holder's
                async with asyncio.timeout(0.5):
                    async with limits.slot("m", MODEL):
                        pass
            os.kill(holder.pid, signal.SIGKILL)
            killed = time.monotonic()
            async with asyncio.timeout(10), limits.slot("m", MODEL):
                waited["s"] = time.monotonic() - killed
            await limits.aclose()

        asyncio.run(main())
    finally:
        holder.kill()
        holder.wait()
    assert waited["s"] < 2.0
    assert _advisory_locks(warehouse_url, slot_ids("m", 3)) == 0


def test_the_rpm_pacer_books_starts_60_over_rpm_apart_on_the_warehouse_clock(
    warehouse_url: str,
) -> None:
    cfg = ModelConfig(model="openai/m", rpm=600)  # a start every 0.1 s
    starts: list[float] = []

    async def main() -> None:
        limits = WarehouseLimits()

        async def attempt() -> None:
            await limits.pace("m", cfg)
            starts.append(time.monotonic())

        await asyncio.gather(*(attempt() for _ in range(6)))
        await limits.aclose()

    asyncio.run(main())
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(gaps) == 5 and min(gaps) > 0.1 - 0.03
    assert starts[-1] - starts[0] > 0.5 - 0.05


_WAITS = {"timeout_s": 600.0, "deadline_s": 600.0}
"""Calls held by the server while the other run starts up (minutes at load 18) are not retried."""

_ASKING = (
    "select count(*) from pg_stat_activity where datname = current_database()"
    " and pid <> pg_backend_pid()"
    " and (query like '%pg_try_advisory_lock(id) limit%' or query like '%raw.call_pacing%')"
)
"""Sessions whose last statement asked the warehouse's budget for a slot or a start."""


def _two_runs(
    fake: FakeOpenAI, tmp_path: Path, model: dict, items: int, processes: tuple[int, int]
) -> tuple[dict[str, list[float]], float]:
    """Two `evalhouse run`s at once (no common parent), each on a suite of its own, sharing
    the warehouse's budget. The server holds its replies until every process of both runs has
    asked the warehouse for a slot or a start, however far apart their start-ups end. Returns
    the request start times the server saw for each run, and when the last one asked."""
    config_path = tmp_path / "evalhouse.yaml"
    config_path.write_text(yaml.safe_dump({"shared_limits": "warehouse", "models": {"m": model}}))
    env = {**os.environ, "EVALHOUSE_CONFIG": str(config_path)}
    runs = {}
    fake.held = True
    for name, count in zip("AB", processes, strict=True):
        items_of_run = [
            {**item, "submission": f"{name}-{item['submission']}"} for item in grader_items(items)
        ]
        suite = write_suite(tmp_path / f"{name}.yaml", items_of_run, name=f"suite-{name}")
        command = [sys.executable, "-m", "evals.cli", "run", "--suite", str(suite), "--model"]
        command += ["m", "--no-progress", "--processes", str(count), "--json"]
        runs[name] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # both import LiteLLM (minutes at load 18)
    with psycopg.connect(os.environ["EVALHOUSE_DATABASE_URL"], autocommit=True) as conn:
        while conn.execute(_ASKING).fetchone()[0] < sum(processes):
            assert time.monotonic() < deadline, "the runs never got going"
            assert all(run.poll() is None for run in runs.values())
            time.sleep(0.05)
    ready_at = time.time()
    fake.held = False
    for run in runs.values():
        run.communicate(timeout=600)
        assert run.returncode == 0
    starts = {
        name: sorted(
            r["at"] for r in fake.requests if f"{name}-submission" in json.dumps(r["json"])
        )
        for name in runs
    }
    return starts, ready_at


def _both_waiting(starts: dict[str, list[float]], ready_at: float) -> float:
    """Seconds during which both runs had calls to start: each had asked for the budget and
    neither had started its last call (with a budget each, they would have called at once)."""
    return min(s[-1] for s in starts.values()) - ready_at


def test_two_runs_in_three_processes_share_one_concurrency_budget(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.latency_s = 0.3
    model = fake_model(fake_openai, concurrency=3, **_WAITS)
    starts, ready_at = _two_runs(fake_openai, tmp_path, model, items=30, processes=(2, 1))
    assert [len(s) for s in starts.values()] == [30, 30]
    # the server never saw more than the one budget (a budget per run: 3 + 3)
    assert _both_waiting(starts, ready_at) > 1.0
    assert fake_openai.max_in_flight == 3


def test_two_runs_share_one_rpm_pacer(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # rpm 480: a start every 0.125 s between both runs, booked first come first served (a
    # run's 48 calls book 6 s ahead); slots enough for all calls, so the pacer alone spaces them
    model = fake_model(fake_openai, concurrency=128, rpm=480, **_WAITS)
    starts, ready_at = _two_runs(fake_openai, tmp_path, model, items=48, processes=(1, 1))
    assert _both_waiting(starts, ready_at) > 1.0
    every = sorted(at for run in starts.values() for at in run)
    assert len(every) == 96
    # any 13 starts span 1.5 s, less the scheduling jitter of a loaded 2-core machine; two
    # pacers side by side would start 13 calls in 0.75 s
    spans = [later - earlier for earlier, later in zip(every, every[12:], strict=False)]
    assert min(spans) > 1.5 - 0.5
