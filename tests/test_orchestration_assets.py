"""Each evalhouse asset materialized against a real Postgres, with its checks: quality checks
fail on bad rows and pass on clean ones, dbt builds the marts, drift checks catch a shift."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from evals import runlog
from evals.alerts import links
from evals.config import AlertsConfig, load_config
from evals.runlog import RunRecord, write_runs
from orchestration.defs.drift.checks import DRIFT_CHECKS, EXAMPLES_PER_FINDING
from orchestration.defs.gate.assets import release_gate
from orchestration.defs.golden.assets import golden_run_assets, golden_sets
from orchestration.defs.golden.checks import golden_run_checks
from orchestration.defs.lifecycle.assets import retention
from orchestration.defs.pairwise.assets import pairwise_comparison
from orchestration.defs.production.assets import production_runs, production_samples
from orchestration.defs.production.checks import production_runs_quality
from orchestration.defs.rejudge.assets import rejudge
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
    suites_block = shipped[shipped.index("suites:") : shipped.index("simulator:")]
    path.write_text(
        shipped.replace(
            suites_block,
            (
                "suites:\n"
                f"  essay-feedback:\n    path: {examples / 'essay_feedback.suite.yaml'}\n"
                f"  sql-basics:\n    path: {examples / 'sql_basics.jsonl'}\n    judge: judge\n\n"
            ),
        )
    )
    return path


@pytest.fixture
def resources(config_path: Path, warehouse_url: str) -> dict:
    return {"evalhouse": Evalhouse(load_config(config_path)), **DBT_RESOURCES}


def _production_rows(
    day: date,
    n_per_stage: int,
    *,
    pass_rate: dict[str, float] | None = None,
    parse_error_share: float = 0.0,
    latency_ms: float = 900.0,
    cost_usd: float = 0.00013,
    seed: int = 1,
    prompt_version: str = "v1",
    exact: bool = False,
) -> list[RunRecord]:
    """Realistic production grading rows of one day (the shape evals.capture writes); `exact`
    makes each stage pass exactly its rate instead of drawing each verdict."""
    rng = random.Random(seed)
    rows = []
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for stage in STAGES:
        rate = (pass_rate or {}).get(stage, 0.6)
        for i in range(n_per_stage):
            parse_error = rng.random() < parse_error_share
            passed = i < round(rate * n_per_stage) if exact else rng.random() < rate
            rows.append(
                RunRecord(
                    idempotency_key=f"prod:{day}:{stage}:{i}:{seed}",
                    source="production",
                    role="grader",
                    model="tutor-small",
                    started_at=start + timedelta(seconds=rng.randrange(86_000)),
                    status="parse_error" if parse_error else "ok",
                    stage=stage,
                    suite="intro-python",
                    item_id=f"{stage}-{i % 7}",
                    touchpoint="app",
                    prompt_name="rubric_grader",
                    prompt_version=prompt_version,
                    verdict=None if parse_error else ("pass" if passed else "revise"),
                    passed=None if parse_error else passed,
                    output_text="{" if parse_error else '{"verdict": "pass"}',
                    latency_ms=latency_ms * (0.5 + rng.random()),
                    input_tokens=400,
                    output_tokens=120,
                    cost_usd=cost_usd,
                )
            )
    return rows


def _write(url: str, rows: list[RunRecord]) -> None:
    with psycopg.connect(url) as conn:
        write_runs(conn, rows)


def _alerts(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select kind, subject, severity from raw.alerts order by alert_id"
        ).fetchall()


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def _move_calls_to(conn: psycopg.Connection, day: date) -> None:
    """Every call of the run log to `day`, at its time of day (into that month's partition,
    made first: the calls were written today, perhaps in another month)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    runlog.create_partitions(conn, [midnight])
    conn.execute(
        "update raw.eval_runs set started_at = %s + (started_at - date_trunc('day', started_at))",
        (midnight,),
    )


def test_a_clean_production_day_materializes_and_passes_its_quality_check(warehouse_url, resources):
    _write(warehouse_url, _production_rows(DAY, 40))
    result = dg.materialize(
        [production_runs, production_runs_quality],
        resources=resources,
        partition_key=DAY.isoformat(),
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
            [production_runs, production_runs_quality],
            resources=resources,
            partition_key=DAY.isoformat(),
        )
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    failed = check.metadata["days"].value[DAY.isoformat()]["failed"]
    assert "is_parse_error" in failed and "latency_ms" in failed
    assert _alerts(warehouse_url) == [("run_log_quality", "production_runs", "warning")]


def test_the_retention_asset_erases_production_past_the_shipped_180_days_and_audits_it(
    warehouse_url, resources
):
    today = datetime.now(UTC).date()
    _write(warehouse_url, _production_rows(today - timedelta(days=200), 1, seed=1))
    _write(warehouse_url, _production_rows(today - timedelta(days=10), 1, seed=2))
    result = dg.materialize([retention], resources=resources)
    assert result.success
    [materialization] = result.asset_materializations_for_node("retention")
    assert materialization.metadata["runs_erased"].value == 5
    sources = materialization.metadata["sources"].value
    assert sorted(sources) == ["production", "production_sample"]
    assert sources["production"]["eval_runs"] == 5
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from raw.eval_runs").fetchone()[0] == 5
        audited = conn.execute(
            "select scope ->> 'source', requested_by like 'dagster run %' from raw.data_erasures"
            " order by 1"
        ).fetchall()
    assert audited == [("production", True), ("production_sample", True)]


def test_the_nightly_pairwise_comparison_judges_the_configured_pair_once_a_night(
    warehouse_url, config_path
):
    shipped = load_config(config_path)
    suite = str(REPO_ROOT / "golden_sets" / "pairwise_questions.yaml")
    config = shipped.model_copy(
        update={"pairwise": shipped.pairwise.model_copy(update={"suite": suite})}
    )
    night = {"dagster/partition": DAY.isoformat()}
    first = dg.materialize(
        [pairwise_comparison], resources={"evalhouse": Evalhouse(config)}, tags=night
    )
    assert first.success
    [materialization] = first.asset_materializations_for_node("pairwise_comparison")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["batch_key"] == f"pairwise:{DAY.isoformat()}"
    assert (metadata["calls"], metadata["judgments_settled"], metadata["unsettled_calls"]) == (
        20 * 2 + 20 * 2,
        40,
        0,
    )
    assert set(metadata["contestants"]) == {"tutor-small", "tutor-large"}
    again = dg.materialize(
        [pairwise_comparison], resources={"evalhouse": Evalhouse(config)}, tags=night
    )
    [materialization] = again.asset_materializations_for_node("pairwise_comparison")
    assert materialization.metadata["calls"].value == 0
    with psycopg.connect(warehouse_url) as conn:
        roles = conn.execute(
            "select role, count(*) from raw.eval_runs group by 1 order by 1"
        ).fetchall()
    assert roles == [("candidate", 40), ("judge", 40)]


def test_golden_sets_load_and_a_nights_golden_runs_are_idempotent(warehouse_url, resources):
    model, asset = next(iter(GOLDEN_RUN_ASSETS.items()))
    check = next(c for c in GOLDEN_RUN_CHECKS if asset.key in {k.asset_key for k in c.check_keys})
    first = dg.materialize(
        [golden_sets, asset, check], resources=resources, partition_key=DAY.isoformat()
    )
    assert first.success
    [loaded] = first.asset_materializations_for_node("golden_sets")
    assert loaded.metadata["suites"].value == 2
    [runs] = first.asset_materializations_for_node(asset.node_def.name)
    assert runs.metadata["calls"].value == 10, "5 essays graded, 5 SQL answers scored"
    assert set(runs.metadata["runs"].value) == {f"{DAY} essay-feedback", f"{DAY} sql-basics"}
    assert [c.passed for c in first.get_asset_check_evaluations()] == [True], [
        c.metadata for c in first.get_asset_check_evaluations()
    ]
    with psycopg.connect(warehouse_url) as conn:
        count, models = conn.execute(
            "select count(*), array_agg(distinct model) from raw.eval_runs where batch_id = %s",
            (f"golden:{DAY}",),
        ).fetchone()
    assert (count, models) == (10, [model])
    with psycopg.connect(warehouse_url) as conn:
        records = conn.execute(
            "select suite, batch_id::text, kind, started_by, status from raw.eval_batches"
            " order by suite"
        ).fetchall()
    per_suite = runs.metadata["runs"].value
    assert records == [
        (
            suite,
            per_suite[f"{DAY} {suite}"]["batch_id"],
            "golden_runs",
            f"dagster:{first.run_id}",
            "completed",
        )
        for suite in ("essay-feedback", "sql-basics")
    ]
    # golden_processes reaches every step's run: the re-run spreads over two worker processes
    spread = resources["evalhouse"].config.model_copy(update={"golden_processes": 2})
    again = dg.materialize(
        [asset], resources={**resources, "evalhouse": Evalhouse(spread)},
        partition_key=DAY.isoformat(),
    )  # fmt: skip
    [rerun] = again.asset_materializations_for_node(asset.node_def.name)
    assert {run["processes"] for run in rerun.metadata["runs"].value.values()} == {2}
    with psycopg.connect(warehouse_url) as conn:
        recount = conn.execute(
            "select count(*) from raw.eval_runs where batch_id = %s", (f"golden:{DAY}",)
        ).fetchone()[0]
    assert recount - count == rerun.metadata["calls"].value, "a re-run only retries unsettled calls"
    assert set(runs.metadata["runs"].value) == {f"{DAY} essay-feedback", f"{DAY} sql-basics"}
    assert model in GOLDEN_RUN_ASSETS


def test_golden_run_metadata_counts_a_judged_answer_by_its_judges_verdict(
    warehouse_url, tmp_path, config_path
):
    """An answer suite graded by a judge: the accuracy in the asset's metadata is the share of
    answers whose judge verdict passes, recomputed here from the raw rows."""
    suite = tmp_path / "trivia.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "trivia",
                "kind": "answer",
                "verdicts": ["correct", "incorrect"],
                "passing_verdicts": ["correct"],
                "issue_tags": [],
                "default_rubric": "correct: the expected answer.",
                "items": [
                    {
                        "id": f"t-{i}",
                        "stage": "basic",
                        "question": f"What is {i} + {i}?",
                        "expected_answer": str(2 * i),
                    }
                    for i in range(24)
                ],
            }
        )
    )
    text = config_path.read_text()
    config_path.write_text(
        text.replace("suites:\n", f"suites:\n  trivia:\n    path: {suite}\n    judge: judge\n", 1)
    )
    resources = {"evalhouse": Evalhouse(load_config(config_path)), **DBT_RESOURCES}
    model, asset = next(iter(GOLDEN_RUN_ASSETS.items()))
    result = dg.materialize(
        [golden_sets, asset], resources=resources, partition_key=DAY.isoformat()
    )
    [runs] = result.asset_materializations_for_node(asset.node_def.name)
    with psycopg.connect(warehouse_url) as conn:
        answers = conn.execute(
            "select run_id from raw.eval_runs where suite = 'trivia' and role = 'candidate'"
            " and status = 'ok' and model = %s",
            (model,),
        ).fetchall()
        judged = dict(
            conn.execute(
                "select parent_run_id, passed from raw.eval_runs where suite = 'trivia'"
                " and role = 'judge' and status = 'ok'"
            ).fetchall()
        )
    passes = [bool(judged.get(run_id)) for (run_id,) in answers]
    assert len(passes) == 24 and 0 < sum(passes) < 24
    assert runs.metadata["runs"].value[f"{DAY} trivia"]["accuracy"] == pytest.approx(
        sum(passes) / len(passes)
    )


def test_production_samples_are_weighted_regraded_and_queued_once(
    warehouse_url, resources, config_path
):
    from evals.runner import RunRequest, run_suite

    request = RunRequest("essay-feedback", "tutor-small", source="production", batch_key="app")
    run_suite(load_config(config_path), request)
    with psycopg.connect(warehouse_url) as conn:  # the app's calls of that day
        _move_calls_to(conn, DAY)
    for _ in range(2):
        result = dg.materialize(
            [production_samples], resources=resources, partition_key=DAY.isoformat()
        )
    [materialization] = result.asset_materializations_for_node("production_samples")
    assert materialization.metadata["regraded_new"].value == 0, "the second run adds nothing"
    with psycopg.connect(warehouse_url) as conn:
        samples = conn.execute(
            "select s.sample_weight, s.role, s.model from raw.eval_runs s"
            " where s.source = 'production_sample'"
        ).fetchall()
        parents, production = (
            {row[0] for row in conn.execute(sql).fetchall()}
            for sql in (
                "select parent_run_id from raw.eval_runs where source = 'production_sample'",
                "select run_id from raw.eval_runs where source = 'production'",
            )
        )
        queued = conn.execute("select count(*) from raw.review_queue").fetchone()[0]
    # The 5 essays are one stage: a stratum of 5, all drawn (weight 1), ⌈25 % × 5⌉ queued.
    assert samples == [(1.0, "judge", "judge")] * 5
    assert parents == production and len(production) == 5
    assert queued == 2
    observed = dg.materialize([human_reviews], resources=resources)
    assert observed.success


def test_a_days_rejudge_is_launched_with_its_judge_and_adds_nothing_when_run_again(
    warehouse_url, resources, config_path
):
    from evals.runner import RunRequest, run_suite

    run_suite(
        load_config(config_path),
        RunRequest("essay-feedback", "tutor-small", source="production", batch_key="app"),
    )
    with psycopg.connect(warehouse_url) as conn:  # the app's calls of that day
        _move_calls_to(conn, DAY)
        graded = {
            row[0]
            for row in conn.execute(
                "select run_id from raw.eval_runs where source = 'production'"
            ).fetchall()
        }
    run_config = {"ops": {"rejudge": {"config": {"judge": "tutor-large"}}}}
    new_rows = []
    for _ in range(2):
        result = dg.materialize(
            [rejudge], resources=resources, partition_key=DAY.isoformat(), run_config=run_config
        )
        [materialization] = result.asset_materializations_for_node("rejudge")
        new_rows.append(materialization.metadata["new_rows"].value)
    assert new_rows == [len(graded), 0]
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select parent_run_id, model, batch_id from raw.eval_runs where source = 'rejudge'"
        ).fetchall()
    assert {parent for parent, _, _ in rows} == graded
    assert {(model, batch) for _, model, batch in rows} == {
        ("tutor-large", f"rejudge:tutor-large:{DAY}")
    }


def test_dbt_builds_the_marts_and_the_drift_checks_catch_a_stage_shift_and_a_cost_spike(
    warehouse_url, resources
):
    nights = [DAY - timedelta(days=i) for i in range(15, -1, -1)]
    for index, night in enumerate(nights):  # the last two nights, loops passes 15 points more
        shifted = night >= DAY - timedelta(days=1)
        _write(
            warehouse_url,
            _production_rows(
                night,
                200,
                seed=index,
                pass_rate={"loops": 0.75} if shifted else None,
                cost_usd=0.0013 if night == DAY else 0.00013,
            ),
        )

    one_off = {"ops": {"warehouse_dbt": {"config": {"vars": {"too_easy_above": "0.91"}}}}}
    built = dg.materialize(
        [warehouse_dbt, *MART_CHECKS],
        resources=resources,
        run_config=one_off,
        tags={"dagster/partition": (DAY - timedelta(days=2)).isoformat()},
    )
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
        [warehouse_dbt, *MART_CHECKS],
        resources=resources,
        selection=dg.AssetSelection.checks(*MART_CHECKS),
        tags={"dagster/partition": DAY.isoformat()},
    )
    failed = {e.check_name for e in shifted.get_asset_check_evaluations() if not e.passed}
    assert failed == {"stage_pass_rate_drift", "cost_spike"}
    kinds = {(kind, subject) for kind, subject, _ in _alerts(warehouse_url)}
    loops = "stage=loops model=tutor-small prompt=v1 suite=intro-python@∅"
    assert ("pass_rate_shift", loops) in kinds
    assert ("cost_spike", "model=tutor-small prompt=v1 source=production role=grader") in kinds
    with psycopg.connect(warehouse_url) as conn:
        examples = conn.execute(
            "select r.stage, r.passed from raw.alerts a"
            " join raw.eval_runs r on r.run_id = any(a.example_run_ids)"
            " where a.kind = 'pass_rate_shift'"
        ).fetchall()
    assert examples == [("loops", True)] * EXAMPLES_PER_FINDING, "rows showing the rise"


def _build_marts_read_by(checks: list[dg.AssetChecksDefinition], resources: dict) -> None:
    """dbt builds only the marts `checks` read and the models they come from, without dbt's
    tests: the whole project's build and its tests are test_dbt_builds_the_marts_…'s claim; here
    the build only sets the stage."""
    marts = {spec.asset_key for check in checks for spec in check.check_specs}
    models = dg.AssetSelection.assets(*marts).upstream() & dg.AssetSelection.assets(warehouse_dbt)
    selection = models.without_checks()
    assert dg.materialize([warehouse_dbt], resources=resources, selection=selection).success


def _drift_nights(resources: dict, first: date, last: date) -> None:
    """The drift checks over a range of nights, as one backfill run does them."""
    result = dg.materialize(
        [warehouse_dbt, *MART_CHECKS],
        resources=resources,
        selection=dg.AssetSelection.checks(*MART_CHECKS),
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )
    assert result.success


def test_a_prompt_rollout_is_an_event_and_a_shift_inside_its_epoch_is_drift(
    warehouse_url, resources
):
    """v1 → v2 moves nothing, v2 → v3 lowers loops by 10 points, then functions drops 10 points
    inside v3. Every stage passes exactly its rate each day, so only the changes can alarm."""
    first = DAY - timedelta(days=39)

    def night(number: int) -> date:
        return first + timedelta(days=number - 1)

    for number in range(1, 41):
        version = "v1" if number <= 14 else "v2" if number <= 28 else "v3"
        rates = {"loops": 0.5} if version == "v3" else {}
        if number >= 39:
            rates["functions"] = 0.5
        _write(
            warehouse_url,
            _production_rows(
                night(number), 200, seed=number, exact=True, prompt_version=version, pass_rate=rates
            ),
        )
    _build_marts_read_by(MART_CHECKS, resources)

    _drift_nights(resources, night(13), night(18))
    assert _alerts(warehouse_url) == [], "a rollout that moves nothing raises nothing"

    _drift_nights(resources, night(29), night(32))
    with psycopg.connect(warehouse_url) as conn:
        alerts = conn.execute(
            "select alert_id, kind, subject, severity, evidence, example_run_ids, window_start,"
            " window_end from raw.alerts order by alert_id"
        ).fetchall()
        [(example_version,)] = conn.execute(
            "select prompt_version from raw.eval_runs where run_id = %s", (alerts[0][5][0],)
        ).fetchall()
    assert [(kind, subject, severity) for _, kind, subject, severity, *_ in alerts] == [
        (
            "version_change_effect",
            "stage=loops model=tutor-small prompt=v2→v3 suite=intro-python@∅",
            "critical",
        ),
    ]
    alert_id, _, _, _, evidence, example_run_ids, window_start, window_end = alerts[0]
    versions = (evidence["before"]["prompt_version"], evidence["after"]["prompt_version"])
    assert versions == ("v2", "v3")
    assert (evidence["before"]["n"], evidence["before"]["passes"]) == (2800, 1680)
    assert (evidence["after"]["n"], evidence["after"]["passes"]) == (400, 200)
    assert (window_start.date(), window_end.date()) == (night(29), night(31))
    assert example_version == "v3"
    diff = ("prompt diff", f"http://127.0.0.1:8000/runs/{example_run_ids[0]}?against=v2#prompt")
    assert diff in links(
        AlertsConfig(),
        {"alert_id": alert_id, "evidence": evidence, "example_run_ids": example_run_ids},
    )

    _drift_nights(resources, night(33), night(40))
    shifts = [row for row in _alerts(warehouse_url) if row[0] != "version_change_effect"]
    assert shifts == [
        (
            "pass_rate_shift",
            "stage=functions model=tutor-small prompt=v3 suite=intro-python@∅",
            "critical",
        ),
    ]
    with psycopg.connect(warehouse_url) as conn:
        [(window_end,)] = conn.execute(
            "select window_end from raw.alerts where kind = 'pass_rate_shift'"
        ).fetchall()
    assert window_end.date() == night(41), "caught on its second night (the end is exclusive)"


def _golden_night(
    night: date, prompt_version: str, correct_items: int, items: int = 60
) -> list[RunRecord]:
    """One night's golden batch of a grader suite: the first `correct_items` items graded right."""
    start = datetime(night.year, night.month, night.day, 3, tzinfo=UTC)
    return [
        RunRecord(
            idempotency_key=f"golden:{night}:{i}",
            source="golden",
            role="candidate",
            model="tutor-small",
            started_at=start + timedelta(seconds=i),
            status="ok",
            batch_id=f"golden:{night}",
            suite="intro-python",
            suite_version="sv1",
            item_id=f"item-{i:02d}",
            stage="loops",
            prompt_name="rubric_grader",
            prompt_version=prompt_version,
            expected_verdict="pass",
            verdict="pass" if i < correct_items else "revise",
            passed=i < correct_items,
            output_text='{"verdict": "pass"}',
            latency_ms=800.0,
            input_tokens=400,
            output_tokens=120,
            cost_usd=0.00013,
        )
        for i in range(items)
    ]


def test_a_golden_prompt_change_is_compared_item_by_item(warehouse_url, resources):
    """Night 1 on prompt g1 (54 of 60 right), night 2 on g2 (39 right: 15 items regressed)."""
    first = DAY - timedelta(days=1)
    _write(warehouse_url, _golden_night(first, "g1", 54) + _golden_night(DAY, "g2", 39))
    (golden_check,) = [
        check
        for check in MART_CHECKS
        if next(iter(check.check_keys)).name == "golden_version_change_effect"
    ]
    _build_marts_read_by([golden_check], resources)
    result = dg.materialize(
        [warehouse_dbt, *MART_CHECKS],
        resources=resources,
        selection=dg.AssetSelection.checks(golden_check),
        tags={"dagster/partition": DAY.isoformat()},
    )
    assert result.success
    with psycopg.connect(warehouse_url) as conn:
        [(kind, subject, statistic, p_value, evidence, examples)] = conn.execute(
            "select kind, subject, statistic, (evidence ->> 'p_value')::float8, evidence,"
            " example_run_ids from raw.alerts"
        ).fetchall()
        example_versions = {
            row[0]
            for row in conn.execute(
                "select prompt_version from raw.eval_runs where run_id = any(%s)", (examples,)
            )
        }
    assert kind == "version_change_effect"
    assert subject == "golden model=tutor-small prompt=g1→g2 suite=intro-python@sv1"
    assert statistic == "mcnemar_exact_p"
    assert evidence["paired"] == {"items": 60, "regressed": 15, "improved": 0}
    assert p_value == pytest.approx(2 * 0.5**15)
    assert (evidence["before"]["passes"], evidence["after"]["passes"]) == (54, 39)
    assert evidence["prompt_diff_against"] == "g1"
    assert example_versions == {"g2"}


def test_the_release_gate_decides_from_launchpad_config_and_blocks_unless_deploy(
    warehouse_url, resources
):
    config = {
        "ops": {
            "release_gate": {
                "config": {
                    "suite": "essay-feedback",
                    "baseline": "tutor-small",
                    "candidate": "tutor-large",
                }
            }
        }
    }
    result = dg.materialize(
        [release_gate], resources=resources, run_config=config, raise_on_error=False
    )
    [materialization] = result.asset_materializations_for_node("release_gate")
    decision = materialization.metadata["decision"].value
    assert decision == "insufficient-data", "five items cannot show non-inferiority"
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "release_gate_passes" and not check.passed and check.blocking
    with psycopg.connect(warehouse_url) as conn:
        stored = conn.execute("select decision, suite from raw.gate_decisions").fetchall()
    assert stored == [(decision, "essay-feedback")]


def test_the_release_gate_with_a_judge_decides_on_the_stored_pairwise_judgments(
    warehouse_url, resources
):
    from test_gate_pairwise import BASE, CAND, JUDGE, SUITE, stored_plan

    _write(warehouse_url, stored_plan())
    gate = {"suite": SUITE, "baseline": BASE, "candidate": CAND, "judge": JUDGE}
    result = dg.materialize(
        [release_gate], resources=resources, run_config={"ops": {"release_gate": {"config": gate}}}
    )
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    with psycopg.connect(warehouse_url) as conn:
        stored = conn.execute("select decision, kind, judge from raw.gate_decisions").fetchall()
    assert stored == [("deploy", "pairwise", f"{JUDGE}@j1")]


def test_one_mart_materialized_with_its_checks_on_a_new_warehouse_runs_only_its_own_tests(
    warehouse_url, resources
):
    """A data engineer materializes one mart and the models it comes from, with their checks.
    A test that ties a model outside that selection to one inside it (stg_raw__review_queue →
    stg_raw__eval_runs) is not run: on a new warehouse its model does not exist yet, and its
    error would skip the mart."""
    _write(warehouse_url, _production_rows(DAY, 40))
    mart = dg.AssetKey(["marts", "fct_stage_daily"])
    models = dg.AssetSelection.assets(mart).upstream() & dg.AssetSelection.assets(warehouse_dbt)

    built = dg.materialize([warehouse_dbt], resources=resources, selection=models)

    assert built.success
    selected = set(models.resolve([warehouse_dbt]))
    checks = _check_results(built)
    assert {e.asset_key for e in checks.values()} <= selected
    assert dg.AssetKey(["staging", "stg_raw__review_queue"]) not in selected
    assert [k for k, e in checks.items() if not e.passed] == []
    assert "staging/stg_raw__eval_runs:unique_stg_raw__eval_runs_run_id" in checks
    with psycopg.connect(warehouse_url) as conn:
        [(calls,)] = conn.execute("select sum(n_calls) from marts.fct_stage_daily").fetchall()
    assert calls == 200


def test_a_dbt_test_that_cannot_run_fails_the_run_named_as_a_test_not_a_model(
    warehouse_url, resources, monkeypatch
):
    """With dbt's eager selection the same one-mart build runs the relationships test from
    stg_raw__review_queue, whose model does not exist on a new warehouse: the test errors. The
    run fails saying a test could not run, not that dbt could not build it."""
    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "eager")
    _write(warehouse_url, _production_rows(DAY, 40))
    mart = dg.AssetKey(["marts", "fct_stage_daily"])
    models = dg.AssetSelection.assets(mart).upstream() & dg.AssetSelection.assets(warehouse_dbt)

    built = dg.materialize(
        [warehouse_dbt], resources=resources, selection=models, raise_on_error=False
    )

    assert not built.success
    [failure] = built.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "dbt tests could not run: test.evalhouse.relationships_stg_raw__review_queue" in message
    assert "could not build" not in message


def test_a_failed_dbt_test_is_one_alert_until_the_test_passes_again(warehouse_url, resources):
    from types import SimpleNamespace

    from orchestration.defs.warehouse.dbt_assets import _record_tests

    key, name = dg.AssetKey(["marts", "fct_stage_daily"]), "not_null_fct_stage_daily_stage"
    failed = dg.AssetCheckResult(
        asset_key=key, check_name=name, passed=False, metadata={"dagster_dbt/failed_row_count": 3}
    )
    context = SimpleNamespace(run=SimpleNamespace(run_id="dagster-run-7"))
    for _ in range(2):  # the same failure twice in a day is one alert
        _record_tests(context, resources["evalhouse"], [failed])
    assert _alerts(warehouse_url) == [
        ("dbt_test", "marts/fct_stage_daily:not_null_fct_stage_daily_stage", "critical")
    ]
    _record_tests(
        context,
        resources["evalhouse"],
        [dg.AssetCheckResult(asset_key=key, check_name=name, passed=True)],
    )
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select status, occurrences from raw.alerts").fetchall() == [
            ("resolved", 1)
        ]


def test_a_dbt_test_whose_sql_errored_is_alerted_as_not_run_not_as_failed(warehouse_url, resources):
    from types import SimpleNamespace

    from orchestration.defs.warehouse.dbt_assets import _record_tests

    key, name = dg.AssetKey(["marts", "fct_stage_daily"]), "not_null_fct_stage_daily_stage"
    errored = dg.AssetCheckResult(
        asset_key=key, check_name=name, passed=False, metadata={"status": "error"}
    )
    context = SimpleNamespace(run=SimpleNamespace(run_id="dagster-run-8"))
    _record_tests(context, resources["evalhouse"], [errored])
    with psycopg.connect(warehouse_url) as conn:
        [(message,)] = conn.execute("select message from raw.alerts").fetchall()
    assert message == (
        "dbt test not_null_fct_stage_daily_stage on marts/fct_stage_daily could not run (dbt error)"
    )
