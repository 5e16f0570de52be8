"""The rpm pacer, by its bookings (what a provider counting arrivals per minute would see), and
the budget server that worker processes share: never more than the budget in flight, few round
trips, every worker served, no slot lost to a cancelled call."""

from __future__ import annotations

import asyncio
import contextlib
import time

from hypothesis import given
from hypothesis import strategies as st

from evals.config import Config
from evals.limits import HANDOFFS, LimitServer, Pacer, SharedLimits


@given(st.integers(min_value=1, max_value=5000))
def test_no_minute_holds_more_than_rpm_booked_starts(rpm: int) -> None:
    pacer = Pacer(rpm)
    booked = [pacer.book() for _ in range(rpm + 1)]  # every call asks at once
    # the (rpm + 1)th start lies beyond the minute that holds the first, with room to spare
    # for the request's way to the provider
    assert booked[rpm] - booked[0] >= 60.0 + 0.4
    # and the allowance is used: rpm starts fit in the minute and a half second
    assert booked[rpm - 1] - booked[0] <= 60.5


# --- one budget served to worker processes: LimitServer and its workers' SharedLimits --------


class CountingServer(LimitServer):
    """The run's budget server, counting the slot requests it receives."""

    requests = 0

    def _acquire(self, model, writer, request_id) -> None:
        self.requests += 1
        super()._acquire(model, writer, request_id)


@contextlib.asynccontextmanager
async def budget(concurrency: int, workers: int):
    config = Config.model_validate(
        {"models": {"m": {"model": "openai/x", "concurrency": concurrency}}}
    )
    server = CountingServer(config)
    address = await server.start()
    sides = [SharedLimits(address) for _ in range(workers)]
    for side in sides:
        await side.connect()
    try:
        yield server, sides, config.model("m")
    finally:
        for side in sides:
            await side.aclose()
        await server.close()


def test_workers_keep_one_budget_and_ask_the_server_far_less_than_once_per_call() -> None:
    in_flight, most = 0, 0

    async def call(limits: SharedLimits, cfg) -> None:
        nonlocal in_flight, most
        async with limits.slot("m", cfg):
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.002)
            in_flight -= 1

    async def scenario() -> int:
        async with budget(concurrency=4, workers=2) as (server, sides, cfg):
            await asyncio.gather(*(call(side, cfg) for side in sides for _ in range(120)))
            await asyncio.sleep(0.05)  # the last slots' way back to the server
            assert server.in_use["m"] == 0
            return server.requests

    requests = asyncio.run(scenario())
    assert most == 4
    # one request per call before; now a slot serves up to HANDOFFS calls of a worker in a row
    # (some requests come back unused: a handed-on slot served the call they were made for)
    assert 240 / HANDOFFS <= requests <= 240 / 4


def test_a_worker_that_starts_late_gets_a_share_while_the_first_is_busy() -> None:
    async def calls(limits: SharedLimits, cfg, n: int) -> float:
        for _ in range(n):
            async with limits.slot("m", cfg):
                await asyncio.sleep(0.005)
        return time.monotonic()

    async def scenario() -> tuple[float, float]:
        async with budget(concurrency=4, workers=2) as (_, (first, late), cfg):
            busy = [asyncio.create_task(calls(first, cfg, 50)) for _ in range(8)]
            await asyncio.sleep(0.05)
            late_done = await asyncio.gather(*(calls(late, cfg, 10) for _ in range(4)))
            return max(late_done), max(await asyncio.gather(*busy))

    late_done, first_done = asyncio.run(scenario())
    # 400 calls of the first worker take ~0.5 s on 4 slots; the late one's 40 must not wait
    # for them (they would if the first worker kept its slots while it had calls waiting)
    assert late_done < first_done - 0.15


def test_a_call_cancelled_while_waiting_or_just_after_its_slot_came_loses_no_slot() -> None:
    async def scenario() -> None:
        async with budget(concurrency=1, workers=1) as (server, (limits,), cfg):
            release = asyncio.Event()

            async def holder() -> None:
                async with limits.slot("m", cfg):
                    await release.wait()
                handed.cancel()  # the slot was just handed to it: cancelled before it ran

            async def waiter() -> None:
                async with limits.slot("m", cfg):
                    pass

            first = asyncio.create_task(holder())
            await asyncio.sleep(0.02)
            gone = asyncio.create_task(waiter())
            handed = asyncio.create_task(waiter())
            await asyncio.sleep(0.02)
            gone.cancel()  # cancelled while waiting
            await asyncio.sleep(0)
            release.set()
            await first
            # the one slot is free again: a new call gets it at once
            await asyncio.wait_for(waiter(), timeout=2)
            assert gone.cancelled() and handed.cancelled()
            await asyncio.sleep(0.05)
            assert server.in_use["m"] == 0

    asyncio.run(scenario())


def test_a_worker_with_more_calls_than_the_budget_does_not_queue_a_later_one_behind_them() -> None:
    """A worker running far more call tasks than the model's concurrency (a run that also
    judges) keeps only a few requests at the server, so a worker that comes later is next."""
    done_by_first = 0

    async def busy(limits: SharedLimits, cfg) -> None:
        nonlocal done_by_first
        for _ in range(10):
            async with limits.slot("m", cfg):
                await asyncio.sleep(0.002)
            done_by_first += 1

    async def scenario() -> int:
        async with budget(concurrency=4, workers=2) as (_, (first, late), cfg):
            tasks = [asyncio.create_task(busy(first, cfg)) for _ in range(64)]
            await asyncio.sleep(0.02)
            asked_after = done_by_first
            async with late.slot("m", cfg):
                served_after = done_by_first
            await asyncio.gather(*tasks)
            return served_after - asked_after

    waited_for = asyncio.run(scenario())
    # the first worker's calls the late one waited for: ~100; with a request per waiting call
    # at the server, ~500 of the 640
    assert waited_for < 640 / 4, waited_for
