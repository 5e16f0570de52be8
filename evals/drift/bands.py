"""Pass-rate bands: a stage confidently too easy (teaches nothing) or stalling (learners stuck).

Unlike the shift test, this compares a stage with fixed bounds from the config, not with its
own past, so it also catches a stage that was always out of band. The test is the one-sided
score test of the window's rate against the bound it crossed (the Wilson interval's own test),
at `band_false_alarm_rate` split over the stages watched (Bonferroni): a stage sitting exactly
on its bound, the hardest quiet case, alarms at most that often per night, all stages together.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from evals import stats
from evals.config import DriftConfig, StageBand
from evals.drift.epochs import SeriesKey
from evals.drift.findings import Finding, evidence_severity
from evals.drift.series import DailyCounts, pooled


def detect_band_violations(
    series: Mapping[SeriesKey, DailyCounts], drift: DriftConfig, as_of: date | None = None
) -> list[Finding]:
    """Stage series confidently outside their band over the last `band_window_days`: above
    `too_easy_above` (the stage teaches nothing) or below `stalling_below` (learners are stuck).

    Give every series at once: the false-alarm budget is split among them.
    """
    level = drift.band_false_alarm_rate / max(1, len(series))
    findings = []
    for key, one in sorted(series.items(), key=lambda item: str(item[0])):
        day = as_of or one.last_day
        band: StageBand = drift.stage_bands.get(key.stage, drift.default_band)
        n, x, start = pooled(one, day, drift.band_window_days)
        if n == 0:
            continue
        low, high = stats.wilson_interval(x, n, confidence=1 - 2 * level)
        too_easy = stats.one_proportion_score_p(x, n, band.too_easy_above, "larger")
        stalling = stats.one_proportion_score_p(x, n, band.stalling_below, "smaller")
        if too_easy < level:
            kind, p, verb = "pass_rate_too_easy", too_easy, "looks too easy"
            where = f"above its band's {band.too_easy_above:.0%}"
        elif stalling < level:
            kind, p, verb = "pass_rate_stalling", stalling, "is stalling"
            where = f"below its band's {band.stalling_below:.0%}"
        else:
            continue
        findings.append(
            Finding(
                kind=kind,
                subject=key.subject,
                severity=evidence_severity(p, level),
                message=(
                    f"{key.subject} {verb}: pass rate {x / n:.1%} (CI {low:.1%}–{high:.1%}, "
                    f"{n} rows) is {where} (p = {p:.2g})."
                ),
                statistic="score_test_vs_band",
                observed=x / n,
                expected_low=band.stalling_below,
                expected_high=band.too_easy_above,
                window_start=start,
                window_end=day,
                p_value=p,
                evidence={
                    "series": key.dimensions(),
                    "n": n,
                    "passes": x,
                    "ci_low": low,
                    "ci_high": high,
                    "confidence": 1 - 2 * level,
                    "level": level,
                    "stages_watched": len(series),
                },
            )
        )
    return findings
