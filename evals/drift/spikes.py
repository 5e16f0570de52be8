"""Cost and latency spikes: a day's figure against the days before it.

A spike must be large (at least `ratio` times the trailing median and `min_abs` above it: the
size somebody would act on) and unusual for this series: today's log value, predicted from the
log values of the `baseline_days` before (Student's t prediction interval, so a series that
wobbles day to day needs a bigger jump than a steady one), is beyond the one-sided level
`spike_false_alarm_rate` / series watched (Bonferroni over every series the check tests that
night, per kind). The ratio alone would page on a small, noisy series (a p95 over a few dozen
calls) far more often than the budget allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import numpy as np
from scipy import stats as _sp

from evals.config import DriftConfig
from evals.drift.findings import Finding, evidence_severity
from evals.drift.series import as_date

LOG_FLOOR = 1e-12
"""Values are logged after flooring here: a free model's 0 USD stays a finite point."""


def prediction_p(history: Sequence[float], today: float, *, two_sided: bool = False) -> float:
    """P-value that `today` comes from the history's (log-normal) distribution: one-sided (a
    rise), or two-sided (a move either way, for a version change).

    t = (log today − mean) / (sd · √(1 + 1/m)) with m − 1 degrees of freedom; a history with no
    spread gives 0 for any rise (any move, two-sided) and 1 otherwise.
    """
    logs = np.log(np.maximum(np.asarray(history, dtype=float), LOG_FLOOR))
    now = math.log(max(today, LOG_FLOOR))
    spread = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
    if spread == 0.0:
        moved = now != float(logs.mean()) if two_sided else now > float(logs.mean())
        return 0.0 if moved else 1.0
    t = (now - float(logs.mean())) / (spread * math.sqrt(1 + 1 / len(logs)))
    if two_sided:
        return float(min(1.0, 2 * _sp.t.sf(abs(t), len(logs) - 1)))
    return float(_sp.t.sf(t, len(logs) - 1))


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
    series_watched: int = 1,
) -> list[Finding]:
    """Today's value at least `ratio` times the trailing median, at least `min_abs` above it,
    and beyond the t prediction bound at its share of `spike_false_alarm_rate`.

    The median of the `baseline_days` before shrugs off one earlier spike for the ratio; the
    absolute floor keeps a tiny figure doubling (0.1 ms → 0.2 ms) from paging anyone.
    """
    points = dict(values.items() if isinstance(values, Mapping) else values)
    points = {as_date(day): float(value) for day, value in points.items() if value is not None}
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
    level = drift.spike_false_alarm_rate / max(1, series_watched)
    p = prediction_p(history, today)
    if not p < level:
        return []
    observed_ratio = today / baseline if baseline > 0 else math.inf
    return [
        Finding(
            kind=kind,
            subject=subject,
            severity=evidence_severity(p, level),
            message=(
                f"{kind.replace('_', ' ').capitalize()} for {subject}: {today:.6g} {unit} on "
                f"{day}, {observed_ratio:.2f}× the {len(history)}-day median {baseline:.6g} "
                f"(p = {p:.2g})."
            ),
            statistic="ratio_to_trailing_median",
            observed=today,
            expected_low=0.0,
            expected_high=max(baseline * ratio, baseline + min_abs),
            window_start=day,
            window_end=day,
            p_value=p,
            evidence={
                "ratio": observed_ratio,
                "trailing_median": baseline,
                "baseline_days": len(history),
                "threshold_ratio": ratio,
                "min_abs": min_abs,
                "level": level,
                "series_watched": series_watched,
            },
        )
    ]


def detect_cost_spike(
    cost_per_call: Mapping[date, float] | Sequence[tuple[date, float]],
    drift: DriftConfig,
    *,
    subject: str,
    as_of: date | None = None,
    series_watched: int = 1,
) -> list[Finding]:
    """Mean cost per call (USD) of a day against the days before."""
    return detect_spike(
        cost_per_call,
        kind="cost_spike",
        subject=subject,
        unit="USD/call",
        ratio=drift.cost_spike_ratio,
        min_abs=drift.cost_spike_min_abs_usd,
        drift=drift,
        as_of=as_of,
        series_watched=series_watched,
    )


def detect_latency_spike(
    latency_ms: Mapping[date, float] | Sequence[tuple[date, float]],
    drift: DriftConfig,
    *,
    subject: str,
    as_of: date | None = None,
    series_watched: int = 1,
) -> list[Finding]:
    """A day's latency figure (p95 ms, say) against the days before."""
    return detect_spike(
        latency_ms,
        kind="latency_spike",
        subject=subject,
        unit="ms",
        ratio=drift.latency_spike_ratio,
        min_abs=drift.latency_spike_min_abs_ms,
        drift=drift,
        as_of=as_of,
        series_watched=series_watched,
    )
