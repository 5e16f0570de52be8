"""`pairwise_comparison`: the configured pairwise comparison, once a night.

Unpartitioned and in the nightly job (like `retention`): a comparison is of the models as they
are tonight, so a single-run backfill of many nights (the demo's) runs it once, for the last
night of its range. Its batch is `pairwise:<night>`: a night's comparison runs once, a re-run
of the same night makes only the calls still missing (evals.pairwise).
"""

from datetime import UTC, datetime

import dagster as dg

from orchestration.lib import keys
from orchestration.lib.partitions import days_of
from orchestration.lib.resources import EvalhouseResource


@dg.asset(
    key=keys.PAIRWISE_COMPARISON,
    group_name="pairwise",
    kinds={"litellm", "postgres"},
    description=(
        "The `pairwise:` comparison of evalhouse.yaml: both sides answer the suite's questions "
        "(once), the judge compares every pair in both orders; one run-log row per call."
    ),
    metadata={"table": "raw.eval_runs", "filter": "attributes ? 'position'"},
)
def pairwise_comparison(context: dg.AssetExecutionContext, evalhouse: EvalhouseResource):
    """Run the configured comparison for the run's last night (today outside a nightly run)."""
    from evals.pairwise import PairwiseRequest, run_pairwise  # imports LiteLLM: only in runs

    settings = evalhouse.config.pairwise
    nights = days_of(context)
    night = nights[-1] if nights else datetime.now(UTC).date()
    request = PairwiseRequest(
        settings.suite,
        settings.judge,
        baseline=settings.baseline,
        candidate=settings.candidate,
        orders=settings.orders,
        trials=settings.trials,
        batch_key=f"pairwise:{night.isoformat()}",
        as_of=night,
        orchestrator_run_id=context.run.run_id,
    )
    summary = run_pairwise(evalhouse.config, request).as_dict()
    if summary["unsettled_calls"]:
        context.log.warning(f"{summary['unsettled_calls']} calls still unsettled: re-run the night")
    return dg.MaterializeResult(
        metadata={
            key: dg.MetadataValue.json(summary[key])
            if isinstance(summary[key], dict)
            else summary[key]
            for key in (
                "batch_key",
                "batch_id",
                "calls",
                "unsettled_calls",
                "judgments_settled",
                "parse_errors",
                "consistency",
                "contestants",
                "cost_usd",
            )
        }
    )
