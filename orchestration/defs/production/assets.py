"""The production side of the run log, one UTC day at a time.

`production_runs` is what the app captured that day (through `evals.capture`, outside
Dagster): materializing a day seals it — the day's row counts, pass rate, cost and latency are
recorded in Dagster, and the quality suite runs on exactly those rows. `production_samples`
draws a stratified sample of the day per stage, re-grades it with the reference judge and
queues a share for human review (`evals.sampling`); re-running a day adds nothing.
"""

import dagster as dg

from evals.sampling import sample_day
from orchestration.lib import keys
from orchestration.lib.partitions import DAILY, SINGLE_RUN, day_window, days_of
from orchestration.lib.resources import EvalhouseResource

_DAY_SUMMARY = """
select count(*),
       count(*) filter (where status = 'ok'),
       avg(passed::int) filter (where status = 'ok'),
       coalesce(sum(cost_usd), 0),
       percentile_cont(0.5) within group (order by latency_ms),
       percentile_cont(0.95) within group (order by latency_ms),
       count(distinct stage)
from raw.eval_runs
where source = 'production' and started_at >= %s and started_at < %s
"""


@dg.asset(
    key=keys.PRODUCTION_RUNS,
    group_name="production",
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    kinds={"postgres"},
    description=(
        "Production LLM calls the app captured on the day (raw.eval_runs, source production). "
        "Materializing a day seals it: counts, pass rate, cost and latency are recorded and the "
        "quality suite runs on its rows."
    ),
    metadata={"table": "raw.eval_runs", "filter": "source = 'production'"},
)
def production_runs(context: dg.AssetExecutionContext, evalhouse: EvalhouseResource):
    """Summarise each day of captured production calls."""
    config = evalhouse.config
    per_day, total_rows, total_cost = {}, 0, 0.0
    with evalhouse.connect() as conn:
        for day in days_of(context):
            rows, ok, pass_rate, cost, p50, p95, stages = conn.execute(
                _DAY_SUMMARY, day_window(day)
            ).fetchone()
            per_day[day.isoformat()] = {
                "rows": rows,
                "ok": ok,
                "pass_rate": _round(pass_rate),
                "cost_usd": _round(cost),
                "latency_p50_ms": _round(p50),
                "latency_p95_ms": _round(p95),
                "stages": stages,
            }
            total_rows += rows
            total_cost += float(cost)
    context.log.info(f"production days: {per_day}")
    return dg.MaterializeResult(
        metadata={
            "rows": total_rows,
            "cost_usd": round(total_cost, 6),
            "days": dg.MetadataValue.json(per_day),
            "ops_overview": dg.MetadataValue.url(config.alerts.base_url),
        }
    )


@dg.asset(
    key=keys.PRODUCTION_SAMPLES,
    group_name="production",
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    deps=[keys.PRODUCTION_RUNS],
    kinds={"postgres", "litellm"},
    description=(
        "Per day, a stratified sample of production rows per stage with recorded inclusion "
        "weights (sample_weight = 1/π), re-graded by the reference judge (source "
        "production_sample, parent = the production row); a share is queued for human review."
    ),
    metadata={"table": "raw.eval_runs", "filter": "source = 'production_sample'"},
)
def production_samples(context: dg.AssetExecutionContext, evalhouse: EvalhouseResource):
    """Sample, re-grade and queue each day; idempotent per day."""
    config = evalhouse.config
    per_day = {}
    for day in days_of(context):
        summary = sample_day(config, day, orchestrator_run_id=context.run.run_id)
        per_day[day.isoformat()] = summary.as_metadata()
    return dg.MaterializeResult(
        metadata={
            "sampled": sum(d["sampled"] for d in per_day.values()),
            "regraded_new": sum(d["regraded_new"] for d in per_day.values()),
            "queued_for_review": sum(d["queued"] for d in per_day.values()),
            "days": dg.MetadataValue.json(per_day),
        }
    )


def _round(value) -> float | None:
    return None if value is None else round(float(value), 6)
