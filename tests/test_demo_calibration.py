"""The demo over 30 start dates: its injected drift caught every time, and no more false alerts
than the calibration predicts (issue 11, item 6). Replayed fast (tests/demo_replay.py); the
figures of the last run are in docs/drift-detection.md, "The demo over 30 start dates".

Twice: as `evalhouse demo` runs (the config's simulator seed, so every start date draws the same
sequence of stages and items and only the verdicts differ: the 30 runs are not independent), and
with a traffic seed of its own per start date (30 independent demos, what the prediction counts).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from conftest import REPO_ROOT
from demo_replay import DemoOutcome, demo_alerts, replay_demo
from psycopg.rows import dict_row
from scipy import stats as _sp
from test_calibration import DEMO_STAGES, demo_false_alerts_predicted

from evals.cli.demo import DAYS, DRIFT_DAY, DRIFT_SHIFT, DRIFT_STAGE
from evals.config import load_config
from evals.dbt import dbt_env, run_dbt
from evals.marts import load_query
from evals.quality import REQUIRED_COLUMNS, validate_day
from evals.traffic import Drift, simulate_traffic
from orchestration.defs.drift import checks

START_DATES = 30
FIRST_START = date(2025, 1, 6)
STEP_DAYS = 37  # every weekday and season: a start date 37 days after the previous one


def _demos(config, seeds: list[int | None]) -> tuple[list[DemoOutcome], Counter]:
    """Each start date's alerts, and the rows and passes per stage before the drift."""
    outcomes, before_drift = [], Counter()
    for index, seed in enumerate(seeds):
        start = FIRST_START + timedelta(days=STEP_DAYS * index)
        marts = replay_demo(config, start, seed=seed)
        for row in marts.stage:
            if row["day"] < start + timedelta(days=DRIFT_DAY - 1):
                before_drift[(row["stage"], "n")] += row["n"]
                before_drift[(row["stage"], "passes")] += row["passes"]
        outcomes.append(demo_alerts(config, marts))
    return outcomes, before_drift


def _report(label: str, outcomes: list[DemoOutcome], ceiling: int, predicted: float) -> int:
    caught = [(o.caught_on - o.drift_night).days + 1 for o in outcomes if o.caught_on]
    false = [
        (kind, subject, (night - o.start).days + 1)
        for o in outcomes
        for night, kind, subject in o.false_alerts
    ]
    print(
        f"\n{label}: drift caught in {len(caught)} of {len(outcomes)} demos, on drift night "
        f"{dict(sorted(Counter(caught).items()))}; {len(false)} false alerts (predicted "
        f"{predicted:.1f}, 99 % ceiling {ceiling}): {sorted(false)}"
    )
    assert len(caught) == len(outcomes)
    return len(false)


@pytest.mark.calibration
@pytest.mark.timeout(1500)
def test_the_demo_over_30_start_dates_catches_its_drift_and_raises_the_predicted_false_alerts():
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    predicted = START_DATES * demo_false_alerts_predicted(trials=4000, seed=21)
    ceiling = int(_sp.poisson.ppf(0.99, predicted))

    as_run, before_drift = _demos(config, [None] * START_DATES)
    # The replay is still the demo the calibration's volumes and pass rates describe.
    nights = START_DATES * (DRIFT_DAY - 1)
    for stage, (volume, rate) in DEMO_STAGES.items():
        n = before_drift[(stage, "n")]
        assert n / nights == pytest.approx(volume, rel=0.05), stage
        assert before_drift[(stage, "passes")] / n == pytest.approx(rate, abs=0.02), stage
    same_seed = _report("the demo's seed", as_run, ceiling, predicted)

    independent, _ = _demos(config, [1000 + index for index in range(START_DATES)])
    assert _report("a seed per start date", independent, ceiling, predicted) <= ceiling
    assert same_seed <= ceiling


@pytest.mark.calibration
@pytest.mark.timeout(900)
def test_the_replay_reads_what_the_checks_read_from_the_marts_of_the_same_traffic(
    warehouse_url, tmp_path
):
    """The replay is faithful: the same days of demo traffic, once through LiteLLM, capture and
    dbt and read with the checks' own queries, once replayed, give the same check inputs."""
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    start, days, per_day = date(2025, 3, 3), 12, 60
    simulate_traffic(
        config,
        days=days,
        per_day=per_day,
        start=start,
        drift=[Drift(DRIFT_STAGE, DRIFT_SHIFT, DRIFT_DAY)],
    )
    marts = "fct_stage_daily fct_trend_daily fct_model_cost_daily fct_verdict_agreement_weekly"
    env = dbt_env(url=warehouse_url, config=config, target_path=tmp_path / "dbt")
    assert run_dbt(["run", "--select", *(f"+{m}" for m in marts.split())], env=env).success
    with psycopg.connect(warehouse_url) as conn:

        def read(query: str) -> list[dict]:
            sql = load_query(checks.QUERIES / f"{query}.sql")
            return conn.cursor(row_factory=dict_row).execute(sql).fetchall()

        stage, cost = read("stage_daily"), read("cost_daily")
        latency, agreement = read("latency_daily"), read("agreement_weekly")
    replay = replay_demo(config, start, per_day=per_day, days=days)

    def keyed(rows, *columns):
        return sorted(tuple(row[c] for c in columns) for row in rows)

    epoch = ("model", "prompt_version", "suite", "suite_version")
    assert keyed(stage, "day", "stage", *epoch, "n", "passes") == keyed(
        replay.stage, "day", "stage", *epoch, "n", "passes"
    )
    assert keyed(agreement, "day", *epoch, "n", "agree") == keyed(
        replay.agreement, "day", *epoch, "n", "agree"
    )
    assert keyed(cost, "day", "model", "prompt_version", "source", "role") == keyed(
        replay.cost, "day", "model", "prompt_version", "source", "role"
    )
    assert keyed(latency, "day", *epoch, "source", "role") == keyed(
        replay.latency, "day", *epoch, "source", "role"
    )
    for mart, replayed, value in (
        (cost, replay.cost, "cost_per_call"),
        (latency, replay.latency, "latency_p95_ms"),
    ):
        for got, want in zip(
            sorted(mart, key=lambda r: (r["day"], r["prompt_version"])),
            sorted(replayed, key=lambda r: (r["day"], r["prompt_version"])),
            strict=True,
        ):
            assert float(got[value]) == pytest.approx(want[value], rel=1e-6), (value, got["day"])


def _run_log_days(config, rows: list[dict]) -> dict[date, pd.DataFrame]:
    """Each replayed night's production rows with the columns the quality check loads
    (`evals.quality.load_day`); what the replay does not keep is what capture writes alike on
    every row of the demo (source, role, model, one attempt, no sample weight)."""
    frame = pd.DataFrame(rows).assign(
        idempotency_key=lambda f: f["run_id"].astype(str),
        source="production",
        role="grader",
        model=config.default_model,
        started_at=lambda f: [datetime(d.year, d.month, d.day, 12, tzinfo=UTC) for d in f["day"]],
        sample_weight=None,
        attempts=1,
    )
    return {day: group[list(REQUIRED_COLUMNS)] for day, group in frame.groupby("day")}


@pytest.mark.calibration
@pytest.mark.timeout(1500)
def test_the_run_log_quality_suite_never_fails_a_clean_demo_night_over_30_start_dates():
    """The data-quality alert's false-alarm rate: the Great Expectations suite on every
    production night of 30 independent demos (nothing broken in the data; the pass-rate drift
    the demo injects is no quality fault). Its share expectations are the ones that could fail
    by chance; test_calibration.py bounds that chance exactly."""
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    nights, failing = 0, []
    for index in range(START_DATES):
        start = FIRST_START + timedelta(days=STEP_DAYS * index)
        marts = replay_demo(config, start, seed=1000 + index)
        for day, frame in _run_log_days(config, marts.rows).items():
            report = validate_day(frame, day, config.drift)
            nights += 1
            if not report.passed:
                failing.append((day, report.describe_failures()))
    print(f"\nrun_log_quality on clean demo nights: {len(failing)} of {nights} failed {failing}")
    assert nights == START_DATES * DAYS
    assert failing == []
