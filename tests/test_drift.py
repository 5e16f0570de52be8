"""Drift detectors: detection quality measured on simulated nights, and each detector's finding.

The quality tests drive `recent_window_test` — the statistic the nightly check computes — over
thousands of simulated (trial × stage) series at once, with binomial draws and fixed seeds.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from evals.config import DriftConfig, StageBand
from evals.drift import (
    DailyCounts,
    Epoch,
    GoldenNight,
    SeriesKey,
    VersionChange,
    detect_agreement_drift,
    detect_band_violations,
    detect_cost_spike,
    detect_figure_version_changes,
    detect_golden_regressions,
    detect_latency_spike,
    detect_pass_rate_shifts,
    detect_version_changes,
    detect_weekly_version_changes,
    due_version_changes,
    recent_window_test,
    shift_threshold,
    version_change_finding,
)

DRIFT = DriftConfig()
# Five stages of a course, as pass rates of learner submissions: the contract's scenario.
STAGE_RATES = np.array([0.75, 0.8, 0.84, 0.88, 0.92])
QUIET_NIGHTS = 30
WARM_UP = DRIFT.baseline_days + DRIFT.max_window_days
TRIALS = 2000


def _alarms(n: np.ndarray, x: np.ndarray, stages: int) -> np.ndarray:
    """Alarm flags of every series at its last night."""
    test = recent_window_test(n, x, DRIFT)
    return test.testable & (np.abs(test.z) > shift_threshold(DRIFT, stages))


def _false_alarms_per_night(daily_n: int, rates: np.ndarray, seed: int) -> float:
    rng = np.random.default_rng(seed)
    days = WARM_UP + QUIET_NIGHTS
    x = rng.binomial(daily_n, np.broadcast_to(rates[None, :, None], (TRIALS, len(rates), days)))
    n = np.full_like(x, daily_n)
    alarms = sum(
        int(_alarms(n[..., : night + 1], x[..., : night + 1], len(rates)).sum())
        for night in range(WARM_UP, days)
    )
    return alarms / (TRIALS * QUIET_NIGHTS)


def _power(daily_n: int, rate: float, shift: float, nights: int, seed: int) -> float:
    """Share of trials where a stage shifted on the last `nights` nights alarmed on any of them."""
    rng = np.random.default_rng(seed)
    days = WARM_UP + nights
    rates = np.full(days, rate)
    rates[-nights:] += shift
    x = rng.binomial(daily_n, rates, size=(TRIALS, days))
    n = np.full_like(x, daily_n)
    caught = np.zeros(TRIALS, dtype=bool)
    for night in range(WARM_UP, days):
        caught |= _alarms(n[:, : night + 1], x[:, : night + 1], len(STAGE_RATES))
    return float(caught.mean())


@pytest.mark.parametrize("daily_n", [200, 500])
def test_quiet_nights_raise_at_most_one_false_alarm_per_30_nights(daily_n: int) -> None:
    rate = _false_alarms_per_night(daily_n, STAGE_RATES, seed=daily_n)
    print(
        f"\nfalse pass-rate alarms per night, 5 stages, n={daily_n}/day: {rate:.4f}"
        f" (one per {1 / rate:.0f} nights)"
    )
    assert rate <= 1 / 30


def test_false_alarm_rate_holds_near_fifty_percent_too() -> None:
    rate = _false_alarms_per_night(200, np.array([0.45, 0.5, 0.55, 0.6, 0.65]), seed=3)
    print(f"\nfalse alarms per night, stages at 45–65 %: {rate:.4f}")
    assert rate <= 1 / 30


@pytest.mark.parametrize("shift", [-0.10, +0.10])
def test_a_ten_point_shift_is_caught_within_two_nights_at_200_a_day(shift: float) -> None:
    measured = {
        float(rate): _power(200, rate, shift, nights=2, seed=11)
        for rate in STAGE_RATES
        if 0 <= rate + shift <= 1
    }
    print(f"\npower within 2 nights at n=200, shift {shift:+.2f}: {measured}")
    assert min(measured.values()) >= 0.9


@pytest.mark.parametrize("shift", [-0.10, +0.10])
def test_a_ten_point_shift_is_caught_on_its_first_night_at_500_a_day(shift: float) -> None:
    rates = [0.5, 0.6, 0.7, *STAGE_RATES]  # at 500 a day the contract holds at every pass rate
    measured = {
        float(rate): _power(500, rate, shift, nights=1, seed=12)
        for rate in rates
        if 0 <= rate + shift <= 1
    }
    print(f"\npower on night 1 at n=500, shift {shift:+.2f}: {measured}")
    assert min(measured.values()) >= 0.9


def test_near_fifty_percent_two_night_power_is_at_the_binomial_limit() -> None:
    """Documented shortfall: a stage passing ~50 % at 200/day is caught within two nights in
    ~82-88 % of trials; even a perfectly known baseline would give only ~90 % at this
    false-alarm budget (see docs/release-gate.md). Guard against falling below that."""
    measured = {rate: _power(200, rate, -0.10, nights=2, seed=13) for rate in (0.5, 0.6, 0.7)}
    print(f"\npower within 2 nights at n=200 near 50 %: {measured}")
    assert min(measured.values()) >= 0.8


# --- the detector's findings ----------------------------------------------------------------------

START = date(2025, 3, 1)


def _series(rates: list[float], n: int = 200, seed: int = 0) -> DailyCounts:
    rng = np.random.default_rng(seed)
    rows = [
        {"day": START + timedelta(days=i), "n": n, "passes": int(rng.binomial(n, rate))}
        for i, rate in enumerate(rates)
    ]
    return DailyCounts.from_rows(rows)


def test_a_shifted_stage_yields_one_finding_with_its_evidence() -> None:
    series = {
        SeriesKey("loops"): _series([0.8] * 16 + [0.6, 0.6], seed=1),
        SeriesKey("functions"): _series([0.7] * 18, seed=2),
        SeriesKey("classes"): _series([0.85] * 18, seed=3),
    }
    findings = detect_pass_rate_shifts(series, DRIFT)
    assert [f.subject for f in findings] == ["stage=loops"]
    finding = findings[0]
    assert finding.kind == "pass_rate_shift"
    assert finding.severity == "critical"
    assert finding.window_start == START + timedelta(days=16)
    assert finding.window_end == START + timedelta(days=17)
    assert finding.observed < finding.expected_low
    assert finding.evidence["stages_tested"] == 3
    assert finding.evidence["window_n"] == 400
    assert finding.p_value < DRIFT.nightly_false_alarm_rate / 3
    row = finding.with_examples(["6f1c2a52-0000-4000-8000-000000000001"]).alert_row()
    json.dumps(row["evidence"])  # plain JSON types only: it goes into a jsonb column
    assert row["dedupe_key"] == "pass_rate_shift:stage=loops:2025-03-17:2025-03-18"
    assert row["window_end"].isoformat() == "2025-03-19T00:00:00+00:00"
    assert row["example_run_ids"] == ["6f1c2a52-0000-4000-8000-000000000001"]


def test_a_night_with_too_few_rows_or_baseline_is_not_tested() -> None:
    thin = DailyCounts.from_rows(
        [{"day": START + timedelta(days=i), "n": 200, "passes": 160} for i in range(15)]
        + [{"day": START + timedelta(days=15), "n": 10, "passes": 0}]
    )
    assert detect_pass_rate_shifts({SeriesKey("loops"): thin}, DRIFT) == []
    young = _series([0.8, 0.8, 0.2], seed=4)
    assert detect_pass_rate_shifts({SeriesKey("loops"): young}, DRIFT) == []


def test_missing_days_count_as_empty_nights() -> None:
    series = DailyCounts.from_rows(
        [{"day": "2025-03-01", "n": 5, "passes": 4}, {"day": "2025-03-04", "n": 7, "passes": 1}],
        as_of=date(2025, 3, 6),
    )
    assert series.n.tolist() == [5, 0, 0, 7, 0, 0]
    assert series.last_day == date(2025, 3, 6)


def test_band_checks_need_the_whole_interval_outside_the_band() -> None:
    drift = DriftConfig(stage_bands={"intro": StageBand(too_easy_above=0.9, stalling_below=0.4)})
    series = {
        SeriesKey("intro"): _series([0.97] * 7, n=100, seed=5),  # too easy, confidently
        SeriesKey("recursion"): _series([0.2] * 7, n=100, seed=6),  # stalling
        SeriesKey("loops"): _series([0.5] * 2, n=10, seed=7),  # 5/20 near the band edge
    }
    found = {f.subject: f.kind for f in detect_band_violations(series, drift)}
    assert found == {"stage=intro": "pass_rate_too_easy", "stage=recursion": "pass_rate_stalling"}


def test_agreement_below_threshold_and_below_baseline() -> None:
    days = [START + timedelta(days=i) for i in range(21)]
    rows = [{"day": d, "n": 40, "agreements": 36} for d in days[:14]]
    rows += [{"day": d, "n": 40, "agreements": 20} for d in days[14:]]
    series = DailyCounts.from_rows(rows, successes="agreements")
    findings = detect_agreement_drift(
        series, DRIFT, subject="judge=judge", kappa_table=[[30, 10], [10, 10]]
    )
    kinds = {f.kind: f for f in findings}
    assert set(kinds) == {"agreement_below_threshold", "agreement_drop"}
    assert kinds["agreement_drop"].expected_low == pytest.approx(0.9)
    assert kinds["agreement_below_threshold"].evidence["kappa"] == pytest.approx(0.25)


def test_agreement_that_holds_is_quiet() -> None:
    rows = [{"day": START + timedelta(days=i), "n": 10, "agreements": 8} for i in range(21)]
    series = DailyCounts.from_rows(rows, successes="agreements")
    assert detect_agreement_drift(series, DRIFT, subject="judge=judge") == []


def _golden(previous: dict, current: dict, subject: str = "model=tutor-small suite=intro-python"):
    return GoldenNight(subject, previous, current, START)


def test_golden_regression_pairs_items_night_over_night() -> None:
    previous = {f"item-{i}": i < 90 for i in range(100)}
    current = {f"item-{i}": i < 75 for i in range(100)}
    (finding,) = detect_golden_regressions([_golden(previous, current)], DRIFT, current_day=START)
    assert finding.statistic == "mcnemar_exact_p"
    assert finding.evidence["regressed"] == 15
    assert finding.p_value == pytest.approx(2 * 0.5**15)
    assert finding.evidence["holm_level"] == DRIFT.golden_nightly_false_alarm_rate
    assert finding.severity == "critical"  # p far below its level and a 15-point drop
    small_wobble = {f"item-{i}": i < 87 for i in range(100)}
    assert (
        detect_golden_regressions([_golden(previous, small_wobble)], DRIFT, current_day=START) == []
    )


def test_golden_regression_without_common_items_compares_independent_nights() -> None:
    previous = {f"a-{i}": i < 90 for i in range(100)}
    current = {f"b-{i}": i < 60 for i in range(100)}
    (finding,) = detect_golden_regressions([_golden(previous, current)], DRIFT, current_day=START)
    assert finding.statistic == "fisher_exact_p"


def test_the_demo_false_alarm_is_no_longer_raised() -> None:
    """tutor-small on general-qa in the demo of 2026-11-30: 13 items regressed, 8 improved
    (p = 0.38 with the judge's verdicts counted): nothing to report."""
    previous = {f"q-{i}": i < 100 for i in range(118)}
    current = {
        **previous,
        **{f"q-{i}": False for i in range(13)},
        **{f"q-{i}": True for i in range(100, 108)},
    }
    assert detect_golden_regressions([_golden(previous, current)], DRIFT, current_day=START) == []


def test_holm_spends_the_nightly_budget_over_every_pair_tested() -> None:
    previous = {f"item-{i}": i < 90 for i in range(100)}
    regressed = {**previous, **{f"item-{i}": False for i in range(9)}}  # 9 regressed, none improved
    # alone: p = 2 * 0.5**9 = 0.0039 < 0.005, a warning (not 10x below its level, 9-point drop)
    (alone,) = detect_golden_regressions([_golden(previous, regressed)], DRIFT, current_day=START)
    assert (alone.severity, alone.evidence["tests_tonight"]) == ("warning", 1)
    # among five quiet pairs the same evidence is above its Holm level (0.005 / 6)
    quiet = [_golden(previous, previous, f"model=m{i} suite=s") for i in range(5)]
    assert (
        detect_golden_regressions([_golden(previous, regressed), *quiet], DRIFT, current_day=START)
        == []
    )


def test_holm_rejects_step_down_and_stops_at_the_first_failure() -> None:
    from evals.drift.golden import holm_levels

    assert holm_levels([0.001, 0.03, 0.012, 0.5], 0.05) == [0.0125, None, 0.05 / 3, None]
    assert holm_levels([0.02, 0.02], 0.05) == [0.025, 0.05]
    assert holm_levels([0.03, 0.03], 0.05) == [None, None]


GOLDEN_SIZES = [100, 60] * 3  # three models x two suites, items per suite
GOLDEN_NIGHTS = 2000


def test_golden_regression_false_alarms_on_quiet_nights_stay_within_the_budget() -> None:
    """Quiet nights: every item keeps its own chance of being right (Beta(4, 1), mean 0.8), so
    items flip night to night while no model regresses. All pairs of a night together raise
    fewer false alarms per night than `golden_nightly_false_alarm_rate` (figure in
    docs/drift-detection.md)."""
    rng = np.random.default_rng(11)
    chances = [rng.beta(4, 1, size=n) for n in GOLDEN_SIZES]

    def night(chance: np.ndarray) -> dict[str, bool]:
        return {f"i{k}": bool(v) for k, v in enumerate(rng.random(len(chance)) < chance)}

    alarms = 0
    for _ in range(GOLDEN_NIGHTS):
        pairs = [_golden(night(c), night(c), f"pair={j}") for j, c in enumerate(chances)]
        alarms += len(detect_golden_regressions(pairs, DRIFT, current_day=START))
    rate = alarms / GOLDEN_NIGHTS
    assert rate == pytest.approx(0.002)  # 4 alarms in 2,000 nights
    assert rate < DRIFT.golden_nightly_false_alarm_rate


def test_cost_and_latency_spikes_need_ratio_absolute_change_and_evidence() -> None:
    days = [START + timedelta(days=i) for i in range(10)]
    steady = [0.0002, 0.000205, 0.000198, 0.000202, 0.000199, 0.000201, 0.0002, 0.000203, 0.000197]
    cost = dict(zip(days, [*steady, 0.0005], strict=True))
    (spike,) = detect_cost_spike(cost, DRIFT, subject="model=tutor-small", series_watched=7)
    assert spike.kind == "cost_spike"
    assert spike.severity == "critical"  # 2.5× a series that never moves 3 %: overwhelming
    assert spike.evidence["ratio"] == pytest.approx(2.5, rel=1e-3)
    assert spike.evidence["level"] == pytest.approx(DRIFT.spike_false_alarm_rate / 7)
    assert spike.p_value < spike.evidence["level"] / 10
    tiny = dict(zip(days, [0.000001] * 9 + [0.00001], strict=True))
    assert detect_cost_spike(tiny, DRIFT, subject="m") == []
    # 2× its median, but this series swings 4× from day to day: not unusual, no page.
    noisy = dict(zip(days, [0.0001, 0.0004] * 4 + [0.0001, 0.0005], strict=True))
    assert detect_cost_spike(noisy, DRIFT, subject="m") == []
    latency = [(d, 900.0) for d in days[:-1]] + [(days[-1], 3000.0)]
    (slow,) = detect_latency_spike(latency, DRIFT, subject="model=tutor-small")
    assert slow.severity == "critical"
    assert detect_latency_spike(latency[:2], DRIFT, subject="m") == []


# --- comparability epochs and version changes ----------------------------------------------------

OLD = Epoch(
    model="tutor-small", prompt_version="aaaa1111", suite="intro-python", suite_version="v1"
)
NEW = Epoch(
    model="tutor-small", prompt_version="bbbb2222", suite="intro-python", suite_version="v1"
)


STAGES = ("basics", "loops", "functions", "classes", "testing")


def _rollout(
    rates: np.ndarray,
    effect: np.ndarray,
    *,
    daily_n: int,
    before_days: int,
    after_days: int,
    share: float,
    rng: np.random.Generator,
    trials: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Stages on the old prompt for `before_days`, then a rollout to `share` of the traffic that
    moves each stage by `effect` (the rest stays on the old prompt): rows and passes of shape
    [trials, 2 × stages (old epochs, then new), days]."""
    days = before_days + after_days
    new_n = np.zeros((trials, len(rates), days), np.int64)
    new_n[..., before_days:] = round(daily_n * share)
    old_n = daily_n - new_n
    new_rates = np.clip(rates + effect, 0, 1)[None, :, None]
    n = np.concatenate([old_n, new_n], axis=1)
    x = np.concatenate(
        [rng.binomial(old_n, rates[None, :, None]), rng.binomial(new_n, new_rates)], axis=1
    )
    return n, x


def _keyed(n: np.ndarray, x: np.ndarray) -> dict[SeriesKey, DailyCounts]:
    """One trial's [2 × stages, days] arrays as the epoch-keyed series the nightly check builds."""
    keys = [SeriesKey(stage, epoch) for epoch in (OLD, NEW) for stage in STAGES]
    return {key: DailyCounts(START, n[row], x[row]) for row, key in enumerate(keys)}


def _one_rollout(effect: list[float], after_days: int, seed: int) -> dict[SeriesKey, DailyCounts]:
    """One full rollout at 200 rows a day, after `WARM_UP` nights on the old prompt."""
    n, x = _rollout(
        STAGE_RATES,
        np.array(effect),
        daily_n=200,
        before_days=WARM_UP,
        after_days=after_days,
        share=1.0,
        rng=np.random.default_rng(seed),
    )
    return _keyed(n[0], x[0])


def _simulate_rollouts(
    effect: np.ndarray,
    *,
    share: float = 1.0,
    trials: int = 1000,
    nights: int = 10,
    seed: int = 0,
    rates: np.ndarray = STAGE_RATES,
) -> tuple[np.ndarray, float]:
    """Version-change findings per stage over `trials` rollouts at 200 rows a day, and the
    pass-rate-shift alarms per night over the `nights` nights after each rollout."""
    rng = np.random.default_rng(seed)
    n, x = _rollout(
        rates,
        effect,
        daily_n=200,
        before_days=WARM_UP,
        after_days=nights,
        share=share,
        rng=rng,
        trials=trials,
    )
    found = np.zeros(len(STAGES), dtype=int)
    for trial in range(trials):
        series = _keyed(n[trial], x[trial])
        for night in range(WARM_UP, WARM_UP + DRIFT.max_window_days):  # a change is due by then
            for finding in detect_version_changes(series, DRIFT, as_of=START + timedelta(night)):
                found[STAGES.index(finding.evidence["lineage"].removeprefix("stage="))] += 1
    shifts = 0
    for night in range(WARM_UP, WARM_UP + nights):
        test = recent_window_test(n[..., : night + 1], x[..., : night + 1], DRIFT)
        tested = test.testable.sum(-1)
        threshold = np.array([shift_threshold(DRIFT, int(count)) for count in tested])
        shifts += int((test.testable & (np.abs(test.z) > threshold[:, None])).sum())
    return found, shifts / (trials * nights)


def test_a_rollout_that_moves_nothing_rarely_raises_anything() -> None:
    found, shifts_per_night = _simulate_rollouts(np.zeros(len(STAGES)), trials=1000)
    per_rollout = found.sum() / 1000
    print(
        f"\nno-effect rollout: version-change alerts per rollout (5 stages) {per_rollout:.4f}, "
        f"pass-rate-shift alarms per night after it {shifts_per_night:.4f}"
    )
    assert per_rollout <= DRIFT.version_change_false_alarm_rate * 1.5
    assert shifts_per_night <= 1 / 30


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_a_rollout_that_moves_a_stage_ten_points_is_one_version_change_not_a_shift(
    share: float,
) -> None:
    trials = 500
    effect = np.array([0.0, -0.10, 0.0, 0.0, 0.0])
    found, shifts_per_night = _simulate_rollouts(effect, share=share, trials=trials, seed=1)
    power = found[1] / trials
    print(
        f"\n-10 points on loops (0.80), rollout share {share}: version change caught in "
        f"{power:.3f}; other stages {found.sum() - found[1]} alerts; pass-rate-shift alarms "
        f"per night {shifts_per_night:.4f}"
    )
    assert power >= 0.9
    assert shifts_per_night <= 1 / 30


def test_near_fifty_percent_a_ten_point_rollout_effect_is_at_the_binomial_limit() -> None:
    """Documented: 400 rows after against 2,800 before give a 10-point move about 3.7 standard
    errors near 50 %, against a threshold of 2.9 — about 0.8 power."""
    rates = np.array([0.5, 0.5, 0.6, 0.7, 0.8])
    found, _ = _simulate_rollouts(
        np.array([-0.10, 0.0, 0.0, 0.0, 0.0]), trials=500, seed=2, rates=rates
    )
    print(f"\n-10 points on a stage at 0.50, full rollout: caught in {found[0] / 500:.3f}")
    assert found[0] / 500 >= 0.7


def test_a_version_change_finding_names_both_versions_with_intervals() -> None:
    series = _one_rollout([0.0, -0.2, 0.0, 0.0, 0.0], after_days=2, seed=5)
    first = START + timedelta(days=WARM_UP)
    assert detect_version_changes(series, DRIFT, as_of=first) == [], "window not full yet"
    (finding,) = detect_version_changes(series, DRIFT, as_of=first + timedelta(days=1))
    assert finding.kind == "version_change_effect"
    assert finding.subject == (
        "stage=loops model=tutor-small prompt=aaaa1111→bbbb2222 suite=intro-python@v1"
    )
    assert finding.severity == "critical"
    assert (finding.window_start, finding.window_end) == (first, first + timedelta(days=1))
    before, after = finding.evidence["before"], finding.evidence["after"]
    assert (before["prompt_version"], after["prompt_version"]) == ("aaaa1111", "bbbb2222")
    assert after["n"] == 400
    assert before["n"] == 200 * DRIFT.baseline_days
    assert before["ci_low"] < before["rate"] < before["ci_high"]
    assert after["ci_high"] < before["ci_low"]
    assert finding.evidence["changed"] == {"prompt_version": ["aaaa1111", "bbbb2222"]}
    assert finding.evidence["prompt_diff_against"] == "aaaa1111"
    assert "aaaa1111" in finding.message and "bbbb2222" in finding.message
    assert detect_pass_rate_shifts(series, DRIFT, as_of=first + timedelta(days=1)) == []
    json.dumps(finding.alert_row()["evidence"])


def test_a_new_series_is_tested_for_shifts_only_once_its_own_baseline_accumulated() -> None:
    """A rollout's first nights are no shift: the new epoch's baseline starts empty."""
    series = _one_rollout([-0.3] * len(STAGES), after_days=DRIFT.min_baseline_days + 1, seed=6)
    first = START + timedelta(days=WARM_UP)
    for night in range(DRIFT.min_baseline_days + 1):
        assert detect_pass_rate_shifts(series, DRIFT, as_of=first + timedelta(days=night)) == []


def test_paired_items_decide_by_exact_mcnemar() -> None:
    series = _one_rollout([0.0] * len(STAGES), after_days=2, seed=7)
    (change, *_) = due_version_changes(series, DRIFT, START + timedelta(days=WARM_UP + 1))
    regressed = [(True, False)] * 12 + [(False, True)] * 1 + [(True, True)] * 80
    finding = version_change_finding(change, DRIFT, series_watched=5, paired=regressed)
    assert finding is not None
    assert finding.statistic == "mcnemar_exact_p"
    assert finding.p_value == pytest.approx(2 * 14 / 2**13)
    assert finding.evidence["paired"] == {"items": 93, "regressed": 12, "improved": 1}
    balanced = [(True, False)] * 6 + [(False, True)] * 5 + [(True, True)] * 80
    assert version_change_finding(change, DRIFT, series_watched=5, paired=balanced) is None


def _golden_change_alerts(effect: float, *, items: int, trials: int, seed: int) -> float:
    """Share of golden version changes (one model × suite of four watched) that alert. Items of
    varied difficulty (mean accuracy 0.8; Beta(0.8, 0.2), so ~16 % of items change outcome from
    one night to the next with nothing changed — the demo's general-qa saw 21 of ~118) are
    graded the night before and the night after the change."""
    rng = np.random.default_rng(seed)
    change = VersionChange(
        lineage="golden",
        before=OLD,
        after=NEW,
        before_start=START,
        before_end=START,
        first_day=START + timedelta(1),
        test_day=START + timedelta(1),
        before_n=items,
        before_passes=0,
        after_n=items,
        after_passes=0,
    )
    alerts = 0
    for _ in range(trials):
        difficulty = rng.beta(0.8, 0.2, size=items)
        before = rng.random(items) < difficulty
        after = rng.random(items) < np.clip(difficulty + effect, 0, 1)
        counted = replace(change, before_passes=int(before.sum()), after_passes=int(after.sum()))
        pairs = list(zip(before.tolist(), after.tolist(), strict=True))
        alerts += version_change_finding(counted, DRIFT, series_watched=4, paired=pairs) is not None
    return alerts / trials


def test_golden_version_changes_false_alarms_and_power() -> None:
    quiet = _golden_change_alerts(0.0, items=200, trials=2000, seed=8)
    caught = {
        items: _golden_change_alerts(-0.10, items=items, trials=500, seed=9)
        for items in (100, 200, 500)
    }
    print(
        f"\ngolden change with no effect, 200 items: alerts {quiet:.4f} per change and series;"
        f" -10 points caught, by items: {caught}"
    )
    assert quiet <= DRIFT.version_change_false_alarm_rate / 4
    assert caught[500] >= 0.9


def test_a_stage_without_history_has_no_version_change() -> None:
    counts = DailyCounts(START, np.full(3, 200), np.full(3, 150))
    assert due_version_changes({SeriesKey("loops", NEW): counts}, DRIFT, START + timedelta(2)) == []


JUDGE_OLD = Epoch(model="judge-a", prompt_version="j1", suite="intro-python", suite_version="v1")
JUDGE_NEW = replace(JUDGE_OLD, prompt_version="j2")


def _agreement_weeks(new_agree: int) -> dict:
    """Two weeks of judge-a agreement with humans under j1 (180 of 200 each), then a week under
    j2 (`new_agree` of 200); judge-b under one prompt throughout."""
    weeks = [START + timedelta(days=7 * i) for i in range(3)]
    judge_b = Epoch(model="judge-b", prompt_version="b1", suite="intro-python", suite_version="v1")
    return {
        ("judge=judge-a suite=intro-python", JUDGE_OLD): {
            weeks[0]: (200, 180),
            weeks[1]: (200, 180),
        },
        ("judge=judge-a suite=intro-python", JUDGE_NEW): {weeks[2]: (200, new_agree)},
        ("judge=judge-b suite=intro-python", judge_b): {week: (200, 150) for week in weeks},
    }


def test_a_judge_prompt_change_that_lowers_agreement_is_one_version_change_event() -> None:
    weeks = _agreement_weeks(new_agree=120)
    week_end = START + timedelta(days=14 + 6)
    assert (
        detect_weekly_version_changes(weeks, DRIFT, week_end - timedelta(days=1), measure="m") == []
    )
    (finding,) = detect_weekly_version_changes(
        weeks, DRIFT, week_end, measure="agreement with humans"
    )
    assert finding.kind == "version_change_effect"
    assert finding.subject == (
        "judge=judge-a suite=intro-python model=judge-a prompt=j1→j2 suite=intro-python@v1"
    )
    before, after = finding.evidence["before"], finding.evidence["after"]
    assert (before["n"], before["passes"], after["n"], after["passes"]) == (400, 360, 200, 120)
    assert finding.evidence["changed"] == {"prompt_version": ["j1", "j2"]}
    assert finding.evidence["level"] == pytest.approx(DRIFT.version_change_false_alarm_rate / 2)
    assert finding.message.startswith(
        "Version change on judge=judge-a suite=intro-python model=judge-a prompt=j1→j2"
        " suite=intro-python@v1: agreement with humans 90.0% ["
    )
    assert (
        detect_weekly_version_changes(weeks, DRIFT, week_end + timedelta(days=7), measure="m") == []
    )
    assert detect_weekly_version_changes(_agreement_weeks(178), DRIFT, week_end, measure="m") == []


def _cost_nights(new_cost: float) -> dict:
    """Ten nights of grader cost per call under prompt aaaa1111 (about 0.0002 USD), then the
    first night under bbbb2222 at `new_cost`; tutor-large under one prompt throughout."""
    days = [START + timedelta(days=i) for i in range(11)]
    steady = [
        0.0002,
        0.000205,
        0.000198,
        0.000202,
        0.000199,
        0.000201,
        0.0002,
        0.000203,
        0.000197,
        0.000201,
    ]
    lineage = "cost source=production role=grader"
    large = replace(OLD, model="tutor-large")
    return {
        (lineage, OLD): dict(zip(days[:-1], steady, strict=True)),
        (lineage, NEW): {days[-1]: new_cost},
        (lineage, large): {day: 0.0009 for day in days},
    }


def test_a_prompt_change_that_doubles_cost_is_one_version_change_event() -> None:
    night = START + timedelta(days=10)
    limits = {"ratio": DRIFT.cost_spike_ratio, "min_abs": DRIFT.cost_spike_min_abs_usd}
    (finding,) = detect_figure_version_changes(
        _cost_nights(0.0004), DRIFT, night, measure="cost per call", unit="USD/call", **limits
    )
    assert finding.kind == "version_change_effect"
    assert finding.subject == (
        "cost source=production role=grader"
        " model=tutor-small prompt=aaaa1111→bbbb2222 suite=intro-python@v1"
    )
    assert finding.evidence["before"]["model"] == "tutor-small"  # not tutor-large's series
    assert finding.evidence["before"]["median"] == pytest.approx(0.0002005)
    assert finding.evidence["ratio"] == pytest.approx(0.0004 / 0.0002005)
    assert finding.evidence["prompt_diff_against"] == "aaaa1111"
    assert finding.severity == "critical"
    (cheaper,) = detect_figure_version_changes(
        _cost_nights(0.0001), DRIFT, night, measure="cost per call", unit="USD/call", **limits
    )
    assert cheaper.observed == 0.0001
    for quiet in (0.000202, 0.00021):  # unchanged, and 5 % more: no event
        assert (
            detect_figure_version_changes(
                _cost_nights(quiet),
                DRIFT,
                night,
                measure="cost per call",
                unit="USD/call",
                **limits,
            )
            == []
        )
    later = night + timedelta(days=1)
    assert (
        detect_figure_version_changes(
            _cost_nights(0.0004), DRIFT, later, measure="cost per call", unit="USD/call", **limits
        )
        == []
    ), "tested once, on the new version's first night"


def test_a_model_change_that_slows_latency_is_one_version_change_event() -> None:
    days = [START + timedelta(days=i) for i in range(8)]
    lineage = "latency source=production role=grader suite=intro-python"
    figures = {
        (lineage, OLD): {day: 900.0 + 10 * (i % 3) for i, day in enumerate(days[:-1])},
        (lineage, replace(OLD, model="tutor-xl")): {days[-1]: 2400.0},
    }
    limits = {"ratio": DRIFT.latency_spike_ratio, "min_abs": DRIFT.latency_spike_min_abs_ms}
    (finding,) = detect_figure_version_changes(
        figures, DRIFT, days[-1], measure="latency p95", unit="ms", **limits
    )
    assert finding.evidence["changed"] == {"model": ["tutor-small", "tutor-xl"]}
    assert "prompt_diff_against" not in finding.evidence
    assert finding.message.startswith(
        f"Version change on {lineage} model=tutor-small→tutor-xl prompt=aaaa1111"
        " suite=intro-python@v1: latency p95 2400 ms on"
    )
