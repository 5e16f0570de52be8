"""Golden accuracy night over night: the same golden items graded twice, paired by id.

One night tests every model × suite that has a previous night, so the tests form a family: the
night's findings hold the family-wise error rate at `golden_nightly_false_alarm_rate` by Holm's
step-down procedure (the smallest p at budget/m, the next at budget/(m − 1), ... stopping at the
first that fails). On a quiet night that is Bonferroni's rule, so the expected false alarms per
night, all pairs together, stay within the budget; a real regression next to others loses less
power than under Bonferroni. Severity follows the evidence (`evidence_severity`, the rule of
every detector): critical only when p is at least ten times below its Holm level AND the drop is
at least `golden_critical_drop`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from evals import stats
from evals.config import DriftConfig
from evals.drift.findings import Finding, evidence_severity


@dataclass(frozen=True, slots=True)
class GoldenNight:
    """One model × suite: its item outcomes (item id → correct) on two nights."""

    subject: str
    previous: Mapping[str, bool]
    current: Mapping[str, bool]
    previous_day: date


@dataclass(frozen=True, slots=True)
class Comparison:
    """Accuracy before and after, and the test of the difference."""

    before: float
    after: float
    p_value: float
    statistic: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def drop(self) -> float:
        return self.before - self.after


def compare_nights(previous: Mapping[str, bool], current: Mapping[str, bool]) -> Comparison | None:
    """The two nights compared: items paired by id (exact McNemar on the items that changed
    outcome); with no common items (a new suite version), as independent samples (Fisher)."""
    common = sorted(set(previous) & set(current))
    if common:
        counts = stats.paired_counts([previous[i] for i in common], [current[i] for i in common])
        return Comparison(
            before=(counts.both + counts.baseline_only) / counts.n,
            after=(counts.both + counts.candidate_only) / counts.n,
            p_value=stats.mcnemar_exact_p(counts.baseline_only, counts.candidate_only),
            statistic="mcnemar_exact_p",
            evidence={
                "paired_items": counts.n,
                "regressed": counts.baseline_only,
                "improved": counts.candidate_only,
                "regressed_items": [i for i in common if previous[i] and not current[i]][:20],
            },
        )
    if not previous or not current:
        return None
    prev_ok, cur_ok = sum(previous.values()), sum(current.values())
    return Comparison(
        before=prev_ok / len(previous),
        after=cur_ok / len(current),
        p_value=stats.two_proportion_exact_p(cur_ok, len(current), prev_ok, len(previous)),
        statistic="fisher_exact_p",
        evidence={"previous_n": len(previous), "current_n": len(current), "paired_items": 0},
    )


def holm_levels(p_values: Sequence[float], family_rate: float) -> list[float | None]:
    """Each test's Holm level where Holm rejects it, None where it does not."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    levels: list[float | None] = [None] * len(p_values)
    for rank, index in enumerate(order):
        level = family_rate / (len(p_values) - rank)
        if p_values[index] > level:
            break
        levels[index] = level
    return levels


def detect_golden_regressions(
    nights: Sequence[GoldenNight], drift: DriftConfig, *, current_day: date
) -> list[Finding]:
    """Golden accuracy drops since the previous night: more than `max_golden_accuracy_drop` and
    rejected by Holm at `golden_nightly_false_alarm_rate` over every pair compared tonight."""
    compared = [
        (night, c)
        for night in nights
        if (c := compare_nights(night.previous, night.current)) is not None
    ]
    levels = holm_levels([c.p_value for _, c in compared], drift.golden_nightly_false_alarm_rate)
    findings = []
    for (night, c), level in zip(compared, levels, strict=True):
        if level is None or c.drop <= drift.max_golden_accuracy_drop:
            continue
        findings.append(
            Finding(
                kind="golden_regression",
                subject=night.subject,
                severity=evidence_severity(
                    c.p_value, level, effect=c.drop, critical_effect=drift.golden_critical_drop
                ),
                message=(
                    f"Golden accuracy of {night.subject} fell from {c.before:.1%} on "
                    f"{night.previous_day} to {c.after:.1%} on {current_day} (p = "
                    f"{c.p_value:.2g}, Holm level {level:.2g} over {len(compared)} tests)."
                ),
                statistic=c.statistic,
                observed=c.after,
                expected_low=c.before - drift.max_golden_accuracy_drop,
                expected_high=1.0,
                window_start=night.previous_day,
                window_end=current_day,
                p_value=c.p_value,
                evidence={
                    **c.evidence,
                    "previous_accuracy": c.before,
                    "drop": c.drop,
                    "holm_level": level,
                    "tests_tonight": len(compared),
                },
            )
        )
    return findings
