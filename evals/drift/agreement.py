"""Judge-vs-human agreement: below the required level, or dropping from its own baseline.

Two tests per judge series and night — the rate against `min_agreement` (the score test behind
the Wilson interval) and against the judge's own baseline (one-sided Fisher: reviews are few) —
each at `agreement_false_alarm_rate` split over both tests of every series watched (Bonferroni).
"""

from __future__ import annotations

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
    rate = agree / n
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
    findings = []
    below = stats.one_proportion_score_p(agree, n, drift.min_agreement, "smaller")
    if below < level:
        findings.append(
            Finding(
                kind="agreement_below_threshold",
                subject=subject,
                severity=evidence_severity(below, level),
                message=(
                    f"Judge agreement with humans for {subject} is {rate:.1%} over {n} "
                    f"reviews (CI up to {high:.1%}), below the required "
                    f"{drift.min_agreement:.0%} (p = {below:.2g})."
                ),
                statistic="score_test_vs_threshold",
                observed=rate,
                expected_low=drift.min_agreement,
                expected_high=1.0,
                window_start=start,
                window_end=day,
                p_value=below,
                evidence=evidence,
            )
        )
    history = series.until(start - timedelta(days=1)) if start > series.first_day else None
    if history is not None:
        base_n, base_agree, base_start = pooled(history, history.last_day, drift.baseline_days)
        base_days = (history.last_day - base_start).days + 1
        if base_n and base_days >= drift.min_baseline_days:
            p = stats.two_proportion_exact_p(agree, n, base_agree, base_n, alternative="smaller")
            if p < level:
                base_rate = base_agree / base_n
                findings.append(
                    Finding(
                        kind="agreement_drop",
                        subject=subject,
                        severity=evidence_severity(p, level),
                        message=(
                            f"Judge agreement for {subject} fell to {rate:.1%} over {n} "
                            f"reviews from {base_rate:.1%} over the {base_days} days before "
                            f"(Fisher p = {p:.2g})."
                        ),
                        statistic="fisher_exact_p",
                        observed=rate,
                        expected_low=base_rate,
                        expected_high=1.0,
                        window_start=start,
                        window_end=day,
                        p_value=p,
                        evidence={
                            **evidence,
                            "baseline_n": base_n,
                            "baseline_agreements": base_agree,
                            "baseline_start": str(base_start),
                        },
                    )
                )
    return findings
