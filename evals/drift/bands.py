"""Pass-rate bands: a stage confidently too easy (teaches nothing) or stalling (learners stuck).

Unlike the shift test, this compares a stage with fixed bounds from the config, not with its
own past, so it also catches a stage that was always out of band.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from evals import stats
from evals.config import DriftConfig, StageBand
from evals.drift.epochs import SeriesKey
from evals.drift.findings import Finding
from evals.drift.series import DailyCounts, pooled


def detect_band_violations(
    series: Mapping[SeriesKey, DailyCounts], drift: DriftConfig, as_of: date | None = None
) -> list[Finding]:
    """Stage series confidently outside their band: the whole Wilson CI above `too_easy_above`
    (the stage teaches nothing) or below `stalling_below` (learners are stuck)."""
    findings = []
    for key, one in sorted(series.items(), key=lambda item: str(item[0])):
        day = as_of or one.last_day
        band: StageBand = drift.stage_bands.get(key.stage, drift.default_band)
        n, x, start = pooled(one, day, drift.band_window_days)
        if n == 0:
            continue
        low, high = stats.wilson_interval(x, n, confidence=1 - drift.alpha)
        common = {
            "subject": key.subject,
            "statistic": "wilson_interval",
            "observed": x / n,
            "expected_low": band.stalling_below,
            "expected_high": band.too_easy_above,
            "window_start": start,
            "window_end": day,
            "evidence": {"series": key.dimensions(), "n": n, "passes": x, "ci_low": low,
                         "ci_high": high,
                         "confidence": 1 - drift.alpha},
        }
        if low > band.too_easy_above:
            findings.append(Finding(
                kind="pass_rate_too_easy", severity="warning",
                message=(f"{key.subject} looks too easy: pass rate {x / n:.1%} "
                         f"(CI {low:.1%}–{high:.1%}, {n} rows) is above its band's "
                         f"{band.too_easy_above:.0%}."),
                **common,
            ))
        elif high < band.stalling_below:
            findings.append(Finding(
                kind="pass_rate_stalling", severity="critical",
                message=(f"{key.subject} is stalling: pass rate {x / n:.1%} "
                         f"(CI {low:.1%}–{high:.1%}, {n} rows) is below its band's "
                         f"{band.stalling_below:.0%}."),
                **common,
            ))
    return findings

