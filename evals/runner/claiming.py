"""The units this run calls: claimed a few ahead of the workers and checked again once claimed.

Two runs of the same batch (two `evalhouse run`s, a CLI run beside a Dagster backfill) share it
through `evals.claims`: a unit another run holds is set aside and looked at again once nothing
else is left — by then it has settled (nothing to call) or its claimant died (the lock went with
its session) and this run calls it. The writer releases a unit once its rows are committed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from evals.claims import POLL_S
from evals.runner.units import resume

if TYPE_CHECKING:
    from collections.abc import Callable

    from evals.claims import Claims
    from evals.runner.units import Unit

CLAIM_AHEAD = 64
CLAIM_PER_WORKER = 4
"""Units claimed per round trip: four per worker, at most CLAIM_AHEAD unless there are more
workers than that (one each then). No claim query per call, few locks held beyond the calls in
flight, and a second run of the same small batch (two rejudges, a CLI run beside a backfill)
takes a share of it rather than waiting for the first run to claim it all."""


def _calls(units: list[Unit]) -> int:
    return sum(int(u.call_main) + (u.judge_key is not None) for u in units)


class UnitSupply:
    """Hands the workers the units this run has claimed; counts the calls another run made.

    With `share`, the worker processes of one run share its units: `share()` hands out this
    process's next ones (none once all are handed out), so no two processes claim the same.
    `recheck(conn, units) -> (todo, settled)` drops claimed units that settled meanwhile
    (evals.pairwise passes its own, for units that are one call each).
    """

    def __init__(
        self,
        claims: Claims,
        units: list[Unit],
        workers: int,
        share: Callable[[], list[Unit]] | None = None,
        recheck: Callable = resume,
    ) -> None:
        self.claims = claims
        self.recheck = recheck
        self.ahead = max(workers, min(CLAIM_AHEAD, CLAIM_PER_WORKER * workers))
        self.share = share
        self.unclaimed = deque(units)
        self.held_elsewhere: list[Unit] = []
        self.ready: deque[Unit] = deque()
        self.calls_elsewhere = 0
        self._turn = asyncio.Lock()

    async def next(self) -> Unit | None:
        """The next unit to call; None once every unit is called here or settled elsewhere."""
        async with self._turn:
            while not self.ready:
                if not self.unclaimed and self.share is not None:
                    self.unclaimed.extend(self.share())
                if not self.unclaimed:
                    if not self.held_elsewhere:
                        return None
                    await asyncio.sleep(POLL_S)  # then try them again, `ahead` at a time
                    self.unclaimed.extend(self.held_elsewhere)
                    self.held_elsewhere = []
                ahead = min(self.ahead, len(self.unclaimed))
                await asyncio.to_thread(
                    self._claim, [self.unclaimed.popleft() for _ in range(ahead)]
                )
            return self.ready.popleft()

    def _claim(self, part: list[Unit]) -> None:
        """Claim what is free, set aside what another run holds, drop what settled meanwhile."""
        mine = self.claims.claim(u.key for u in part)
        self.held_elsewhere += [u for u in part if u.key not in mine]
        claimed = [u for u in part if u.key in mine]
        due = _calls(claimed)
        todo, _ = self.recheck(self.claims.conn, claimed)  # after the claim: sees its holder's rows
        self.calls_elsewhere += due - _calls(todo)
        keep = {u.key for u in todo}
        self.claims.release([u.key for u in claimed if u.key not in keep])
        self.ready.extend(todo)
