"""Judge-vs-human agreement: below the required level, or dropping from its own baseline.

Two tests per judge series and night — the rate against `min_agreement` (the score test behind
the Wilson interval) and against the judge's own baseline (one-sided Fisher: reviews are few) —
each at `agreement_false_alarm_rate` split over both tests of every series watched (Bonferroni).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy.typing as npt

from evals import stats
from evals.config import DriftConfig
from evals.drift.findings import Finding, evidence_severity
from evals.drift.series import DailyCounts, pooled


def detect_agreement_drift(
    series: DailyCounts,
    drift: DriftConfig,
    *,
    subject: str,
    as_of: date | None = None,
    kappa_table: npt.ArrayLike | None = None,
    series_watched: int = 1,
) -> list[Finding]:
    """Judge-vs-human agreement confidently below `min_agreement`, or significantly below its
    own baseline (one-sided Fisher test: reviews are few, so no normal approximation).

    `series`: reviewed items and agreements per day. `kappa_table`, the window's verdict
    confusion table when the caller has it, adds Cohen's kappa to the evidence (raw agreement
    flatters a judge when one verdict dominates). `series_watched`: how many judge series the
    caller tests tonight (the budget is split among them).
    """
    level = drift.agreement_false_alarm_rate / (2 * max(1, series_watched))
    day = as_of or series.last_day
    n, agree, start = pooled(series, day, drift.agreement_window_days)
    if n == 0:
        return []
    low, high = stats.wilson_interval(agree, n, confidence=1 - 2 * level)
    evidence: dict[str, Any] = {
        "n": n,
        "agreements": agree,
        "ci_low": low,
        "ci_high": high,
        "level": level,
        "series_watched": series_watched,
    }
    if kappa_table is not None:
        kappa = stats.cohens_kappa(kappa_table)
        evidence["kappa"] = kappa.kappa
        evidence["kappa_note"] = kappa.degenerate
    window = _Window(subject=subject, start=start, end=day, n=n, agreements=agree, level=level)
    findings = [
        _below_threshold(window, drift, evidence),
        _drop_from_baseline(window, series, drift, evidence),
    ]
    return [finding for finding in findings if finding is not None]


@dataclass(frozen=True, slots=True)
class _Window:
    """The night's pooled reviews, as both tests see them."""

    subject: str
    start: date
    end: date
    n: int
    agreements: int
    level: float

    @property
    def rate(self) -> float:
        return self.agreements / self.n


def _below_threshold(
    window: _Window, drift: DriftConfig, evidence: dict[str, Any]
) -> Finding | None:
    """The window's rate confidently below `min_agreement` (one-sided score test)."""
    p = stats.one_proportion_score_p(window.agreements, window.n, drift.min_agreement, "smaller")
    if p >= window.level:
        return None
    return Finding(
        kind="agreement_below_threshold",
        subject=window.subject,
        severity=evidence_severity(p, window.level),
        message=(
            f"Judge agreement with humans for {window.subject} is {window.rate:.1%} over "
            f"{window.n} reviews (CI up to {evidence['ci_high']:.1%}), below the required "
            f"{drift.min_agreement:.0%} (p = {p:.2g})."
        ),
        statistic="score_test_vs_threshold",
        observed=window.rate,
        expected_low=drift.min_agreement,
        expected_high=1.0,
        window_start=window.start,
        window_end=window.end,
        p_value=p,
        evidence=evidence,
    )


def _drop_from_baseline(
    window: _Window, series: DailyCounts, drift: DriftConfig, evidence: dict[str, Any]
) -> Finding | None:
    """The window's rate significantly below the judge's own baseline before it (Fisher)."""
    if window.start <= series.first_day:
        return None
    history = series.until(window.start - timedelta(days=1))
    base_n, base_agree, base_start = pooled(history, history.last_day, drift.baseline_days)
    base_days = (history.last_day - base_start).days + 1
    if not base_n or base_days < drift.min_baseline_days:
        return None
    p = stats.two_proportion_exact_p(
        window.agreements, window.n, base_agree, base_n, alternative="smaller"
    )
    if p >= window.level:
        return None
    base_rate = base_agree / base_n
    return Finding(
        kind="agreement_drop",
        subject=window.subject,
        severity=evidence_severity(p, window.level),
        message=(
            f"Judge agreement for {window.subject} fell to {window.rate:.1%} over {window.n} "
            f"reviews from {base_rate:.1%} over the {base_days} days before "
            f"(Fisher p = {p:.2g})."
        ),
        statistic="fisher_exact_p",
        observed=window.rate,
        expected_low=base_rate,
        expected_high=1.0,
        window_start=window.start,
        window_end=window.end,
        p_value=p,
        evidence={
            **evidence,
            "baseline_n": base_n,
            "baseline_agreements": base_agree,
            "baseline_start": str(base_start),
        },
    )
