"""Every drift detector calibrated: false alerts per quiet night across all the series it watches,
at the demo's volumes, and power for a stated effect (docs/drift-detection.md, "Calibration").

A false alert is an alert *opened* on a quiet night (a finding on a subject already firing renews
its alert; evals.alerts), counted over every series the check watches. Fixed seeds; the fast tier
runs in seconds, the `slow` tier repeats each measurement with ten times the trials.
Exact binomial sums replace simulation where the detector only sees one pooled count (bands).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import pytest
from scipy import stats as _sp

from evals.config import DriftConfig, SimulatorConfig
from evals.drift import (
    DailyCounts,
    Epoch,
    SeriesKey,
    detect_agreement_drift,
    detect_band_violations,
    detect_cost_spike,
    detect_figure_version_changes,
    detect_latency_spike,
    detect_weekly_version_changes,
    evidence_severity,
    recent_window_test,
    shift_threshold,
)

DRIFT = DriftConfig()
ONE_PER_30_NIGHTS = 1 / 30
START = date(2025, 1, 6)
# The demo's production stages: rows a day and pass rate, as tests/demo_replay.py measures them
# (`evalhouse demo`: 600 submissions a day, a 0.85 funnel, tutor-small grading at 0.82 accuracy);
# test_demo_calibration.py asserts that the replay still gives these.
DEMO_STAGES = {
    "variables": (144, 0.47),
    "conditionals": (118, 0.41),
    "loops": (106, 0.43),
    "functions": (89, 0.37),
    "data-structures": (73, 0.40),
    "files-errors": (61, 0.45),
}
# Human reviews of production calls: ~240 runs with a consensus a week, the grader agreeing ~78 %.
DEMO_REVIEWS_PER_WEEK, DEMO_AGREEMENT = 240, 0.78
# Every model × source × role series the cost and latency checks watch in the demo, with its
# calls a night: production grading, the reference judge's sample re-grades (20 per stage), the
# golden runs (87 intro-python items graded, 59 general-qa questions answered and judged).
SPIKE_SERIES = {
    "production tutor-small grader": 600,
    "production_sample judge judge": 120,
    "golden tutor-small grader": 87,
    "golden tutor-large grader": 87,
    "golden tutor-small candidate": 59,
    "golden tutor-large candidate": 59,
    "golden judge judge": 118,
}
LATENCY_MEDIAN_MS, LATENCY_SIGMA = 900.0, 0.35  # the simulator's defaults (evals.config)
COST_PER_CALL_USD, COST_SIGMA = 81.5e-6, 0.15  # the replayed demo: 0.6 % daily CV at 600 calls
GOLDEN_DOCUMENTED = 0.0020
"""Golden regression, false alerts per quiet night, six model × suite pairs, Holm at 0.005: the
golden detector's own measurement (docs/drift-detection.md, "The golden regression detector")."""


@dataclass(frozen=True)
class Rate:
    """A measured false-alert rate per quiet night and the budget share it is held to."""

    kind: str
    per_night: float
    budget: float


# --- the severity rule ------------------------------------------------------------------------


def test_severity_follows_the_evidence_relative_to_the_level_it_was_tested_at() -> None:
    assert evidence_severity(0.02, 0.01) == "info"
    assert evidence_severity(0.005, 0.01) == "warning"
    assert evidence_severity(0.001, 0.01) == "critical"
    # a detector sized for an effect: strong evidence of a small move is only a warning
    assert evidence_severity(1e-9, 0.01, effect=-0.04, critical_effect=0.10) == "warning"
    assert evidence_severity(1e-9, 0.01, effect=-0.0999999999, critical_effect=0.10) == "critical"


def test_a_band_finding_is_as_severe_as_its_evidence_whichever_side_it_is_on() -> None:
    def one_day(passes: int) -> DailyCounts:
        return DailyCounts(START, np.array([1000]), np.array([passes]))

    def severity(passes: int) -> tuple[str, str]:
        (finding,) = detect_band_violations({SeriesKey("loops"): one_day(passes)}, DRIFT)
        return finding.kind, finding.severity

    # one stage watched: level 0.001; 30 % of 1,000 against 35 %: z = −3.3, p = 0.00045
    assert severity(300) == ("pass_rate_stalling", "warning")
    assert severity(250) == ("pass_rate_stalling", "critical")
    assert severity(990) == ("pass_rate_too_easy", "critical")  # once a warning by its kind


# --- stage shift ------------------------------------------------------------------------------


def _demo_days(
    trials: int,
    days: int,
    rng: np.random.Generator,
    shift: dict[str, tuple[float, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and passes [trial, stage, day] at the demo's volumes; the day's traffic varies by
    ±15 % for all stages at once, as in evals.traffic. `shift`: stage → (points, from day)."""
    volume = np.array([v for v, _ in DEMO_STAGES.values()], dtype=float)
    rate = np.broadcast_to(
        np.array([r for _, r in DEMO_STAGES.values()])[None, :, None],
        (trials, len(DEMO_STAGES), days),
    ).copy()
    for stage, (points, first) in (shift or {}).items():
        rate[:, list(DEMO_STAGES).index(stage), first:] += points
    factor = rng.uniform(0.85, 1.15, size=(trials, 1, days))
    n = np.rint(volume[None, :, None] * factor).astype(np.int64)
    return n, rng.binomial(n, rate)


def _shift_alarms(n: np.ndarray, x: np.ndarray, night: int) -> np.ndarray:
    """The detector's decision per trial and stage on `night` (index into the days)."""
    test = recent_window_test(n[..., : night + 1], x[..., : night + 1], DRIFT)
    tested = test.testable.sum(-1, keepdims=True)
    threshold = np.vectorize(lambda k: shift_threshold(DRIFT, int(k)))(tested)
    return test.testable & (np.abs(test.z) > threshold)


def shift_false_alerts(trials: int, seed: int, nights: int = 30) -> tuple[float, float]:
    """(alerts opened, findings) per quiet night, all six demo stages, after a full baseline."""
    warm_up = DRIFT.baseline_days + DRIFT.max_window_days
    n, x = _demo_days(trials, warm_up + nights, np.random.default_rng(seed))
    previous = _shift_alarms(n, x, warm_up - 1)
    opened = found = 0
    for night in range(warm_up, warm_up + nights):
        alarms = _shift_alarms(n, x, night)
        opened += int((alarms & ~previous).sum())
        found += int(alarms.sum())
        previous = alarms
    return opened / (trials * nights), found / (trials * nights)


def shift_power(stage: str, points: float, nights: int, trials: int, seed: int) -> float:
    """Share of trials where `stage`, moved by `points`, alarmed within `nights` nights."""
    warm_up = DRIFT.baseline_days + DRIFT.max_window_days
    n, x = _demo_days(
        trials, warm_up + nights, np.random.default_rng(seed), shift={stage: (points, warm_up)}
    )
    row = list(DEMO_STAGES).index(stage)
    caught = np.zeros(trials, dtype=bool)
    for night in range(warm_up, warm_up + nights):
        caught |= _shift_alarms(n, x, night)[:, row]
    return float(caught.mean())


# --- bands: exact -----------------------------------------------------------------------------


def band_alarm_probability(stage: str, rows: int, rate: float) -> float:
    """P(the band detector flags `stage` | a pooled window of `rows` at true `rate`), summed
    exactly over every count the window can hold, the other demo stages watched too."""
    others = {
        SeriesKey(name): DailyCounts(START, np.zeros(1, np.int64), np.zeros(1, np.int64))
        for name in DEMO_STAGES
        if name != stage
    }
    counts = np.arange(rows + 1)
    flagged = np.array(
        [
            bool(
                detect_band_violations(
                    {
                        **others,
                        SeriesKey(stage): DailyCounts(START, np.array([rows]), np.array([x])),
                    },
                    DRIFT,
                )
            )
            for x in counts
        ]
    )
    return float(_sp.binom.pmf(counts, rows, rate)[flagged].sum())


def band_false_alerts() -> float:
    """Expected band findings per quiet night over the demo's six stages (7-day windows)."""
    return sum(
        band_alarm_probability(stage, volume * DRIFT.band_window_days, rate)
        for stage, (volume, rate) in DEMO_STAGES.items()
    )


# --- agreement: simulated through the detector -------------------------------------------------


def _weekly(points: list[tuple[int, int]]) -> DailyCounts:
    """Weekly points on their Mondays, as the check builds the series (zeros between)."""
    days = 7 * len(points)
    n, x = np.zeros(days, np.int64), np.zeros(days, np.int64)
    for week, (rows, agree) in enumerate(points):
        n[7 * week], x[7 * week] = rows, agree
    return DailyCounts(START, n, x)


def agreement_findings(trials: int, seed: int, last_week: float = DEMO_AGREEMENT) -> dict:
    """Share of weeks each agreement kind fires on its newest week (three weeks of history at
    the demo's reviews and agreement; the newest at `last_week`)."""
    rng = np.random.default_rng(seed)
    rows = rng.poisson(DEMO_REVIEWS_PER_WEEK, size=(trials, 4))
    rates = np.array([DEMO_AGREEMENT] * 3 + [last_week])
    agree = rng.binomial(rows, rates)
    fired = {"agreement_below_threshold": 0, "agreement_drop": 0}
    for trial in range(trials):
        series = _weekly(list(zip(rows[trial], agree[trial], strict=True)))
        for finding in detect_agreement_drift(
            series, DRIFT, subject="judge=tutor-small", as_of=START + timedelta(days=21)
        ):
            fired[finding.kind] += 1
    return {kind: count / trials for kind, count in fired.items()}


# --- spikes: simulated through the detector ----------------------------------------------------


def _latency_p95(
    rng: np.random.Generator, calls: int, nights: int, scale: float = 1.0
) -> np.ndarray:
    draws = LATENCY_MEDIAN_MS * np.exp(LATENCY_SIGMA * rng.standard_normal((nights, calls)))
    return np.percentile(draws * scale, 95, axis=1)


def _cost_per_call(
    rng: np.random.Generator, calls: int, nights: int, scale: float = 1.0, golden: bool = False
) -> np.ndarray:
    """A golden series grades the same items every night: its cost per call does not move."""
    if golden:
        return np.full(nights, COST_PER_CALL_USD * scale)
    draws = COST_PER_CALL_USD * np.exp(COST_SIGMA * rng.standard_normal((nights, calls)))
    return draws.mean(axis=1) * scale


def spike_findings(kind: str, trials: int, seed: int, scale: float = 1.0) -> tuple[float, float]:
    """Findings per night (on the first series, over every demo series) after a quiet history
    of `baseline_days` nights; `scale` multiplies the first series' newest night (production)."""
    rng = np.random.default_rng(seed)
    detector = detect_latency_spike if kind == "latency_spike" else detect_cost_spike
    days = [START + timedelta(days=i) for i in range(DRIFT.baseline_days + 1)]
    first = found = 0
    for _ in range(trials):
        for position, (name, calls) in enumerate(SPIKE_SERIES.items()):
            last = scale if position == 0 else 1.0
            if kind == "latency_spike":
                values = np.append(
                    _latency_p95(rng, calls, len(days) - 1), _latency_p95(rng, calls, 1, last)
                )
            else:
                golden = name.startswith("golden")
                values = np.append(
                    _cost_per_call(rng, calls, len(days) - 1, golden=golden),
                    _cost_per_call(rng, calls, 1, last, golden=golden),
                )
            findings = detector(
                dict(zip(days, values, strict=True)),
                DRIFT,
                subject=name,
                series_watched=len(SPIKE_SERIES),
            )
            found += len(findings)
            first += len(findings) if position == 0 else 0
    return first / trials, found / trials


# --- the measurements, one place for the fast and the slow tier -------------------------------


def measured_rates(scale: int) -> list[Rate]:
    """False alerts per quiet night of every kind this branch owns, at `scale` × the fast
    tier's trials; agreement findings repeat all week on one weekly point (one incident)."""
    opened, found = shift_false_alerts(trials=1000 * scale, seed=1)
    print(f"\npass_rate_shift findings per quiet night (renewals included): {found:.4f}")
    agreement = agreement_findings(trials=2000 * scale, seed=2)
    return [
        Rate("pass_rate_shift", opened, DRIFT.nightly_false_alarm_rate),
        Rate(
            "pass_rate_too_easy + pass_rate_stalling",
            band_false_alerts(),
            DRIFT.band_false_alarm_rate,
        ),
        Rate(
            "agreement_below_threshold + agreement_drop",
            sum(agreement.values()) / 7,
            DRIFT.agreement_false_alarm_rate,
        ),
        Rate(
            "cost_spike",
            spike_findings("cost_spike", 300 * scale, seed=3)[1],
            DRIFT.spike_false_alarm_rate,
        ),
        Rate(
            "latency_spike",
            spike_findings("latency_spike", 300 * scale, seed=4)[1],
            DRIFT.spike_false_alarm_rate,
        ),
    ]


def _assert_budget(rates: list[Rate]) -> None:
    for rate in rates:
        print(
            f"\n{rate.kind}: {rate.per_night:.2e} false alerts per quiet night "
            f"(budget {rate.budget})"
        )
        assert rate.per_night <= rate.budget, rate
    total = sum(rate.per_night for rate in rates) + GOLDEN_DOCUMENTED
    print(
        f"\nall kinds with golden regression ({GOLDEN_DOCUMENTED}): {total:.5f} per night, "
        f"one false alert per {1 / total:.0f} quiet nights"
    )
    assert total <= ONE_PER_30_NIGHTS


def test_every_kind_stays_within_its_share_and_all_together_under_one_per_30_nights() -> None:
    _assert_budget(measured_rates(scale=1))


@pytest.mark.calibration
def test_every_kind_stays_within_its_share_with_ten_times_the_trials() -> None:
    _assert_budget(measured_rates(scale=10))


# --- worst cases and power --------------------------------------------------------------------


def test_bands_hold_their_budget_even_with_every_stage_sitting_on_its_bound() -> None:
    """The hardest quiet case: every stage exactly at `stalling_below`, at the demo's smallest
    and largest volumes (0.00089 and 0.00085 per night)."""
    bound = DRIFT.default_band.stalling_below
    for volume in (61, 144):
        worst = len(DEMO_STAGES) * band_alarm_probability(
            "files-errors", volume * DRIFT.band_window_days, bound
        )
        print(f"\nband findings per night, six stages on the bound at {volume}/day: {worst:.5f}")
        assert worst <= DRIFT.band_false_alarm_rate


def test_a_stage_ten_points_under_its_stalling_bound_is_found_on_a_full_window() -> None:
    """10 points under: 0.81 at the smallest stage's 61 rows a day, 0.9996 at 144; 15 points
    under: 0.9997 at 61."""
    bound = DRIFT.default_band.stalling_below
    power = {
        (stage, points): band_alarm_probability(
            stage, DEMO_STAGES[stage][0] * DRIFT.band_window_days, bound - points
        )
        for stage in ("files-errors", "variables")
        for points in (0.10, 0.15)
    }
    print(f"\nstalling stage found on a 7-night window: {power}")
    assert power[("files-errors", 0.10)] >= 0.80
    assert power[("variables", 0.10)] >= 0.999
    assert power[("files-errors", 0.15)] >= 0.999


def test_the_demos_drift_is_caught_within_three_nights_and_ten_points_within_a_week() -> None:
    """Measured (1,000 trials): the demo's drift (+0.4 of loops' fails, ≈ +23 points) within
    1 / 2 / 3 nights 0.21 / 0.89 / 1.000 (the window pools ~4 nights at 106 rows a day); a
    10-point drop within 7 nights 0.97 (variables, 144/day) … 0.76 (files-errors, 61/day)."""
    demo = shift_power("loops", 0.4 * (1 - DEMO_STAGES["loops"][1]), nights=3, trials=1000, seed=5)
    largest = shift_power("variables", -0.10, nights=7, trials=1000, seed=6)
    smallest = shift_power("files-errors", -0.10, nights=7, trials=1000, seed=6)
    print(
        f"\nshift power: demo drift within 3 nights {demo:.3f}; −10 points within 7 nights: "
        f"variables {largest:.3f}, files-errors {smallest:.3f}"
    )
    assert demo >= 0.99
    assert largest >= 0.95
    assert smallest >= 0.74


def test_agreement_dropping_twenty_points_is_found_in_its_first_week() -> None:
    """78 % → 58 %: agreement_drop 0.98, agreement_below_threshold 0.75; 78 % → 63 %: 0.80 and
    0.20 (one week of ~240 reviews cannot place 63 % below 70 % at this budget)."""
    found = agreement_findings(trials=1000, seed=8, last_week=DEMO_AGREEMENT - 0.20)
    print(f"\nagreement 78 % → 58 % in one week of ~240 reviews: {found}")
    assert found["agreement_drop"] >= 0.95
    assert found["agreement_below_threshold"] >= 0.7


@pytest.mark.parametrize("kind", ["cost_spike", "latency_spike"])
def test_a_doubling_is_caught_the_night_it_happens(kind: str) -> None:
    power, _ = spike_findings(kind, trials=300, seed=9, scale=2.0)
    print(f"\n{kind}: production doubles tonight, caught that night: {power:.3f}")
    assert power == 1.0


def demo_false_alerts_predicted(trials: int, seed: int, days: int = 14) -> float:
    """Expected false stage alerts in one 14-night demo (the stages are its only series with a
    measurable false-alert rate; the others measure 0 above), the demo's drift on loops from
    night 11 counted as true."""
    drift_from = 10
    n, x = _demo_days(
        trials,
        days,
        np.random.default_rng(seed),
        shift={"loops": (0.4 * (1 - DEMO_STAGES["loops"][1]), drift_from)},
    )
    loops = list(DEMO_STAGES).index("loops")
    previous = np.zeros(n.shape[:2], dtype=bool)
    false = 0
    for night in range(days):
        alarms = _shift_alarms(n, x, night)
        opened = alarms & ~previous
        if night >= drift_from:
            opened[:, loops] = False
        false += int(opened.sum())
        previous = alarms
    return false / trials


def thin_latency_findings(nights: int, seed: int) -> float:
    """Latency findings per quiet night of one series of 10 calls a night."""
    rng = np.random.default_rng(seed)
    days = [START + timedelta(days=i) for i in range(DRIFT.baseline_days + 1)]
    found = sum(
        len(
            detect_latency_spike(
                dict(zip(days, _latency_p95(rng, 10, len(days)), strict=True)),
                DRIFT,
                subject="thin",
            )
        )
        for _ in range(nights)
    )
    print(f"\nthin latency series (10 calls a night): {found / nights:.4f} per quiet night")
    return found / nights


def test_a_thin_latency_series_stays_quiet_where_the_ratio_alone_paged() -> None:
    """10 calls a night: p95 ≥ 1.5× its median by noise on 1.7 % of quiet nights (the ratio
    rule alone); with the prediction bound, 0.0010 here (2,000 nights)."""
    assert thin_latency_findings(nights=2000, seed=10) <= 4 * DRIFT.spike_false_alarm_rate


@pytest.mark.calibration
def test_a_thin_latency_series_is_near_its_level_over_many_nights() -> None:
    """0.0007 per night over 10,000 nights against a level of 0.0005: a p95 of 10 calls is
    skewed on the log scale, so the t bound is a little loose there."""
    assert thin_latency_findings(nights=10000, seed=11) <= 2 * DRIFT.spike_false_alarm_rate


# What the run_log_quality check validates each night in the demo, (rows, rows that can be a
# parse error: graded and judging replies): the production day, and each model's golden batch
# (87 intro-python grader replies, 59 general-qa answers and the judge's 59 replies on them).
QUALITY_SUBJECTS = {
    "production_runs": (600, 600),
    "golden_runs/tutor-small": (87 + 59 + 59, 87 + 59),
    "golden_runs/tutor-large": (87 + 59 + 59, 87 + 59),
}


def quality_false_alarms(rows: int, graded: int, sim: SimulatorConfig) -> float:
    """P(a clean night fails the suite's share expectations), exact binomial: more than
    `max_error_rate` of the rows failed (a fault on an attempt) or more than
    `max_parse_error_rate` of them parse errors (a malformed reply). The suite's other
    expectations (schema, nulls, ranges) are properties of the writer, not of chance."""
    fault = sim.error_rate + sim.rate_limit_rate + sim.timeout_rate
    failed = _sp.binom.sf(math.floor(DRIFT.max_error_rate * rows), rows, fault)
    parse = _sp.binom.sf(math.floor(DRIFT.max_parse_error_rate * rows), graded, sim.malformed_rate)
    return float(failed + parse)


def test_the_run_log_quality_suite_almost_never_fails_a_clean_night() -> None:
    sim = SimulatorConfig()
    per_night = {s: quality_false_alarms(*size, sim) for s, size in QUALITY_SUBJECTS.items()}
    grader_suite_only = quality_false_alarms(87, 87, sim)
    print(
        f"\nrun_log_quality false alarms per clean night: {per_night}, all together"
        f" {sum(per_night.values()):.2g}; a batch of 87 grader replies alone {grader_suite_only:.2g}"
    )
    assert sum(per_night.values()) < 1e-6
    assert grader_suite_only == pytest.approx(0.001938, rel=0.001)


# --- version changes of agreement, cost and latency: per rollout --------------------------------

OLD_EPOCH = Epoch(
    model="tutor-small", prompt_version="v1", suite="intro-python", suite_version="s1"
)
NEW_EPOCH = replace(OLD_EPOCH, prompt_version="v2")


def agreement_rollouts(trials: int, seed: int, drop: float = 0.0) -> float:
    """Share of judge prompt rollouts raising `agreement_version_change_effect`: two weeks of
    ~240 reviews at the demo's agreement under v1, then v2's first week at `drop` below it."""
    rng = np.random.default_rng(seed)
    weeks = [START + timedelta(days=7 * i) for i in range(3)]
    rows = rng.poisson(DEMO_REVIEWS_PER_WEEK, size=(trials, 3))
    rates = np.array([DEMO_AGREEMENT, DEMO_AGREEMENT, DEMO_AGREEMENT - drop])
    agree = rng.binomial(rows, rates)
    lineage = "judge=tutor-small suite=intro-python"
    raised = 0
    for trial in range(trials):
        series = {
            (lineage, OLD_EPOCH): {
                weeks[w]: (int(rows[trial, w]), int(agree[trial, w])) for w in range(2)
            },
            (lineage, NEW_EPOCH): {weeks[2]: (int(rows[trial, 2]), int(agree[trial, 2]))},
        }
        raised += len(
            detect_weekly_version_changes(series, DRIFT, weeks[2] + timedelta(days=6), measure="m")
        )
    return raised / trials


def figure_rollouts(kind: str, trials: int, seed: int, scale: float = 1.0) -> float:
    """Share of prompt rollouts on the demo's production grader raising the cost (or latency)
    version-change event: `baseline_days` nights under v1, then v2's first night × `scale`."""
    rng = np.random.default_rng(seed)
    calls = SPIKE_SERIES["production tutor-small grader"]
    days = [START + timedelta(days=i) for i in range(DRIFT.baseline_days + 1)]
    if kind == "latency":
        limits = {"ratio": DRIFT.latency_spike_ratio, "min_abs": DRIFT.latency_spike_min_abs_ms}
    else:
        limits = {"ratio": DRIFT.cost_spike_ratio, "min_abs": DRIFT.cost_spike_min_abs_usd}
    raised = 0
    for _ in range(trials):
        if kind == "latency":
            before, after = _latency_p95(rng, calls, len(days) - 1), _latency_p95(rng, calls, 1)
        else:
            before, after = _cost_per_call(rng, calls, len(days) - 1), _cost_per_call(rng, calls, 1)
        figures = {
            (kind, OLD_EPOCH): dict(zip(days[:-1], before, strict=True)),
            (kind, NEW_EPOCH): {days[-1]: float(after[0]) * scale},
        }
        raised += len(
            detect_figure_version_changes(figures, DRIFT, days[-1], measure=kind, unit="", **limits)
        )
    return raised / trials


def _within_level(rate: float, trials: int) -> bool:
    """At most the per-rollout level, give or take two binomial standard errors of the trials."""
    level = DRIFT.version_change_false_alarm_rate
    return rate <= level + 2 * math.sqrt(level * (1 - level) / trials)


def test_a_rollout_that_moves_nothing_rarely_raises_an_agreement_cost_or_latency_event() -> None:
    rates = {
        "agreement": agreement_rollouts(trials=2000, seed=21),
        "cost": figure_rollouts("cost", trials=1000, seed=22),
        "latency": figure_rollouts("latency", trials=1000, seed=23),
    }
    print(f"\nversion-change events per no-effect rollout: {rates}")
    assert _within_level(rates["agreement"], 2000)
    assert rates["cost"] == rates["latency"] == 0.0  # a no-effect night is never a 1.5× spike


def test_a_rollout_that_moves_agreement_cost_or_latency_is_one_event() -> None:
    powers = {
        "agreement -15 points": agreement_rollouts(trials=1000, seed=24, drop=0.15),
        "cost x2": figure_rollouts("cost", trials=300, seed=25, scale=2.0),
        "cost x0.5": figure_rollouts("cost", trials=300, seed=26, scale=0.5),
        "cost x0.3": figure_rollouts("cost", trials=300, seed=26, scale=0.3),
        "latency x2": figure_rollouts("latency", trials=300, seed=27, scale=2.0),
    }
    print(f"\nversion-change events per rollout with an effect: {powers}")
    assert powers["agreement -15 points"] >= 0.9
    assert powers["cost x2"] == powers["cost x0.3"] == powers["latency x2"] == 1.0
    # Halving the demo's $0.0000815 a call moves it $0.00004, under the $0.00005 floor
    # (cost_spike_min_abs_usd) below which no cost move is an event, as for cost spikes.
    assert powers["cost x0.5"] == 0.0


@pytest.mark.calibration
def test_version_change_rates_with_ten_times_the_rollouts() -> None:
    rate = agreement_rollouts(trials=20000, seed=28)
    print(f"\nagreement version-change events per no-effect rollout (20,000): {rate:.4f}")
    assert _within_level(rate, 20000)
    assert figure_rollouts("cost", 10000, seed=29) == figure_rollouts("latency", 10000, 30) == 0.0
