"""Golden sets and the nightly golden runs.

Design of the golden runs: one daily-partitioned asset *per candidate model* (key
`golden_runs/<model>`), rather than one asset over a day × model MultiPartitionsDefinition. All
daily assets then share one partitions definition, so the nightly job, a single-run backfill
over many days and the CLI's `--partition-range` carry golden runs, production days and marts
together; the UI still shows the day × model matrix (one row of partitions per model), and
each model's runs can be materialized, backfilled and fanned out on their own. Adding a model
to evalhouse.yaml adds an asset. Each partition runs every configured suite with
batch key `golden:<day>`, so re-materializing a day only retries calls that did not settle.

Inside the asset, the work fans out per model × slice: `golden_slices` steps each run the items
whose hash falls in their shard (the same idempotency keys as a whole run), so the multiprocess,
dask or k8s job executor can run them in other processes or machines against one warehouse by
URL; a last step runs each suite whole, which makes only what no slice settled and closes the
batch record. Steps hand each other nothing but the warehouse (Nothing outputs), so no IO
manager has to be shared between machines. The in-process default runs them one after another.
"""

from dataclasses import replace

import dagster as dg

from evals.batches import calls_by_run
from evals.config import Config
from evals.golden import store_suite, suites_from_config
from orchestration.lib import keys
from orchestration.lib.environment import candidate_models
from orchestration.lib.partitions import DAILY, SINGLE_RUN, days_of
from orchestration.lib.resources import EvalhouseResource

SLICE_RETRY = dg.RetryPolicy(max_retries=2, delay=5)
"""A slice that raised runs again (it makes only what did not settle). The multiprocess and k8s
job executors apply it; the dask executor has no Dagster retries, and re-runs a step whose
worker died itself (docs/deploy.md)."""


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


def golden_runs_asset(model: str, slices: int) -> dg.AssetsDefinition:
    """The nightly golden runs of one candidate model: `slices` steps, each running its shard
    of every suite's items, then one step that settles the batch (see the module docstring)."""
    shards = [_slice_op(model, index, slices) for index in range(slices)]
    settle = _settle_op(model)

    @dg.graph_asset(
        key=keys.golden_runs_key(model),
        group_name="golden",
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        ins={"golden_sets": dg.AssetIn(key=keys.GOLDEN_SETS, dagster_type=dg.Nothing)},
        kinds={"litellm", "postgres"},
        description=(
            f"Each day, every golden suite run against {model} (suite judges included) through "
            f"evals.runner, in {slices} slice step(s) by item hash that executors may run in "
            "other processes or machines; one run-log row per call, idempotent per day."
        ),
        metadata={"model": model, "table": "raw.eval_runs", "filter": "source = 'golden'"},
    )
    def _golden_runs(golden_sets):
        return settle([shard(golden_sets) for shard in shards])

    return _golden_runs


def _requests(context: dg.OpExecutionContext, config: Config, model: str):
    """(day, suite name, RunRequest) for every night of the run and every configured suite."""
    from evals.runner import RunRequest

    for day in days_of(context):
        for suite in config.suites:
            yield (
                day,
                suite,
                RunRequest(
                    suite,
                    model,
                    judge=config.suites[suite].judge,
                    source="golden",
                    batch_key=f"golden:{day.isoformat()}",
                    as_of=day,
                    orchestrator_run_id=context.run.run_id,
                    kind="golden_runs",
                    processes=config.golden_processes,
                ),
            )


def _slice_op(model: str, index: int, count: int) -> dg.OpDefinition:
    """Shard `index` of `count` of every suite, for every night of the run."""

    @dg.op(
        name=f"{keys.slug(model)}_slice_{index}",
        ins={"golden_sets": dg.In(dg.Nothing)},
        out=dg.Out(dg.Nothing),
        retry_policy=SLICE_RETRY,
        tags={"evalhouse/slice": f"{index}/{count}"},
        description=f"Golden runs of {model}: the items whose hash is {index} mod {count}.",
    )
    def _slice(context: dg.OpExecutionContext, evalhouse: EvalhouseResource) -> None:
        from evals.runner import resolve_suite, run_suite  # imports LiteLLM (~5 s): only in runs

        config = evalhouse.config
        suites = {name: resolve_suite(config, name) for name in config.suites}
        with evalhouse.connect() as conn:  # a slice is no version of its own: store the whole
            for suite in suites.values():
                store_suite(conn, suite)
        for _day, name, request in _requests(context, config, model):
            run_suite(config, replace(request, suite=suites[name].shard(index, count)))

    return _slice


def _settle_op(model: str) -> dg.OpDefinition:
    """Run every suite whole once the slices are done: it makes only what no slice settled
    (nothing, when all succeeded), closes each batch record over the whole suite, and reports
    what this Dagster run wrote, counted in the warehouse wherever the slices ran."""

    @dg.op(
        name=f"{keys.slug(model)}_settle",
        ins={"slices": dg.In(dg.Nothing)},
        out=dg.Out(dg.Nothing),
        description=f"Golden runs of {model}: settle each night's batch and report it.",
    )
    def _settle(context: dg.OpExecutionContext, evalhouse: EvalhouseResource) -> None:
        from evals.runner import run_suite  # imports LiteLLM (~5 s): only in runs

        config = evalhouse.config
        per_run = {}
        with evalhouse.connect(autocommit=True) as conn:
            for day, suite, request in _requests(context, config, model):
                summary = run_suite(config, request)
                calls, cost = calls_by_run(
                    conn, summary.batch_key, summary.batch_id, context.run.run_id
                )
                per_run[f"{day.isoformat()} {suite}"] = {
                    "suite_version": summary.suite_version,
                    "batch_id": summary.batch_id,
                    "planned_calls": summary.planned_calls,
                    "calls": calls,
                    "cost_usd": round(cost, 6),
                    "unsettled_calls": summary.unsettled_calls,
                    "accuracy": summary.accuracy,
                    "scored": summary.scored,
                    "processes": summary.processes,
                }
        context.add_output_metadata(
            {
                "calls": sum(run["calls"] for run in per_run.values()),
                "cost_usd": round(sum(run["cost_usd"] for run in per_run.values()), 6),
                "mean_suite_accuracy": _mean_accuracy(per_run),
                "runs": dg.MetadataValue.json(per_run),
                "ops_overview": dg.MetadataValue.url(config.alerts.base_url),
            }
        )

    return _settle


def _mean_accuracy(per_run: dict) -> float | None:
    """The unweighted mean of the runs' golden accuracies (each run is one night × suite)."""
    values = [r["accuracy"] for r in per_run.values() if r.get("accuracy") is not None]
    return round(sum(values) / len(values), 4) if values else None


def golden_run_assets(config: Config) -> dict[str, dg.AssetsDefinition]:
    """One golden-runs asset per candidate model of `config`."""
    return {
        model: golden_runs_asset(model, config.golden_slices) for model in candidate_models(config)
    }
