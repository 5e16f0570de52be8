"""Drift detectors for the nightly checks: pass-rate shifts and bands, judge agreement,
golden accuracy night over night, cost and latency spikes — each within one comparability
epoch (`epochs`) —, a pairwise judge's position bias and inconsistency (`judge_bias`, per cohort), and the effect of a version change between epochs on a rate
(`version_change`: stage pass rate, golden accuracy, judge agreement) or on a daily figure
(`version_figures`: cost per call, latency p95).

Each detector reads a small series computed by the marts (counts per day, per-item golden
outcomes, a daily cost or latency figure) and returns `Finding`s — nothing when all is quiet.
A finding carries what an alert row needs (raw.alerts): the statistic, what was observed, the
range that would have been quiet, the window, a p-value and the evidence behind it. Days are
calendar days (UTC).

One module per detector (`shift` holds the one with a false-alarm contract); this package
re-exports what the Dagster checks and the tests use.
"""

from evals.drift.agreement import detect_agreement_drift
from evals.drift.bands import detect_band_violations
from evals.drift.epochs import Epoch, SeriesKey
from evals.drift.findings import SEVERITIES, Finding, evidence_severity
from evals.drift.golden import GoldenNight, detect_golden_regressions
from evals.drift.judge_bias import detect_judge_bias
from evals.drift.series import DailyCounts
from evals.drift.shift import (
    WindowTest,
    detect_pass_rate_shifts,
    recent_window_test,
    shift_threshold,
)
from evals.drift.spikes import detect_cost_spike, detect_latency_spike, detect_spike
from evals.drift.version_change import (
    VersionChange,
    detect_version_changes,
    detect_weekly_version_changes,
    due_version_changes,
    version_change_finding,
)
from evals.drift.version_figures import detect_figure_version_changes

__all__ = [
    "SEVERITIES",
    "DailyCounts",
    "Epoch",
    "Finding",
    "GoldenNight",
    "SeriesKey",
    "VersionChange",
    "WindowTest",
    "detect_agreement_drift",
    "detect_band_violations",
    "detect_cost_spike",
    "detect_figure_version_changes",
    "detect_golden_regressions",
    "detect_judge_bias",
    "detect_latency_spike",
    "detect_pass_rate_shifts",
    "detect_spike",
    "detect_version_changes",
    "detect_weekly_version_changes",
    "due_version_changes",
    "evidence_severity",
    "recent_window_test",
    "shift_threshold",
    "version_change_finding",
]
