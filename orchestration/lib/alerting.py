"""From a failed check to an alert row: the bridge every evalhouse check uses.

A check reads its data, decides, and writes its alerts inside one warehouse transaction
(`evals.alerts.record_alerts` does not commit), so an alert exists exactly when the decision
that raised it committed. The alert sensor delivers it later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

from evals.alerts import AlertDraft, alert_url, record_alerts, resolve_cleared
from evals.config import AlertsConfig
from orchestration.lib.partitions import day_window

if TYPE_CHECKING:
    import psycopg

CHECK_SEVERITY = {
    "critical": dg.AssetCheckSeverity.ERROR,
    "warning": dg.AssetCheckSeverity.WARN,
    "info": dg.AssetCheckSeverity.WARN,
}


def day_alert(kind: str, subject: str, day: date, message: str, **fields: Any) -> AlertDraft:
    """An alert whose window is one UTC day (the dedupe key then names the day)."""
    start, end = day_window(day)
    return AlertDraft(
        kind=kind, subject=subject, message=message, window_start=start, window_end=end, **fields
    )


def check_result(
    conn: psycopg.Connection,
    drafts_by_night: Mapping[date, Sequence[AlertDraft]],
    *,
    kinds: Sequence[str],
    metadata: dict[str, Any],
    description: str,
    alerts: AlertsConfig,
    subject: str | None = None,
) -> dg.AssetCheckResult:
    """Record each night's drafts, oldest night first, on `conn`'s open transaction, resolving
    after each night the firing alerts of `kinds` (and `subject`, when the check watches one)
    that the night did not renew; say pass/fail with the drafts. The check's metadata links
    each alert that was opened, renewed or resolved."""
    changed: list[int] = []
    resolved: list[int] = []
    for night in sorted(drafts_by_night):
        changed.extend(record_alerts(conn, drafts_by_night[night]))
        resolved.extend(resolve_cleared(conn, kinds, day_window(night)[1], subject=subject))
    drafts = [draft for night_drafts in drafts_by_night.values() for draft in night_drafts]
    worst = max((draft.severity for draft in drafts), key=_rank, default="info")
    touched = sorted(set(changed) | set(resolved))
    return dg.AssetCheckResult(
        passed=not drafts,
        severity=CHECK_SEVERITY[worst],
        description=description,
        metadata={
            **metadata,
            "alerts_raised": len(drafts),
            "alerts_changed": len(set(changed)),
            "alerts_resolved": len(set(resolved)),
            "alert_ids": dg.MetadataValue.json(touched),
            "alert_links": dg.MetadataValue.md(
                "\n".join(f"- [alert {i}]({alert_url(alerts, i)})" for i in touched) or "-"
            ),
        },
    )


def _rank(severity: str) -> int:
    return ("info", "warning", "critical").index(severity)


def run_id_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    return context.run.run_id
