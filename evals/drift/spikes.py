"""Cost and latency spikes: a day's figure against the trailing median of the days before."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import numpy as np

from evals.config import DriftConfig
from evals.drift.findings import Finding
from evals.drift.series import as_date


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
