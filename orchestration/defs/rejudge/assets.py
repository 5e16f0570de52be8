"""`rejudge`: another judge's verdicts on a day's graded calls, launched by hand.

Not part of the nightly job: a person picks the judge (and optionally suite, sources, prompt
version) in the launchpad and backfills the days to compare, exactly as `evalhouse rejudge`
does from the CLI; `evals.rejudge` plans, estimates, calls and writes. A partition is the UTC
day the graded calls were made; re-materializing a day makes only the calls still missing.
"""

import dagster as dg

from evals.rejudge import DEFAULT_SOURCES, RejudgeRequest, run_rejudge
from orchestration.lib import keys
from orchestration.lib.partitions import DAILY, SINGLE_RUN, days_of
from orchestration.lib.resources import EvalhouseResource


class RejudgeConfig(dg.Config):
    """The judge and the selection, as the `evalhouse rejudge` options. No dry run here: a
    materialization that made no call would mark the days done (use `--dry-run` on the CLI)."""

    judge: str | None = None  # None: the reference judge
    suite: str | None = None
    sources: list[str] = list(DEFAULT_SOURCES)
    prompt_version: str | None = None


@dg.asset(
    key=keys.REJUDGE,
    group_name="rejudge",
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    kinds={"postgres", "litellm"},
    description=(
        "Stored graded calls of the day re-graded by the judge chosen in the launchpad: new "
        "rows (source rejudge, role judge, parent = the graded call), never overwriting; the "
        "cost and duration estimate is logged before any call."
    ),
    metadata={"table": "raw.eval_runs", "filter": "source = 'rejudge'"},
)
def rejudge(context: dg.AssetExecutionContext, config: RejudgeConfig, evalhouse: EvalhouseResource):
    """Rejudge each day of the partition range; idempotent per day."""
    settings = evalhouse.config
    judge = config.judge or settings.reference_judge
    if judge is None:
        raise dg.Failure("no judge in the launchpad config and no reference_judge configured")
    per_day = {}
    for day in days_of(context):
        request = RejudgeRequest(
            judge=judge,
            since=day,
            until=day,
            suite=config.suite,
            sources=tuple(config.sources),
            prompt_version=config.prompt_version,
        )
        summary = run_rejudge(
            settings, request, echo=context.log.info, orchestrator_run_id=context.run.run_id
        )
        per_day[day.isoformat()] = summary.as_dict()
    return dg.MaterializeResult(
        metadata={
            "judge": judge,
            "new_rows": sum(d["new_rows"] for d in per_day.values()),
            "estimated_cost_usd": round(
                sum(d["estimate"]["cost_usd"] or 0.0 for d in per_day.values()), 6
            ),
            "cost_usd": round(sum(d["cost_usd"] for d in per_day.values()), 6),
            "days": dg.MetadataValue.json(per_day),
        }
    )
