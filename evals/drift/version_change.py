"""Version changes are events, not drift: did a rollout move a stage's pass rate?

When a stage's epoch changes (a new prompt version, model or suite version appears), the drift
detectors start a new series and never compare across the change. This detector compares the
two sides, once per change:

* before: the incumbent epoch (the one with the most rows then) over the `baseline_days` nights
  before the new epoch's first night;
* after: the new epoch from its first night, pooled until it holds `min_window_n` rows (at most
  `max_window_days` nights) — the night that happens is the one night the change is tested;
* test: the two-proportion score test, two-sided; where the same items were graded under both
  versions (golden suites) the exact McNemar test on those items instead;
* level: `version_change_false_alarm_rate`, Bonferroni over the series watched (stages; golden
  model × suite), so a rollout that touches all of them and moves nothing raises an alert with
  at most that probability.

A rollout that moves a rate is reported as `version_change_effect` with both rates and their
Wilson intervals; one that moves nothing raises nothing. Weekly rates (judge agreement with
humans) are tested the same way on the last night of the new epoch's first week
(`detect_weekly_version_changes`); daily figures (cost, latency) in `version_figures`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from scipy import stats as _sp

from evals import stats
from evals.config import DriftConfig
from evals.drift.epochs import Epoch, SeriesKey
from evals.drift.findings import Finding, evidence_severity
from evals.drift.series import DailyCounts

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class VersionChange:
    """One series' change of epoch, with the rows on either side that the test compares.

    `lineage` names what is measured across the change (`stage=loops`, `suite=general-qa`).
    """

    lineage: str
    before: Epoch
    after: Epoch
    before_start: date
    before_end: date
    first_day: date
    test_day: date
    before_n: int
    before_passes: int
    after_n: int
    after_passes: int
    measure: str = "pass rate"


def due_version_changes(
    series: Mapping[SeriesKey, DailyCounts], drift: DriftConfig, as_of: date
) -> list[VersionChange]:
    """The version changes whose effect is tested on `as_of` (the night each new epoch's window
    fills), with an incumbent that has at least `min_baseline_days` nights of rows before it."""
    by_stage: dict[str, dict[Epoch, DailyCounts]] = defaultdict(dict)
    for key, counts in series.items():
        if counts.first_day <= as_of:
            by_stage[key.stage][key.epoch] = counts.until(as_of)
    changes = []
    for stage, epochs in sorted(by_stage.items()):
        for after, counts in sorted(epochs.items(), key=lambda item: item[0].label()):
            window = _new_epoch_window(counts, drift, as_of)
            if window is None:
                continue
            first_day, after_n, after_passes = window
            before = _incumbent(epochs, after, first_day, drift)
            if before is None:
                continue
            epoch, before_n, before_passes, before_start = before
            changes.append(
                VersionChange(
                    lineage=f"stage={stage}",
                    before=epoch,
                    after=after,
                    before_start=before_start,
                    before_end=first_day - timedelta(days=1),
                    first_day=first_day,
                    test_day=as_of,
                    before_n=before_n,
                    before_passes=before_passes,
                    after_n=after_n,
                    after_passes=after_passes,
                )
            )
    return changes


def _new_epoch_window(
    counts: DailyCounts, drift: DriftConfig, as_of: date
) -> tuple[date, int, int] | None:
    """(first night, rows, passes) of an epoch whose window fills tonight, else None."""
    seen = np.flatnonzero(counts.n)
    if len(seen) == 0:
        return None
    first = int(seen[0])
    cumulative = np.cumsum(counts.n[first:])
    reached = np.flatnonzero(cumulative >= drift.min_window_n)
    test_index = first + min(
        int(reached[0]) if len(reached) else len(cumulative), drift.max_window_days - 1
    )
    if counts.day(test_index) != as_of or cumulative[test_index - first] < drift.min_daily_n:
        return None
    after = slice(first, test_index + 1)
    return counts.day(first), int(counts.n[after].sum()), int(counts.successes[after].sum())


def _incumbent(
    epochs: Mapping[Epoch, DailyCounts], after: Epoch, first_day: date, drift: DriftConfig
) -> tuple[Epoch, int, int, date] | None:
    """The epoch with the most rows in the `baseline_days` nights before `first_day`."""
    start = first_day - timedelta(days=drift.baseline_days)
    best = None
    for epoch, counts in epochs.items():
        if epoch == after or counts.first_day >= first_day:
            continue
        lo = max(0, (start - counts.first_day).days)
        hi = (first_day - counts.first_day).days
        n, x = counts.n[lo:hi], counts.successes[lo:hi]
        if int(np.count_nonzero(n)) < drift.min_baseline_days:
            continue
        if best is None or int(n.sum()) > best[1]:
            best = (epoch, int(n.sum()), int(x.sum()), max(start, counts.first_day))
    return best


def version_change_finding(
    change: VersionChange,
    drift: DriftConfig,
    *,
    series_watched: int,
    paired: Sequence[tuple[bool, bool]] = (),
) -> Finding | None:
    """The change's effect as a finding when it is significant, else None.

    `paired`: (outcome before, outcome after) of each item graded under both versions; when
    there are any, the decision is the exact McNemar test on them.
    """
    level = drift.version_change_false_alarm_rate / max(1, series_watched)
    before_rate = change.before_passes / change.before_n
    after_rate = change.after_passes / change.after_n
    effect = after_rate - before_rate
    p_value, statistic, test = _change_test(change, paired)
    if p_value >= level:
        return None
    evidence = _evidence(
        change, effect=effect, level=level, series_watched=series_watched, test=test
    )
    threshold = float(_sp.norm.isf(level / 2))
    half = threshold * math.sqrt(
        before_rate * (1 - before_rate) * (1 / change.after_n + 1 / change.before_n)
    )
    subject = f"{change.lineage} {change.before.transition_label(change.after)}".strip()
    return Finding(
        kind="version_change_effect",
        subject=subject,
        severity=evidence_severity(
            p_value, level, effect=effect, critical_effect=drift.detect_shift
        ),
        message=(
            f"Version change on {subject}: {change.measure} {_rate(evidence['before'])} over "
            f"{change.before_n} rows {_days(change.before_start, change.before_end)}, "
            f"{_rate(evidence['after'])} over {change.after_n} rows "
            f"{_days(change.first_day, change.test_day)} ({effect:+.1%}, p = {p_value:.2g})."
        ),
        statistic=statistic,
        observed=after_rate,
        expected_low=max(0.0, before_rate - half),
        expected_high=min(1.0, before_rate + half),
        window_start=change.first_day,
        window_end=change.test_day,
        p_value=p_value,
        evidence=evidence,
    )


def _change_test(
    change: VersionChange, paired: Sequence[tuple[bool, bool]]
) -> tuple[float, str, dict[str, Any]]:
    """(p-value, statistic name, test evidence): exact McNemar on paired items, else the
    two-proportion score test."""
    if paired:
        counts = stats.paired_counts([b for b, _ in paired], [a for _, a in paired])
        p_value = stats.mcnemar_exact_p(counts.baseline_only, counts.candidate_only)
        items = {
            "items": counts.n,
            "regressed": counts.baseline_only,
            "improved": counts.candidate_only,
        }
        return p_value, "mcnemar_exact_p", {"paired": items}
    z = float(
        stats.two_proportion_ztest(
            change.after_passes, change.after_n, change.before_passes, change.before_n
        ).statistic
    )
    return float(2 * _sp.norm.sf(abs(z))), "two_proportion_z", {"z": z}


def _evidence(
    change: VersionChange,
    *,
    effect: float,
    level: float,
    series_watched: int,
    test: dict[str, Any],
) -> dict[str, Any]:
    """Both sides with their intervals, what changed, and the test's own numbers."""
    evidence: dict[str, Any] = {
        "lineage": change.lineage,
        "measure": change.measure,
        "before": _side(
            change.before,
            change.before_passes,
            change.before_n,
            change.before_start,
            change.before_end,
        ),
        "after": _side(
            change.after, change.after_passes, change.after_n, change.first_day, change.test_day
        ),
        "changed": change.before.changes(change.after),
        "effect": effect,
        "level": level,
        "series_watched": series_watched,
        **test,
    }
    if change.before.prompt_version and "prompt_version" in evidence["changed"]:
        evidence["prompt_diff_against"] = change.before.prompt_version
    return evidence


def detect_version_changes(
    series: Mapping[SeriesKey, DailyCounts], drift: DriftConfig, as_of: date
) -> list[Finding]:
    """Version changes tested tonight whose effect on the pass rate is significant (unpaired).

    Give every stage series at once: the false-alarm budget is shared among the stages.
    """
    stages = len({key.stage for key in series})
    findings = (
        version_change_finding(change, drift, series_watched=stages)
        for change in due_version_changes(series, drift, as_of)
    )
    return [finding for finding in findings if finding is not None]


def detect_weekly_version_changes(
    weeks: Mapping[tuple[str, Epoch], Mapping[date, tuple[int, int]]],
    drift: DriftConfig,
    as_of: date,
    *,
    measure: str,
) -> list[Finding]:
    """Version changes of a weekly rate (judge agreement with humans: a judge prompt or suite
    version change), each tested once, on the last night of the new epoch's first week: that
    week against the incumbent's weeks that start in the `baseline_days` before it (score test).

    `weeks`: (lineage, epoch) -> {week start: (n, successes)}. The incumbent is the lineage's
    epoch that differs least from the new one, then the one with the most rows there; the
    budget is shared among the lineages.
    """
    lineages: dict[str, dict[Epoch, dict[date, tuple[int, int]]]] = defaultdict(dict)
    for (lineage, epoch), by_week in weeks.items():
        lineages[lineage][epoch] = {
            week: counts for week, counts in by_week.items() if week <= as_of and counts[0] > 0
        }
    findings = []
    for lineage, epochs in sorted(lineages.items()):
        for after, by_week in sorted(epochs.items(), key=lambda item: item[0].label()):
            first = min(by_week, default=None)
            if first is None or first + timedelta(days=6) != as_of:
                continue
            before = _weekly_incumbent(epochs, after, first, drift)
            if before is None:
                continue
            epoch, before_weeks = before
            change = VersionChange(
                lineage=lineage,
                before=epoch,
                after=after,
                before_start=min(before_weeks),
                before_end=first - timedelta(days=1),
                first_day=first,
                test_day=as_of,
                before_n=sum(n for n, _ in before_weeks.values()),
                before_passes=sum(x for _, x in before_weeks.values()),
                after_n=by_week[first][0],
                after_passes=by_week[first][1],
                measure=measure,
            )
            finding = version_change_finding(change, drift, series_watched=len(lineages))
            if finding is not None:
                findings.append(finding)
    return findings


def _weekly_incumbent(
    epochs: Mapping[Epoch, Mapping[date, tuple[int, int]]],
    after: Epoch,
    first: date,
    drift: DriftConfig,
) -> tuple[Epoch, dict[date, tuple[int, int]]] | None:
    """The epoch closest to `after` (fewest changed versions, then most rows) with weeks in
    the `baseline_days` before `first`, and those weeks."""
    start = first - timedelta(days=drift.baseline_days)
    candidates = []
    for epoch, by_week in epochs.items():
        window = {week: counts for week, counts in by_week.items() if start <= week < first}
        if epoch != after and window:
            rows = sum(n for n, _ in window.values())
            candidates.append((len(epoch.changes(after)), -rows, epoch.label(), epoch, window))
    if not candidates:
        return None
    *_, epoch, window = min(candidates, key=lambda c: c[:3])
    return epoch, window


def _days(first: date, last: date) -> str:
    return f"on {first}" if first == last else f"from {first} to {last}"


def _rate(side: dict[str, Any]) -> str:
    return f"{side['rate']:.1%} [{side['ci_low']:.1%}, {side['ci_high']:.1%}]"


def _side(epoch: Epoch, passes: int, n: int, first: date, last: date) -> dict[str, Any]:
    low, high = stats.wilson_interval(passes, n, confidence=CONFIDENCE)
    return {
        **epoch.columns(),
        "n": n,
        "passes": passes,
        "rate": passes / n,
        "ci_low": float(low),
        "ci_high": float(high),
        "first_day": str(first),
        "last_day": str(last),
    }
