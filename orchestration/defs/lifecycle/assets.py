"""`retention`: the nightly pass of `evalhouse retention apply` (evals.lifecycle.retention).

Unpartitioned: a pass cuts by the clock (now minus each source's days), not by the night being
run, so a backfill of old nights never erases more than tonight's pass would.
"""

import dagster as dg

from evals.lifecycle.retention import apply_retention
from orchestration.lib import keys
from orchestration.lib.resources import EvalhouseResource


@dg.asset(
    key=keys.RETENTION,
    group_name="lifecycle",
    kinds={"postgres"},
    description=(
        "Runs older than their source's `retention:` days erased with their descendants, "
        "reviews, queue entries and alert examples; one audit row per source in "
        "raw.data_erasures."
    ),
    metadata={"tables": "raw.eval_runs, raw.human_reviews, raw.review_queue, raw.alerts"},
)
def retention(context: dg.AssetExecutionContext, evalhouse: EvalhouseResource):
    """Apply every source's retention; metadata: rows erased per source and table."""
    with evalhouse.connect(autocommit=True) as conn:
        cuts = apply_retention(
            conn, evalhouse.config, requested_by=f"dagster run {context.run.run_id}"
        )
    per_source = {
        cut.source: {"days": cut.days, "started_before": cut.cutoff.isoformat(), **cut.rows}
        for cut in cuts
    }
    return dg.MaterializeResult(
        metadata={
            "runs_erased": sum(cut.rows["eval_runs"] for cut in cuts),
            "sources": dg.MetadataValue.json(per_source),
        }
    )
