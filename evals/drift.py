"""Drift detectors for the nightly checks: pass-rate shifts and bands, judge agreement,
golden accuracy night over night, cost and latency spikes.

Each detector reads a small series computed by the marts (counts per day, per-item golden
outcomes, a daily cost or latency figure) and returns `Finding`s — nothing when all is quiet.
A finding carries what an alert row needs (raw.alerts): the statistic, what was observed, the
range that would have been quiet, the window, a p-value and the evidence behind it.

The pass-rate detector is the one with a contract (issue 6): across all stages together at most
one false alarm per 30 quiet nights, while a 10-point shift in one stage is caught within two
nights at 200 rows a day and on its first night at 500. It is a pooled recent-window test:

* the window pools the newest nights until it holds `min_window_n` rows (400: one night at
  500/day, two at 200/day — the rows needed to see a `detect_shift` move at the test's level);
* it is compared with the `baseline_days` nights before the window by a two-proportion score
  test, two-sided (a stage can become too easy or start stalling);
* the level is Bonferroni over the stages: `nightly_false_alarm_rate / stages`, so the expected
  number of false alarms per night, all stages together, is at most that rate (0.025 by default,
  one per 40 nights, a margin under the contract's one per 30).

A single fixed-length window is used rather than several (1, 2, 3 nights...) because every
extra window spends false-alarm budget; a CUSUM was measured too and did no better at this
budget (docs/drift-detection.md has the measurements). Days are calendar days (UTC).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as _sp

from evals import stats
from evals.config import DriftConfig, StageBand

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a drift check found, shaped like a raw.alerts row."""

    kind: str
    subject: str
    severity: str
    message: str
    statistic: str
    observed: float
    expected_low: float | None
    expected_high: float | None
    window_start: date
    window_end: date
    p_value: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    example_run_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @property
    def dedupe_key(self) -> str:
        """Same check, subject and window → same alert, however often the check re-runs."""
        return f"{self.kind}:{self.subject}:{self.window_start}:{self.window_end}"

    def with_examples(self, run_ids: Iterable[Any]) -> Finding:
        """The finding with example runs attached (the caller knows which rows to show)."""
        return replace(self, example_run_ids=tuple(str(run_id) for run_id in run_ids))

    def alert_row(self) -> dict[str, Any]:
        """The columns of raw.alerts this finding fills (the window as [start, end) in UTC)."""
        evidence = dict(self.evidence)
        if self.p_value is not None:
            evidence.setdefault("p_value", self.p_value)
        return {
            "dedupe_key": self.dedupe_key,
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "statistic": self.statistic,
            "observed": self.observed,
            "expected_low": self.expected_low,
            "expected_high": self.expected_high,
            "window_start": _day_start(self.window_start),
            "window_end": _day_start(self.window_end + timedelta(days=1)),
            "evidence": evidence,
            "example_run_ids": list(self.example_run_ids),
        }


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --- series ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """Rows and successes (passes, agreements...) per calendar day, gaps filled with zeros."""

    first_day: date
    n: npt.NDArray[np.int64]
    successes: npt.NDArray[np.int64]

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=len(self.n) - 1)

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        day: str = "day",
        n: str = "n",
        successes: str = "passes",
        as_of: date | None = None,
    ) -> DailyCounts:
        """From mart rows (dicts, or a DataFrame's `to_dict("records")`); repeated days add up.

        `as_of` extends the calendar to the night being checked, so a night without rows is a
        night with n = 0 rather than silently the previous one.
        """
        totals: dict[date, list[int]] = {}
        for row in rows:
            key = _as_date(row[day])
            pair = totals.setdefault(key, [0, 0])
            pair[0] += int(row[n])
            pair[1] += int(row[successes])
        if as_of is not None:
            totals = {key: value for key, value in totals.items() if key <= as_of}
            totals.setdefault(as_of, [0, 0])
        if not totals:
            raise ValueError("no days in the series")
        first, last = min(totals), max(totals)
        length = (last - first).days + 1
        counts = np.zeros((2, length), dtype=np.int64)
        for key, (rows_n, rows_s) in totals.items():
            counts[:, (key - first).days] = (rows_n, rows_s)
        if np.any(counts[1] > counts[0]) or np.any(counts < 0):
            raise ValueError("successes must lie in [0, n] on every day")
        return cls(first_day=first, n=counts[0], successes=counts[1])

    def until(self, day: date) -> DailyCounts:
        """The series up to and including `day` (zeros after its end)."""
        length = (day - self.first_day).days + 1
        if length <= 0:
            raise ValueError(f"{day} is before the series starts ({self.first_day})")
        pad = max(0, length - len(self.n))
        return DailyCounts(
            first_day=self.first_day,
            n=np.pad(self.n, (0, pad))[:length],
            successes=np.pad(self.successes, (0, pad))[:length],
        )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _align(series: Mapping[str, DailyCounts], as_of: date) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Stack series on one calendar ending at `as_of`: (subjects, n[S, T], successes[S, T])."""
    subjects = sorted(series)
    first = min(series[name].first_day for name in subjects)
    length = (as_of - first).days + 1
    n = np.zeros((len(subjects), length), dtype=np.int64)
    x = np.zeros_like(n)
    for row, name in enumerate(subjects):
        one = series[name]
        offset = (one.first_day - first).days
        stop = min(length, offset + len(one.n))
        if stop > offset:
            n[row, offset:stop] = one.n[: stop - offset]
            x[row, offset:stop] = one.successes[: stop - offset]
    return subjects, n, x


# --- pass-rate shift -----------------------------------------------------------------------------


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
    series: Mapping[str, DailyCounts], drift: DriftConfig, as_of: date | None = None
) -> list[Finding]:
    """Stages whose recent pass rate differs significantly from their trailing baseline.

    Give every stage at once: the false-alarm budget is shared among the stages tested.
    """
    if not series:
        return []
    as_of = as_of or max(one.last_day for one in series.values())
    subjects, n, x = _align(series, as_of)
    test = recent_window_test(n, x, drift)
    threshold = shift_threshold(drift, int(test.testable.sum()))
    findings = []
    for row, stage in enumerate(subjects):
        if not test.testable[row] or abs(test.z[row]) <= threshold:
            continue
        window_n, base_n = int(test.window_n[row]), int(test.baseline_n[row])
        observed = test.window_successes[row] / window_n
        baseline = test.baseline_successes[row] / base_n
        half = threshold * math.sqrt(baseline * (1 - baseline) * (1 / window_n + 1 / base_n))
        shift = observed - baseline
        direction = "up (too easy?)" if shift > 0 else "down (stalling?)"
        window_start = as_of - timedelta(days=int(test.window_days[row]) - 1)
        p_value = float(2 * _sp.norm.sf(abs(test.z[row])))
        findings.append(
            Finding(
                kind="pass_rate_shift",
                subject=f"stage={stage}",
                severity="critical" if abs(shift) >= drift.detect_shift else "warning",
                message=(
                    f"Pass rate of stage {stage} moved {direction}: {observed:.1%} over "
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
        )
    return findings


# --- pass-rate bands -------------------------------------------------------------------------------


def _pooled(series: DailyCounts, as_of: date, days: int) -> tuple[int, int, date]:
    clipped = series.until(as_of)
    n, x = clipped.n[-days:], clipped.successes[-days:]
    return int(n.sum()), int(x.sum()), as_of - timedelta(days=min(days, len(clipped.n)) - 1)


def detect_band_violations(
    series: Mapping[str, DailyCounts], drift: DriftConfig, as_of: date | None = None
) -> list[Finding]:
    """Stages confidently outside their band: the whole Wilson CI above `too_easy_above`
    (the stage teaches nothing) or below `stalling_below` (learners are stuck)."""
    findings = []
    for stage, one in sorted(series.items()):
        day = as_of or one.last_day
        band: StageBand = drift.stage_bands.get(stage, drift.default_band)
        n, x, start = _pooled(one, day, drift.band_window_days)
        if n == 0:
            continue
        low, high = stats.wilson_interval(x, n, confidence=1 - drift.alpha)
        common = {
            "subject": f"stage={stage}",
            "statistic": "wilson_interval",
            "observed": x / n,
            "expected_low": band.stalling_below,
            "expected_high": band.too_easy_above,
            "window_start": start,
            "window_end": day,
            "evidence": {"n": n, "passes": x, "ci_low": low, "ci_high": high,
                         "confidence": 1 - drift.alpha},
        }
        if low > band.too_easy_above:
            findings.append(Finding(
                kind="pass_rate_too_easy", severity="warning",
                message=(f"Stage {stage} looks too easy: pass rate {x / n:.1%} "
                         f"(CI {low:.1%}–{high:.1%}, {n} rows) is above its band's "
                         f"{band.too_easy_above:.0%}."),
                **common,
            ))
        elif high < band.stalling_below:
            findings.append(Finding(
                kind="pass_rate_stalling", severity="critical",
                message=(f"Stage {stage} is stalling: pass rate {x / n:.1%} "
                         f"(CI {low:.1%}–{high:.1%}, {n} rows) is below its band's "
                         f"{band.stalling_below:.0%}."),
                **common,
            ))
    return findings


# --- judge agreement ---------------------------------------------------------------------------------


def detect_agreement_drift(
    series: DailyCounts,
    drift: DriftConfig,
    *,
    subject: str,
    as_of: date | None = None,
    kappa_table: npt.ArrayLike | None = None,
) -> list[Finding]:
    """Judge-vs-human agreement confidently below `min_agreement`, or significantly below its
    own baseline (one-sided Fisher test: reviews are few, so no normal approximation).

    `series`: reviewed items and agreements per day. `kappa_table`, the window's verdict
    confusion table when the caller has it, adds Cohen's kappa to the evidence (raw agreement
    flatters a judge when one verdict dominates).
    """
    day = as_of or series.last_day
    n, agree, start = _pooled(series, day, drift.agreement_window_days)
    if n == 0:
        return []
    rate = agree / n
    low, high = stats.wilson_interval(agree, n, confidence=1 - drift.alpha)
    evidence: dict[str, Any] = {"n": n, "agreements": agree, "ci_low": low, "ci_high": high}
    if kappa_table is not None:
        kappa = stats.cohens_kappa(kappa_table)
        evidence["kappa"] = kappa.kappa
        evidence["kappa_note"] = kappa.degenerate
    findings = []
    if high < drift.min_agreement:
        findings.append(Finding(
            kind="agreement_below_threshold", subject=subject, severity="critical",
            message=(f"Judge agreement with humans for {subject} is {rate:.1%} over {n} "
                     f"reviews (CI up to {high:.1%}), below the required "
                     f"{drift.min_agreement:.0%}."),
            statistic="wilson_interval", observed=rate, expected_low=drift.min_agreement,
            expected_high=1.0, window_start=start, window_end=day, evidence=evidence,
        ))
    history = series.until(start - timedelta(days=1)) if start > series.first_day else None
    if history is not None:
        base_n, base_agree, base_start = _pooled(history, history.last_day, drift.baseline_days)
        base_days = (history.last_day - base_start).days + 1
        if base_n and base_days >= drift.min_baseline_days:
            p = stats.two_proportion_exact_p(agree, n, base_agree, base_n, alternative="smaller")
            if p < drift.alpha:
                base_rate = base_agree / base_n
                findings.append(Finding(
                    kind="agreement_drop", subject=subject, severity="warning",
                    message=(f"Judge agreement for {subject} fell to {rate:.1%} over {n} "
                             f"reviews from {base_rate:.1%} over the {base_days} days before "
                             f"(Fisher p = {p:.2g})."),
                    statistic="fisher_exact_p", observed=rate, expected_low=base_rate,
                    expected_high=1.0, window_start=start, window_end=day, p_value=p,
                    evidence={**evidence, "baseline_n": base_n, "baseline_agreements": base_agree,
                              "baseline_start": str(base_start)},
                ))
    return findings


# --- golden accuracy night over night -------------------------------------------------------------


def detect_golden_regression(
    previous: Mapping[str, bool],
    current: Mapping[str, bool],
    drift: DriftConfig,
    *,
    subject: str,
    previous_day: date,
    current_day: date,
) -> list[Finding]:
    """Golden accuracy dropped by more than `max_golden_accuracy_drop` since the previous night,
    and significantly so.

    Items are paired by id (the same golden items graded twice), so the exact McNemar test on
    the items that changed outcome applies; with no common items (a new suite version) the two
    nights are compared as independent samples (Fisher).
    """
    common = sorted(set(previous) & set(current))
    if common:
        counts = stats.paired_counts([previous[i] for i in common], [current[i] for i in common])
        before = (counts.both + counts.baseline_only) / counts.n
        after = (counts.both + counts.candidate_only) / counts.n
        p = stats.mcnemar_exact_p(counts.baseline_only, counts.candidate_only)
        statistic = "mcnemar_exact_p"
        regressed = [i for i in common if previous[i] and not current[i]]
        evidence: dict[str, Any] = {
            "paired_items": counts.n,
            "regressed": counts.baseline_only,
            "improved": counts.candidate_only,
            "regressed_items": regressed[:20],
        }
    else:
        if not previous or not current:
            return []
        prev_ok, cur_ok = sum(previous.values()), sum(current.values())
        before, after = prev_ok / len(previous), cur_ok / len(current)
        p = stats.two_proportion_exact_p(cur_ok, len(current), prev_ok, len(previous))
        statistic = "fisher_exact_p"
        evidence = {"previous_n": len(previous), "current_n": len(current), "paired_items": 0}
    drop = before - after
    if drop <= drift.max_golden_accuracy_drop or p >= drift.golden_alpha:
        return []
    return [Finding(
        kind="golden_regression", subject=subject, severity="critical",
        message=(f"Golden accuracy of {subject} fell from {before:.1%} on {previous_day} to "
                 f"{after:.1%} on {current_day} (p = {p:.2g})."),
        statistic=statistic, observed=after,
        expected_low=before - drift.max_golden_accuracy_drop, expected_high=1.0,
        window_start=previous_day, window_end=current_day, p_value=p,
        evidence={**evidence, "previous_accuracy": before, "drop": drop},
    )]


# --- cost and latency ------------------------------------------------------------------------------


def detect_spike(
    values: Mapping[date, float] | Sequence[tuple[date, float]],
    *,
    kind: str,
    subject: str,
    unit: str,
    ratio: float,
    min_abs: float,
    drift: DriftConfig,
    as_of: date | None = None,
) -> list[Finding]:
    """Today's value at least `ratio` times the trailing median AND at least `min_abs` above it.

    The median of the `baseline_days` before shrugs off one earlier spike; the absolute floor
    keeps a tiny figure doubling (0.1 ms → 0.2 ms) from paging anyone.
    """
    points = dict(values.items() if isinstance(values, Mapping) else values)
    points = {_as_date(day): float(value) for day, value in points.items() if value is not None}
    if not points:
        return []
    day = as_of or max(points)
    if day not in points:
        return []
    history = [points[d] for d in points if day - timedelta(days=drift.baseline_days) <= d < day]
    if len(history) < drift.min_baseline_days:
        return []
    baseline = float(np.median(history))
    today = points[day]
    if today < baseline * ratio or today - baseline < min_abs:
        return []
    observed_ratio = today / baseline if baseline > 0 else math.inf
    return [Finding(
        kind=kind, subject=subject,
        severity="critical" if observed_ratio >= ratio * 2 else "warning",
        message=(f"{kind.replace('_', ' ').capitalize()} for {subject}: {today:.6g} {unit} on "
                 f"{day}, {observed_ratio:.2f}× the {len(history)}-day median {baseline:.6g}."),
        statistic="ratio_to_trailing_median", observed=today,
        expected_low=0.0, expected_high=max(baseline * ratio, baseline + min_abs),
        window_start=day, window_end=day,
        evidence={"ratio": observed_ratio, "trailing_median": baseline,
                  "baseline_days": len(history), "threshold_ratio": ratio, "min_abs": min_abs},
    )]


def detect_cost_spike(
    cost_per_call: Mapping[date, float] | Sequence[tuple[date, float]],
    drift: DriftConfig,
    *,
    subject: str,
    as_of: date | None = None,
) -> list[Finding]:
    """Mean cost per call (USD) of a day against its trailing median."""
    return detect_spike(
        cost_per_call, kind="cost_spike", subject=subject, unit="USD/call",
        ratio=drift.cost_spike_ratio, min_abs=drift.cost_spike_min_abs_usd, drift=drift,
        as_of=as_of,
    )


def detect_latency_spike(
    latency_ms: Mapping[date, float] | Sequence[tuple[date, float]],
    drift: DriftConfig,
    *,
    subject: str,
    as_of: date | None = None,
) -> list[Finding]:
    """A day's latency figure (p95 ms, say) against its trailing median."""
    return detect_spike(
        latency_ms, kind="latency_spike", subject=subject, unit="ms",
        ratio=drift.latency_spike_ratio, min_abs=drift.latency_spike_min_abs_ms, drift=drift,
        as_of=as_of,
    )
