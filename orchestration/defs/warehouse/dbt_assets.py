"""dbt models as assets, dbt tests as asset checks; a failed dbt test becomes an alert.

The translator puts each model in the group of its layer (staging, intermediate, marts) and
wires the raw sources to the Python assets that write them, so the graph reads from golden set
and production day through to the marts. The build runs with `raise_on_error=False`: a failed *test*
is a failed check (and an alert), not a failed run, so the drift checks downstream still run;
a model that fails to *build* does fail the run.
"""

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from evals.alerts import record_alerts
from evals.dbt import dbt_env
from orchestration.lib.alerting import day_alert
from orchestration.lib.keys import RAW_TABLE_WRITERS
from orchestration.lib.resources import EvalhouseResource
from orchestration.project import DBT_PROJECT

DBT_LAYERS = ("staging", "intermediate", "marts")


class EvalhouseDbtTranslator(DagsterDbtTranslator):
    """Groups models by layer; a staging model also depends on the Python assets that write
    its raw table, so the graph runs from golden sets and production days to the marts.

    The raw sources keep their own keys (`raw/<table>`): a table such as raw.eval_runs has
    several writers (production days, samples, golden runs per model), so no single asset is it.
    """

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["sources"].get(unique_id) or manifest["nodes"].get(unique_id) or {}
        if node.get("resource_type") == "source":
            return spec
        layer = (node.get("fqn") or ["", "models"])[1]
        spec = spec.replace_attributes(group_name=layer if layer in DBT_LAYERS else "staging")
        if node.get("name", "").startswith("stg_raw__"):
            writers = RAW_TABLE_WRITERS.get(node["name"].removeprefix("stg_raw__"), ())
            spec = spec.merge_attributes(deps=[dg.AssetDep(key) for key in writers])
        return spec


TRANSLATOR = EvalhouseDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=False)
)


@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    dagster_dbt_translator=TRANSLATOR,
    name="warehouse_dbt",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def warehouse_dbt(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, evalhouse: EvalhouseResource
) -> Iterator[Any]:
    """`dbt build` of the selected models and their tests against the warehouse."""
    os.environ.update(dbt_env(config=evalhouse.load()))
    invocation = dbt.cli(["build"], context=context, raise_on_error=False)
    failed_tests: list[dg.AssetCheckResult] = []
    for event in invocation.stream():
        if isinstance(event, dg.AssetCheckResult) and not event.passed:
            failed_tests.append(event)
        yield event
    _record_failed_tests(context, evalhouse, failed_tests)
    broken = _failed_models(invocation)
    if broken:
        raise dg.Failure(f"dbt could not build: {', '.join(broken)}")


def _failed_models(invocation) -> list[str]:
    results = invocation.get_artifact("run_results.json").get("results", [])
    return [r["unique_id"] for r in results if r["status"] == "error" and ".test." not in r["unique_id"]]


def _record_failed_tests(context, evalhouse: EvalhouseResource, failed: list[dg.AssetCheckResult]) -> None:
    if not failed:
        return
    run_id = context.run.run_id
    today = datetime.now(UTC).date()
    drafts = [
        day_alert(
            "dbt_test",
            f"{result.asset_key.to_user_string()}:{result.check_name}",
            today,
            f"dbt test {result.check_name} on {result.asset_key.to_user_string()} failed",
            severity="critical" if result.severity == dg.AssetCheckSeverity.ERROR else "warning",
            statistic="failing_rows",
            observed=_failing_rows(result),
            expected_low=0.0,
            expected_high=0.0,
            evidence={"run": run_id, "check": result.check_name},
            orchestrator_run_id=run_id,
        )
        for result in failed
    ]
    with evalhouse.connect() as conn, conn.transaction():
        record_alerts(conn, drafts)


def _failing_rows(result: dg.AssetCheckResult) -> float | None:
    value = result.metadata.get("dagster_dbt/failed_row_count")
    return float(value.value) if value is not None else None
