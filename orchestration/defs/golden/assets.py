"""Golden sets and the nightly golden runs.

Design of the golden runs: one daily-partitioned asset *per candidate model* (key
`golden_runs/<model>`), rather than one asset over a day × model MultiPartitionsDefinition. All
daily assets then share one partitions definition, so the nightly job, a single-run backfill
over many days and the CLI's `--partition-range` carry golden runs, production days and marts
together; the UI still shows the day × model matrix (one row of partitions per model), and
each model's runs can be materialized, backfilled and fanned out on their own. Adding a model
to evalhouse.yaml adds an asset. Each partition runs every configured suite with
batch key `golden:<day>`, so re-materializing a day only retries calls that did not settle.
"""

import dagster as dg

from evals.config import Config
from evals.golden import store_suite, suites_from_config
from orchestration.lib import keys
from orchestration.lib.environment import candidate_models
from orchestration.lib.partitions import DAILY, SINGLE_RUN, days_of
from orchestration.lib.resources import EvalhouseResource


@dg.asset(
    key=keys.GOLDEN_SETS,
    group_name="golden",
    kinds={"yaml", "postgres"},
    description=(
        "Every suite named in evalhouse.yaml, validated (file:line errors) and loaded into "
        "raw.golden_suites / raw.golden_items under its content-hash version (idempotent)."
    ),
    metadata={"tables": "raw.golden_suites, raw.golden_items"},
)
def golden_sets(evalhouse: EvalhouseResource) -> dg.MaterializeResult:
    """Validate and load every configured suite."""
    suites = suites_from_config(evalhouse.config)
    loaded = {}
    with evalhouse.connect() as conn:
        for name, suite in suites.items():
            new = store_suite(conn, suite)
            loaded[name] = {
                "version": suite.version,
                "items": len(suite.items),
                "kind": suite.kind,
                "stages": len(suite.stage_counts()),
                "new_version": new,
            }
    return dg.MaterializeResult(
        metadata={
            "suites": len(loaded),
            "items": sum(s["items"] for s in loaded.values()),
            "versions": dg.MetadataValue.json(loaded),
        }
    )


def golden_runs_asset(model: str) -> dg.AssetsDefinition:
    """The nightly golden runs of one candidate model."""

    @dg.asset(
        key=keys.golden_runs_key(model),
        group_name="golden",
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        deps=[keys.GOLDEN_SETS],
        kinds={"litellm", "postgres"},
        description=(
            f"Each day, every golden suite run against {model} (suite judges included) through "
            "evals.runner; one run-log row per call, idempotent per day."
        ),
        metadata={"model": model, "table": "raw.eval_runs", "filter": "source = 'golden'"},
    )
    def _golden_runs(context: dg.AssetExecutionContext, evalhouse: EvalhouseResource):
        from evals.runner import RunRequest, run_suite  # imports LiteLLM (~5 s): only in runs

        config = evalhouse.config
        per_run, calls, cost = {}, 0, 0.0
        for day in days_of(context):
            for suite in config.suites:
                request = RunRequest(
                    suite,
                    model,
                    judge=config.suites[suite].judge,
                    source="golden",
                    batch_key=f"golden:{day.isoformat()}",
                    as_of=day,
                    orchestrator_run_id=context.run.run_id,
                    kind="golden_runs",
                )
                summary = run_suite(config, request)
                per_run[f"{day.isoformat()} {suite}"] = _summary_metadata(summary)
                calls += per_run[f"{day.isoformat()} {suite}"].get("calls", 0)
                cost += per_run[f"{day.isoformat()} {suite}"].get("cost_usd", 0.0)
        return dg.MaterializeResult(
            metadata={
                "calls": calls,
                "cost_usd": round(cost, 6),
                "mean_suite_accuracy": _mean_accuracy(per_run),
                "runs": dg.MetadataValue.json(per_run),
                "ops_overview": dg.MetadataValue.url(config.alerts.base_url),
            }
        )

    return _golden_runs


def _summary_metadata(summary) -> dict:
    """The numbers of a RunSummary worth keeping in Dagster (the run log keeps the rest)."""
    numbers = summary.as_dict()
    return {
        key: numbers[key]
        for key in (
            "suite_version",
            "batch_id",
            "calls",
            "calls_elsewhere",
            "skipped_calls",
            "unsettled_calls",
            "statuses",
            "accuracy",
            "scored",
            "latency_p95_ms",
            "cost_usd",
        )
    }


def _mean_accuracy(per_run: dict) -> float | None:
    """The unweighted mean of the runs' golden accuracies (each run is one night × suite)."""
    values = [r["accuracy"] for r in per_run.values() if r.get("accuracy") is not None]
    return round(sum(values) / len(values), 4) if values else None


def golden_run_assets(config: Config) -> dict[str, dg.AssetsDefinition]:
    """One golden-runs asset per candidate model of `config`."""
    return {model: golden_runs_asset(model) for model in candidate_models(config)}
