"""Golden accuracy night over night: the same golden items graded twice, paired by id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from evals import stats
from evals.config import DriftConfig
from evals.drift.findings import Finding


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

