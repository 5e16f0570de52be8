"""Each evalhouse asset materialized against a real Postgres, with its checks: quality checks
fail on bad rows and pass on clean ones, dbt builds the marts, drift checks catch a shift."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from evals.config import load_config
from evals.runlog import RunRecord, write_runs
from orchestration.defs.drift.checks import DRIFT_CHECKS
from orchestration.defs.gate.assets import release_gate
from orchestration.defs.golden.assets import golden_run_assets, golden_sets
from orchestration.defs.golden.checks import golden_run_checks
from orchestration.defs.production.assets import production_runs, production_samples
from orchestration.defs.production.checks import production_runs_quality
from orchestration.defs.reviews.assets import human_reviews
from orchestration.defs.warehouse import build_defs, warehouse_dbt_assets
from orchestration.lib.resources import Evalhouse
from orchestration.project import dbt_project
from tests.conftest import REPO_ROOT

# The graph of the shipped evalhouse.yaml (one golden-runs asset per model) and its dbt manifest
# (parsed if stale); each test runs it under its own config through the resource.
SHIPPED = load_config(REPO_ROOT / "evalhouse.yaml")
GOLDEN_RUN_ASSETS = golden_run_assets(SHIPPED)
GOLDEN_RUN_CHECKS = golden_run_checks(GOLDEN_RUN_ASSETS)
_PROJECT = dbt_project(SHIPPED)
warehouse_dbt = warehouse_dbt_assets(SHIPPED, _PROJECT)
DBT_RESOURCES = build_defs(warehouse_dbt, _PROJECT).resources
MART_CHECKS = [check.on(warehouse_dbt) for check in DRIFT_CHECKS]

DAY = date(2026, 11, 10)
STAGES = ("basics", "loops", "functions", "classes", "testing")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The shipped models with the small example suites (fast golden runs)."""
    examples = REPO_ROOT / "golden_sets" / "examples"
    path = tmp_path / "evalhouse.yaml"
    shipped = (REPO_ROOT / "evalhouse.yaml").read_text()
    suites_block = shipped[shipped.index("suites:"):shipped.index("simulator:")]
    path.write_text(shipped.replace(suites_block, (
        "suites:\n"
        f"  essay-feedback:\n    path: {examples / 'essay_feedback.suite.yaml'}\n"
        f"  sql-basics:\n    path: {examples / 'sql_basics.jsonl'}\n    judge: judge\n\n"
    )))
    return path


@pytest.fixture
def resources(config_path: Path, warehouse_url: str) -> dict:
    return {"evalhouse": Evalhouse(load_config(config_path)), **DBT_RESOURCES}


def _production_rows(day: date, n_per_stage: int, *, pass_rate: dict[str, float] | None = None,
                     parse_error_share: float = 0.0, latency_ms: float = 900.0,
                     cost_usd: float = 0.00013, seed: int = 1) -> list[RunRecord]:
    """Realistic production grading rows of one day (the shape evals.capture writes)."""
    rng = random.Random(seed)
    rows = []
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for stage in STAGES:
        rate = (pass_rate or {}).get(stage, 0.6)
        for i in range(n_per_stage):
            parse_error = rng.random() < parse_error_share
            passed = rng.random() < rate
            rows.append(RunRecord(
                idempotency_key=f"prod:{day}:{stage}:{i}:{seed}",
                source="production", role="grader", model="tutor-small",
                started_at=start + timedelta(seconds=rng.randrange(86_000)),
                status="parse_error" if parse_error else "ok",
                stage=stage, suite="intro-python", item_id=f"{stage}-{i % 7}",
                touchpoint="app", prompt_name="rubric_grader", prompt_version="v1",
                verdict=None if parse_error else ("pass" if passed else "revise"),
                passed=None if parse_error else passed,
                output_text="{" if parse_error else '{"verdict": "pass"}',
                latency_ms=latency_ms * (0.5 + rng.random()), input_tokens=400,
                output_tokens=120, cost_usd=cost_usd,
            ))
    return rows


def _write(url: str, rows: list[RunRecord]) -> None:
    with psycopg.connect(url) as conn:
        write_runs(conn, rows)


def _alerts(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select kind, subject, severity from raw.alerts order by alert_id").fetchall()


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def test_a_clean_production_day_materializes_and_passes_its_quality_check(warehouse_url, resources):
    _write(warehouse_url, _production_rows(DAY, 40))
    result = dg.materialize(
        [production_runs, production_runs_quality], resources=resources, partition_key=DAY.isoformat()
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("production_runs")
    assert materialization.metadata["rows"].value == 200
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    assert _alerts(warehouse_url) == []


def test_a_day_of_parse_errors_and_absurd_latency_fails_the_check_and_raises_one_alert(
    warehouse_url, resources
):
    _write(warehouse_url, _production_rows(DAY, 40, parse_error_share=0.3, latency_ms=2e7))
    for _ in range(2):  # the second run of the same day must not add an alert
        result = dg.materialize(
            [production_runs, production_runs_quality], resources=resources,
            partition_key=DAY.isoformat(),
        )
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    failed = check.metadata["days"].value[DAY.isoformat()]["failed"]
    assert "is_parse_error" in failed and "latency_ms" in failed
    assert _alerts(warehouse_url) == [("run_log_quality", "production_runs", "warning")]


def test_golden_sets_load_and_a_nights_golden_runs_are_idempotent(warehouse_url, resources):
    model, asset = next(iter(GOLDEN_RUN_ASSETS.items()))
    check = next(c for c in GOLDEN_RUN_CHECKS if asset.key in {k.asset_key for k in c.check_keys})
    first = dg.materialize([golden_sets, asset, check], resources=resources, partition_key=DAY.isoformat())
    assert first.success
    [loaded] = first.asset_materializations_for_node("golden_sets")
    assert loaded.metadata["suites"].value == 2
    [runs] = first.asset_materializations_for_node(asset.node_def.name)
    assert runs.metadata["calls"].value > 0
    assert [c.passed for c in first.get_asset_check_evaluations()] == [True], [
        c.metadata for c in first.get_asset_check_evaluations()]
    with psycopg.connect(warehouse_url) as conn:
        count = conn.execute(
            "select count(*) from raw.eval_runs where batch_id = %s", (f"golden:{DAY}",)
        ).fetchone()[0]
    again = dg.materialize([asset], resources=resources, partition_key=DAY.isoformat())
    [rerun] = again.asset_materializations_for_node(asset.node_def.name)
    with psycopg.connect(warehouse_url) as conn:
        recount = conn.execute(
            "select count(*) from raw.eval_runs where batch_id = %s", (f"golden:{DAY}",)
        ).fetchone()[0]
    assert recount - count == rerun.metadata["calls"].value, "a re-run only retries unsettled calls"
    assert model in runs.metadata["runs"].value.__repr__() or runs.metadata["calls"].value


def test_production_samples_are_weighted_regraded_and_queued_once(warehouse_url, resources, config_path):
    from evals.runner import RunRequest, run_suite

    request = RunRequest("essay-feedback", "tutor-small", source="production", batch_key="app")
    run_suite(load_config(config_path), request)
    with psycopg.connect(warehouse_url) as conn:  # the app's calls of that day
        conn.execute("update raw.eval_runs set started_at = %s + (started_at - date_trunc('day', started_at))",
                     (datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC),))
    for _ in range(2):
        result = dg.materialize([production_samples], resources=resources, partition_key=DAY.isoformat())
    [materialization] = result.asset_materializations_for_node("production_samples")
    assert materialization.metadata["regraded_new"].value == 0, "the second run adds nothing"
    with psycopg.connect(warehouse_url) as conn:
        samples = conn.execute(
            "select s.sample_weight, s.parent_run_id is not null, s.role, s.model"
            " from raw.eval_runs s where s.source = 'production_sample'"
        ).fetchall()
        queued = conn.execute("select count(*) from raw.review_queue").fetchone()[0]
    assert samples and all(w >= 1 and parent and role == "judge" and m == "judge"
                           for w, parent, role, m in samples)
    assert queued >= 1
    observed = dg.materialize([human_reviews], resources=resources)
    assert observed.success


def test_dbt_builds_the_marts_and_the_drift_checks_catch_a_stage_shift_and_a_cost_spike(
    warehouse_url, resources
):
    nights = [DAY - timedelta(days=i) for i in range(15, -1, -1)]
    for index, night in enumerate(nights):  # the last two nights, loops passes 15 points more
        shifted = night >= DAY - timedelta(days=1)
        _write(warehouse_url, _production_rows(
            night, 200, seed=index, pass_rate={"loops": 0.75} if shifted else None,
            cost_usd=0.0013 if night == DAY else 0.00013,
        ))

    one_off = {"ops": {"warehouse_dbt": {"config": {"vars": {"too_easy_above": "0.91"}}}}}
    built = dg.materialize([warehouse_dbt, *MART_CHECKS], resources=resources, run_config=one_off,
                           tags={"dagster/partition": (DAY - timedelta(days=2)).isoformat()})
    assert built.success
    with psycopg.connect(warehouse_url) as conn:  # run config reaches dbt as --vars
        bands = conn.execute(
            "select distinct band_too_easy_above from marts.fct_stage_daily"
        ).fetchall()
    assert bands == [(0.91,)]
    checks = _check_results(built)
    assert len(checks) > 50, "dbt tests run as asset checks"
    assert [k for k, e in checks.items() if not e.passed] == [], "a quiet night passes everything"
    assert _alerts(warehouse_url) == []

    shifted = dg.materialize(
        [warehouse_dbt, *MART_CHECKS], resources=resources,
        selection=dg.AssetSelection.checks(*MART_CHECKS),
        tags={"dagster/partition": DAY.isoformat()},
    )
    failed = {e.check_name for e in shifted.get_asset_check_evaluations() if not e.passed}
    assert failed == {"stage_pass_rate_drift", "cost_spike"}
    kinds = {(kind, subject) for kind, subject, _ in _alerts(warehouse_url)}
    assert ("pass_rate_shift", "stage=loops") in kinds
    assert ("cost_spike", "model=tutor-small source=production role=grader") in kinds
    with psycopg.connect(warehouse_url) as conn:
        examples = conn.execute(
            "select cardinality(example_run_ids) from raw.alerts where kind = 'pass_rate_shift'"
        ).fetchone()[0]
    assert examples >= 1


def test_the_release_gate_decides_from_launchpad_config_and_blocks_unless_deploy(warehouse_url, resources):
    config = {"ops": {"release_gate": {"config": {
        "suite": "essay-feedback", "baseline": "tutor-small", "candidate": "tutor-large"}}}}
    result = dg.materialize([release_gate], resources=resources, run_config=config, raise_on_error=False)
    [materialization] = result.asset_materializations_for_node("release_gate")
    decision = materialization.metadata["decision"].value
    assert decision == "insufficient-data", "five items cannot show non-inferiority"
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "release_gate_passes" and not check.passed and check.blocking
    with psycopg.connect(warehouse_url) as conn:
        stored = conn.execute("select decision, suite from raw.gate_decisions").fetchall()
    assert stored == [(decision, "essay-feedback")]


def test_a_failed_dbt_test_is_one_alert_until_the_test_passes_again(warehouse_url, resources):
    from types import SimpleNamespace

    from orchestration.defs.warehouse.dbt_assets import _record_tests

    key, name = dg.AssetKey(["marts", "fct_stage_daily"]), "not_null_fct_stage_daily_stage"
    failed = dg.AssetCheckResult(asset_key=key, check_name=name, passed=False,
                                 metadata={"dagster_dbt/failed_row_count": 3})
    context = SimpleNamespace(run=SimpleNamespace(run_id="dagster-run-7"))
    for _ in range(2):  # the same failure twice in a day is one alert
        _record_tests(context, resources["evalhouse"], [failed])
    assert _alerts(warehouse_url) == [
        ("dbt_test", "marts/fct_stage_daily:not_null_fct_stage_daily_stage", "critical")
    ]
    _record_tests(context, resources["evalhouse"],
                  [dg.AssetCheckResult(asset_key=key, check_name=name, passed=True)])
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select status, occurrences from raw.alerts").fetchall() == [
            ("resolved", 1)
        ]
