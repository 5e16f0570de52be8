"""Production samples: each day, a weighted sample of production rows, re-graded and queued.

Why sample: the reference judge is too slow and costly to re-grade every production call, and
humans can review only a few. A stratified sample per stage keeps every stage represented
however skewed the traffic is, and each sampled row records its inclusion weight
(`sample_weight` = 1/π = rows in its stratum ÷ rows drawn), so a mart can weight sample rows
back to the day's population (a Horvitz–Thompson estimate) instead of over-counting small stages.

Per day and stage: up to `sampling.per_stage_per_day` settled production grading rows (role
grader: the platform grading a submission), drawn by a
seeded hash of the run id (deterministic: re-running a day draws the same rows). Each is
re-graded by `reference_judge` from its stored messages (through `evals.regrade`, the path
`evalhouse rejudge` uses too; a new row: source
`production_sample`, parent = the production row, role judge, the weight); the first
`sampling.review_share` of each stratum's draw goes to raw.review_queue for a human. Re-running
a day writes nothing new: re-grades are idempotent by key, queue entries by run id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from evals.config import Config

if TYPE_CHECKING:
    import psycopg

NO_STAGE = "(none)"
REVIEW_REASON = "production_sample"

_DRAW = """
with day_rows as (
    select run_id, coalesce(stage, %(no_stage)s) as stratum,
           count(*) over (partition by coalesce(stage, %(no_stage)s)) as stratum_size,
           row_number() over (
               partition by coalesce(stage, %(no_stage)s)
               order by md5(%(seed)s || run_id::text)
           ) as draw_rank
    from raw.eval_runs
    where source = 'production' and role = 'grader' and status = 'ok'
      and started_at >= %(start)s and started_at < %(end)s
)
select run_id, stratum, stratum_size, least(stratum_size, %(per_stratum)s) as drawn, draw_rank
from day_rows
where draw_rank <= %(per_stratum)s
order by stratum, draw_rank
"""


@dataclass(frozen=True)
class SampledRow:
    """One production row in the day's sample, with its stratum and inclusion weight."""

    run_id: str
    stratum: str
    stratum_size: int
    drawn: int
    draw_rank: int

    @property
    def weight(self) -> float:
        """1/π: how many of the day's stratum rows this sampled row stands for (≥ 1)."""
        return self.stratum_size / self.drawn


@dataclass
class SampleSummary:
    """What one day's sampling did."""

    day: date
    sampled: int = 0
    regraded_new: int = 0
    regrade_failed: int = 0
    queued: int = 0
    strata: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_metadata(self) -> dict:
        return {
            "sampled": self.sampled,
            "regraded_new": self.regraded_new,
            "regrade_failed": self.regrade_failed,
            "queued": self.queued,
            "strata": self.strata,
        }


def draw_sample(
    conn: psycopg.Connection, day: date, per_stratum: int, seed: int
) -> list[SampledRow]:
    """The day's stratified sample (per stage) of settled production rows."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = conn.execute(
        _DRAW,
        {
            "no_stage": NO_STAGE,
            "seed": str(seed),
            "start": start,
            "end": start + timedelta(days=1),
            "per_stratum": per_stratum,
        },
    ).fetchall()
    return [SampledRow(str(r[0]), r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]


def review_picks(sample: list[SampledRow], share: float) -> list[SampledRow]:
    """The first ⌈share × drawn⌉ rows of each stratum's draw (the draw order is random)."""
    return [row for row in sample if row.draw_rank <= math.ceil(share * row.drawn)]


def queue_for_review(conn: psycopg.Connection, rows: list[SampledRow]) -> int:
    """Add rows to raw.review_queue (once per run id); returns how many were new."""
    from evals.reviews import enqueue

    return enqueue(conn, [(row.run_id, row.stratum, REVIEW_REASON) for row in rows])


def _regrade_jobs(
    conn: psycopg.Connection, sample: list[SampledRow], judge: str, day: date
) -> list:
    """One re-grade per sampled row: the production call, sent to the judge as stored."""
    from evals.regrade import Regrade, load_runs
    from evals.runlog import idempotency_key

    runs = load_runs(conn, [row.run_id for row in sample])
    return [
        Regrade(
            key=idempotency_key("production_sample", row.run_id, judge),
            call=runs[row.run_id],
            parent_run_id=runs[row.run_id]["run_id"],
            fields={
                "source": "production_sample",
                "batch_id": f"sample:{day}",
                "sample_weight": row.weight,
                "attributes": {
                    "stratum": row.stratum,
                    "stratum_size": row.stratum_size,
                    "drawn": row.drawn,
                    "sampled_day": day.isoformat(),
                },
            },
        )
        for row in sample
    ]


def sample_day(
    config: Config, day: date, *, orchestrator_run_id: str | None = None
) -> SampleSummary:
    """Draw, re-grade (reference judge) and queue one day; idempotent."""
    from evals import warehouse
    from evals.regrade import regrade

    judge = config.reference_judge
    if judge is None:
        raise ValueError("sampling needs `reference_judge:` in evalhouse.yaml")
    summary = SampleSummary(day=day)
    with warehouse.connect() as conn:
        sample = draw_sample(conn, day, config.sampling.per_stage_per_day, config.sampling.seed)
        summary.sampled = len(sample)
        for row in sample:
            summary.strata[row.stratum] = {
                "population": row.stratum_size,
                "drawn": row.drawn,
                "weight": round(row.weight, 4),
            }
        counts = regrade(
            conn,
            config,
            judge,
            _regrade_jobs(conn, sample, judge, day),
            orchestrator_run_id=orchestrator_run_id,
        )
        summary.regraded_new, summary.regrade_failed = counts.new, counts.failed
        with conn.transaction():
            summary.queued = queue_for_review(
                conn, review_picks(sample, config.sampling.review_share)
            )
    return summary
