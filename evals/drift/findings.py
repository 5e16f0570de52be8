"""The finding: what every drift detector returns, shaped like a raw.alerts row.

Detectors return findings rather than writing alerts so they stay pure statistics (tested on
simulated nights without a database); evals.alerts turns them into rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

SEVERITIES = ("info", "warning", "critical")
CRITICAL_EVIDENCE = 10.0
"""Evidence this many times stronger than a test's level (p ≤ level / 10) makes it critical."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a drift check found, shaped like a raw.alerts row."""

    kind: str
    subject: str
    severity: str
    message: str
    statistic: str
    observed: float
    expected_low: float | None
    expected_high: float | None
    window_start: date
    window_end: date
    p_value: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    example_run_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @property
    def dedupe_key(self) -> str:
        """Same check, subject and window → same alert, however often the check re-runs."""
        return f"{self.kind}:{self.subject}:{self.window_start}:{self.window_end}"

    def with_examples(self, run_ids: Iterable[Any]) -> Finding:
        """The finding with example runs attached (the caller knows which rows to show)."""
        return replace(self, example_run_ids=tuple(str(run_id) for run_id in run_ids))

    def alert_row(self) -> dict[str, Any]:
        """The columns of raw.alerts this finding fills (the window as [start, end) in UTC)."""
        evidence = dict(self.evidence)
        if self.p_value is not None:
            evidence.setdefault("p_value", self.p_value)
        return {
            "dedupe_key": self.dedupe_key,
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "statistic": self.statistic,
            "observed": self.observed,
            "expected_low": self.expected_low,
            "expected_high": self.expected_high,
            "window_start": _day_start(self.window_start),
            "window_end": _day_start(self.window_end + timedelta(days=1)),
            "evidence": evidence,
            "example_run_ids": list(self.example_run_ids),
        }


def evidence_severity(
    p_value: float,
    level: float,
    *,
    effect: float | None = None,
    critical_effect: float | None = None,
) -> str:
    """The one severity rule of every detector: strength of evidence, not kind of finding.

    `level` is the (multiplicity-corrected) level the detector tested at. `warning` when the
    test rejects (p < level); `critical` when p ≤ level / CRITICAL_EVIDENCE and, for a
    detector sized for an effect, |effect| reaches `critical_effect` too (rounded: a measured
    0.0999… between 50 % and 60 % is the 10 points); `info` when p does not reach the level.
    """
    if not p_value < level:
        return "info"
    strong = p_value * CRITICAL_EVIDENCE <= level
    if effect is not None and critical_effect is not None:
        strong = strong and round(abs(effect), 9) >= critical_effect
    return "critical" if strong else "warning"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
