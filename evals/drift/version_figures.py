"""Version changes on a daily figure (cost per call, latency p95): did a rollout move it?

Like a stage's pass rate (`version_change`), a new epoch (model, prompt version, suite version)
is an event tested once, never drift: on the new epoch's first night, its figure against the
incumbent's figures over the `baseline_days` nights before. The incumbent is the epoch of the
same lineage (source and role: what is measured across the change) that differs from the new
one in the fewest versions, then the one with the most nights. The test is the spikes' log-scale
Student t prediction interval (`spikes.prediction_p`), two-sided — a rollout may halve a cost as
well as double it — at `version_change_false_alarm_rate` split over the lineages watched; the
move must also be as large as a spike's (`ratio` times the median or less than 1/ratio of it,
and `min_abs` away), so a rollout that moves cost by 5 % raises nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np

from evals.config import DriftConfig
from evals.drift.epochs import Epoch
from evals.drift.findings import Finding, evidence_severity
from evals.drift.spikes import prediction_p


def detect_figure_version_changes(
    figures: Mapping[tuple[str, Epoch], Mapping[date, float]],
    drift: DriftConfig,
    as_of: date,
    *,
    measure: str,
    unit: str,
    ratio: float,
    min_abs: float,
) -> list[Finding]:
    """The epochs first seen on `as_of` whose figure moved from the incumbent's.

    `figures`: (lineage, epoch) -> {night: figure}.
    """
    lineages: dict[str, dict[Epoch, dict[date, float]]] = defaultdict(dict)
    for (lineage, epoch), by_night in figures.items():
        lineages[lineage][epoch] = {
            night: value for night, value in by_night.items() if night <= as_of
        }
    level = drift.version_change_false_alarm_rate / max(1, len(lineages))
    findings = []
    for lineage, epochs in sorted(lineages.items()):
        for after, by_night in sorted(epochs.items(), key=lambda item: item[0].label()):
            if min(by_night, default=None) != as_of:
                continue
            before = _incumbent(epochs, after, as_of, drift)
            if before is None:
                continue
            finding = _finding(
                lineage,
                before,
                after,
                by_night[as_of],
                as_of,
                level=level,
                watched=len(lineages),
                measure=measure,
                unit=unit,
                ratio=ratio,
                min_abs=min_abs,
            )
            if finding is not None:
                findings.append(finding)
    return findings


def _incumbent(
    epochs: Mapping[Epoch, Mapping[date, float]], after: Epoch, first: date, drift: DriftConfig
) -> tuple[Epoch, dict[date, float]] | None:
    """The epoch closest to `after` with at least `min_baseline_days` nights in the
    `baseline_days` before `first`, and those nights."""
    start = first - timedelta(days=drift.baseline_days)
    candidates = []
    for epoch, by_night in epochs.items():
        window = {night: value for night, value in by_night.items() if start <= night < first}
        if epoch != after and len(window) >= drift.min_baseline_days:
            candidates.append(
                (len(epoch.changes(after)), -len(window), epoch.label(), epoch, window)
            )
    if not candidates:
        return None
    *_, epoch, window = min(candidates, key=lambda c: c[:3])
    return epoch, window


def _finding(
    lineage: str,
    before: tuple[Epoch, dict[date, float]],
    after: Epoch,
    value: float,
    night: date,
    *,
    level: float,
    watched: int,
    measure: str,
    unit: str,
    ratio: float,
    min_abs: float,
) -> Finding | None:
    """The change as a finding when it is large enough and beyond the prediction interval."""
    epoch, history = before
    median = float(np.median(list(history.values())))
    fold = value / median if median > 0 else np.inf
    if (1 / ratio < fold < ratio) or abs(value - median) < min_abs:
        return None
    p = prediction_p(list(history.values()), value, two_sided=True)
    if not p < level:
        return None
    subject = f"{lineage} {epoch.transition_label(after)}".strip()
    evidence: dict[str, Any] = {
        "lineage": lineage,
        "measure": measure,
        "before": {
            **epoch.columns(),
            "median": median,
            "nights": len(history),
            "first_day": str(min(history)),
            "last_day": str(max(history)),
        },
        "after": {**after.columns(), "value": value, "first_day": str(night)},
        "changed": epoch.changes(after),
        "ratio": float(fold),
        "threshold_ratio": ratio,
        "min_abs": min_abs,
        "level": level,
        "series_watched": watched,
    }
    if epoch.prompt_version and "prompt_version" in evidence["changed"]:
        evidence["prompt_diff_against"] = epoch.prompt_version
    return Finding(
        kind="version_change_effect",
        subject=subject,
        severity=evidence_severity(p, level),
        message=(
            f"Version change on {subject}: {measure} {value:.6g} {unit} on {night}, "
            f"{fold:.2f}× the {len(history)}-night median {median:.6g} {unit} before "
            f"(p = {p:.2g})."
        ),
        statistic="log_prediction_t",
        observed=value,
        expected_low=max(0.0, min(median / ratio, median - min_abs)),
        expected_high=max(median * ratio, median + min_abs),
        window_start=night,
        window_end=night,
        p_value=p,
        evidence=evidence,
    )
