"""The pass-rate shift detector: a pooled recent-window test per stage series, Bonferroni over
the series tested.

A series is a stage within one comparability epoch (`epochs.SeriesKey`): a prompt rollout or a
new model starts a new series, so this detector never compares across a version change.

It is the detector with a contract (issue 6): across all stages together at most one false
alarm per 30 quiet nights, while a 10-point shift in one stage is caught within two nights at
200 rows a day and on its first night at 500:

* the window pools the newest nights until it holds `min_window_n` rows (400: one night at
  500/day, two at 200/day — the rows needed to see a `detect_shift` move at the test's level);
* it is compared with the `baseline_days` nights before the window by a two-proportion score
  test, two-sided (a stage can become too easy or start stalling);
* the level is Bonferroni over the stages: `nightly_false_alarm_rate / stages`, so the expected
  number of false alarms per night, all stages together, is at most that rate (0.025 by default,
  one per 40 nights, a margin under the contract's one per 30).

A single fixed-length window is used rather than several (1, 2, 3 nights...) because every
extra window spends false-alarm budget; a CUSUM was measured too and did no better at this
budget (docs/drift-detection.md has the measurements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
from scipy import stats as _sp

from evals import stats
from evals.config import DriftConfig
from evals.drift.epochs import SeriesKey
from evals.drift.findings import Finding, evidence_severity
from evals.drift.series import DailyCounts, align


@dataclass(frozen=True, slots=True)
class WindowTest:
    """The recent-window test of every series at its last day (arrays over series)."""

    window_days: npt.NDArray[np.int64]
    window_n: npt.NDArray[np.int64]
    window_successes: npt.NDArray[np.int64]
    baseline_days: npt.NDArray[np.int64]
    baseline_n: npt.NDArray[np.int64]
    baseline_successes: npt.NDArray[np.int64]
    z: npt.NDArray[np.float64]
    testable: npt.NDArray[np.bool_]


def recent_window_test(
    n: npt.ArrayLike, successes: npt.ArrayLike, drift: DriftConfig
) -> WindowTest:
    """The pooled recent-window score test at the last day of each row of `n` (shape [..., T]).

    This is the statistic the nightly check computes and the one the detection-quality tests
    simulate — the same function, vectorised over stages and trials.
    """
    n = np.asarray(n, dtype=np.int64)
    x = np.asarray(successes, dtype=np.int64)
    days = n.shape[-1]
    cum_n = np.concatenate([np.zeros((*n.shape[:-1], 1), np.int64), np.cumsum(n, -1)], -1)
    cum_x = np.concatenate([np.zeros((*x.shape[:-1], 1), np.int64), np.cumsum(x, -1)], -1)
    longest = min(drift.max_window_days, days)
    # rows in the newest k nights, k = 1..longest; the window is the first k reaching min_window_n
    newest = cum_n[..., -1:] - cum_n[..., days - np.arange(1, longest + 1)]
    reached = newest >= drift.min_window_n
    window = np.where(reached.any(-1), reached.argmax(-1) + 1, longest)
    start = days - window
    base_start = np.maximum(0, start - drift.baseline_days)

    def between(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        take = np.take_along_axis
        return (take(cum, hi[..., None], -1) - take(cum, lo[..., None], -1))[..., 0]

    end = np.full_like(start, days)
    window_n, window_x = between(cum_n, start, end), between(cum_x, start, end)
    base_n, base_x = between(cum_n, base_start, start), between(cum_x, base_start, start)
    baseline_days = start - base_start
    testable = (
        (n[..., -1] >= drift.min_daily_n)
        & (baseline_days >= drift.min_baseline_days)
        & (base_n > 0)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.asarray(stats.two_proportion_ztest(window_x, window_n, base_x, base_n).statistic)
    return WindowTest(
        window_days=window,
        window_n=window_n,
        window_successes=window_x,
        baseline_days=baseline_days,
        baseline_n=base_n,
        baseline_successes=base_x,
        z=np.where(testable, np.nan_to_num(z), 0.0),
        testable=testable,
    )


def shift_threshold(drift: DriftConfig, subjects: int) -> float:
    """|z| above which a stage alarms: two-sided, Bonferroni over the stages tested tonight."""
    per_subject = drift.nightly_false_alarm_rate / max(1, subjects)
    return float(_sp.norm.isf(per_subject / 2))


def detect_pass_rate_shifts(
    series: Mapping[SeriesKey, DailyCounts], drift: DriftConfig, as_of: date | None = None
) -> list[Finding]:
    """Stage series whose recent pass rate differs significantly from their trailing baseline.

    Give every series at once: the false-alarm budget is shared among the series tested.
    """
    if not series:
        return []
    as_of = as_of or max(one.last_day for one in series.values())
    subjects, n, x = align(series, as_of)
    test = recent_window_test(n, x, drift)
    threshold = shift_threshold(drift, int(test.testable.sum()))
    findings = []
    for row, key in enumerate(subjects):
        if not test.testable[row] or abs(test.z[row]) <= threshold:
            continue
        findings.append(_shift_finding(key, test, row, threshold, drift, as_of))
    return findings


def _shift_finding(
    key: SeriesKey,
    test: WindowTest,
    row: int,
    threshold: float,
    drift: DriftConfig,
    as_of: date,
) -> Finding:
    """The finding of one series whose window moved past the threshold."""
    window_n, base_n = int(test.window_n[row]), int(test.baseline_n[row])
    observed = test.window_successes[row] / window_n
    baseline = test.baseline_successes[row] / base_n
    half = threshold * math.sqrt(baseline * (1 - baseline) * (1 / window_n + 1 / base_n))
    shift = observed - baseline
    direction = "up (too easy?)" if shift > 0 else "down (stalling?)"
    window_start = as_of - timedelta(days=int(test.window_days[row]) - 1)
    p_value = float(2 * _sp.norm.sf(abs(test.z[row])))
    return Finding(
        kind="pass_rate_shift",
        subject=key.subject,
        severity=evidence_severity(
            p_value,
            drift.nightly_false_alarm_rate / int(test.testable.sum()),
            effect=shift,
            critical_effect=drift.detect_shift,
        ),
        message=(
            f"Pass rate of {key.subject} moved {direction}: {observed:.1%} over "
            f"{window_n} rows since {window_start} vs {baseline:.1%} over the "
            f"{int(test.baseline_days[row])} days before (z = {test.z[row]:+.2f})."
        ),
        statistic="two_proportion_z",
        observed=float(observed),
        expected_low=max(0.0, baseline - half),
        expected_high=min(1.0, baseline + half),
        window_start=window_start,
        window_end=as_of,
        p_value=p_value,
        evidence={
            "series": key.dimensions(),
            "z": float(test.z[row]),
            "z_threshold": threshold,
            "stages_tested": int(test.testable.sum()),
            "nightly_false_alarm_rate": drift.nightly_false_alarm_rate,
            "window_n": window_n,
            "window_passes": int(test.window_successes[row]),
            "baseline_n": base_n,
            "baseline_passes": int(test.baseline_successes[row]),
            "baseline_rate": float(baseline),
            "baseline_start": str(window_start - timedelta(days=int(test.baseline_days[row]))),
            "shift": float(shift),
        },
    )
