"""dbt models as assets, dbt tests as asset checks; a failed dbt test becomes an alert.

The translator puts each model in the group of its layer (staging, intermediate, marts) and
wires the raw sources to the Python assets that write them, so the graph reads from golden set
and production day through to the marts. The build runs with `raise_on_error=False`: a failed *test*
is a failed check (and an alert), not a failed run, so the drift checks downstream still run;
a model that fails to *build*, or a test that cannot *run* (its SQL errors), does fail the
run, each named as what it is. Run config (`DbtBuildConfig`) passes dbt
`--vars` for one run over the settings evalhouse.yaml gives every run.
"""

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from pydantic import Field

from evals.alerts import record_alerts, resolve_cleared
from evals.config import Config
from evals.dbt import dbt_env, scoped_environment
from orchestration.lib.alerting import day_alert
from orchestration.lib.keys import raw_table_writers
from orchestration.lib.resources import EvalhouseResource

DBT_LAYERS = ("staging", "intermediate", "marts")
DBT_TEST_KIND = "dbt_test"


class EvalhouseDbtTranslator(DagsterDbtTranslator):
    """Groups models by layer; a staging model also depends on the Python assets that write
    its raw table, so the graph runs from golden sets and production days to the marts.

    The raw sources keep their own keys (`raw/<table>`): a table such as raw.eval_runs has
    several writers (production days, samples, golden runs per model), so no single asset is it.
    """

    def __init__(self, writers: Mapping[str, tuple[dg.AssetKey, ...]]):
        super().__init__(
            settings=DagsterDbtTranslatorSettings(
                enable_asset_checks=True, enable_code_references=False
            )
        )
        self._writers = writers

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["sources"].get(unique_id) or manifest["nodes"].get(unique_id) or {}
        if node.get("resource_type") == "source":
            return spec
        layer = (node.get("fqn") or ["", "models"])[1]
        spec = spec.replace_attributes(group_name=layer if layer in DBT_LAYERS else "staging")
        if node.get("name", "").startswith("stg_raw__"):
            writers = self._writers.get(node["name"].removeprefix("stg_raw__"), ())
            spec = spec.merge_attributes(deps=[dg.AssetDep(key) for key in writers])
        return spec


class DbtBuildConfig(dg.Config):
    """dbt `--vars` for this run only, over evalhouse.yaml's settings (macros/settings.sql),
    e.g. {"baseline_days": "28"} to flag the marts against a longer baseline once."""

    vars: dict[str, str] = Field(default_factory=dict)


def warehouse_dbt_assets(config: Config, project: DbtProject) -> dg.AssetsDefinition:
    """Every model of `project` as an asset, every dbt test as a check on it."""

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=EvalhouseDbtTranslator(raw_table_writers(config)),
        name="warehouse_dbt",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def warehouse_dbt(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        evalhouse: EvalhouseResource,
        config: DbtBuildConfig,
    ) -> Iterator[Any]:
        """`dbt build` of the selected models and their tests against the warehouse."""
        args = ["build", *(["--vars", json.dumps(config.vars)] if config.vars else [])]
        # dbt reads the connection from the environment (profiles.yml): set it for the
        # subprocess this starts, not for the rest of the process.
        with scoped_environment(dbt_env(config=evalhouse.config)):
            invocation = dbt.cli(args, context=context, raise_on_error=False)
        tests: list[dg.AssetCheckResult] = []
        for event in invocation.stream():
            if isinstance(event, dg.AssetCheckResult):
                tests.append(event)
            yield event
        _record_tests(context, evalhouse, tests)
        if errors := _error_summary(invocation):
            raise dg.Failure(errors)

    return warehouse_dbt


def _error_summary(invocation) -> str:
    """What dbt could not do, "" when nothing errored: models (seeds, snapshots) it could not
    build apart from tests it could not run. A test that ran and found rows is not here: it
    is a failed check."""
    results = invocation.get_artifact("run_results.json").get("results", [])
    errored = [r["unique_id"] for r in results if r["status"] == "error"]
    tests = [node for node in errored if node.startswith("test.")]
    built = [node for node in errored if not node.startswith("test.")]
    return "; ".join(
        f"{what}: {', '.join(nodes)}"
        for what, nodes in (("dbt could not build", built), ("dbt tests could not run", tests))
        if nodes
    )


def _record_tests(context, evalhouse: EvalhouseResource, tests: list[dg.AssetCheckResult]) -> None:
    """A failed test opens (or renews, day after day) its alert; a test that passes again
    resolves it at once — it has just been seen to pass, whatever the day."""
    failed = [result for result in tests if not result.passed]
    passed = {_test_subject(result) for result in tests if result.passed}
    run_id = context.run.run_id
    now = datetime.now(UTC)
    drafts = [
        day_alert(
            DBT_TEST_KIND,
            _test_subject(result),
            now.date(),
            f"dbt test {result.check_name} on {result.asset_key.to_user_string()} "
            + ("could not run (dbt error)" if _status(result) == "error" else "failed"),
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
        for subject in sorted(passed):
            resolve_cleared(conn, [DBT_TEST_KIND], now + timedelta(days=1), subject=subject)


def _test_subject(result: dg.AssetCheckResult) -> str:
    return f"{result.asset_key.to_user_string()}:{result.check_name}"


def _status(result: dg.AssetCheckResult) -> str | None:
    value = result.metadata.get("status")
    return value.value if value is not None else None


def _failing_rows(result: dg.AssetCheckResult) -> float | None:
    value = result.metadata.get("dagster_dbt/failed_row_count")
    return float(value.value) if value is not None else None
