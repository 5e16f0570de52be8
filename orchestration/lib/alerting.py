"""From a failed check to an alert row: the bridge every evalhouse check uses.

A check reads its data, decides, and writes its alerts inside one warehouse transaction
(`evals.alerts.record_alerts` does not commit), so an alert exists exactly when the decision
that raised it committed. The alert sensor delivers it later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import dagster as dg

from evals.alerts import AlertDraft, alert_url, record_alerts
from evals.config import AlertsConfig
from orchestration.lib.partitions import day_window

CHECK_SEVERITY = {"critical": dg.AssetCheckSeverity.ERROR, "warning": dg.AssetCheckSeverity.WARN,
                  "info": dg.AssetCheckSeverity.WARN}


def day_alert(kind: str, subject: str, day: date, message: str, **fields: Any) -> AlertDraft:
    """An alert whose window is one UTC day (the dedupe key then names the day)."""
    start, end = day_window(day)
    return AlertDraft(kind=kind, subject=subject, message=message, window_start=start,
                      window_end=end, **fields)


def check_result(conn, drafts: Sequence[AlertDraft], *, metadata: dict[str, Any],
                 description: str, alerts: AlertsConfig) -> dg.AssetCheckResult:
    """Record the drafts (deduped) on `conn`'s open transaction and say pass/fail with them;
    the check's metadata links each new alert's page in the run view."""
    new_ids = record_alerts(conn, drafts)
    worst = max((draft.severity for draft in drafts), key=_rank, default="info")
    return dg.AssetCheckResult(
        passed=not drafts,
        severity=CHECK_SEVERITY[worst],
        description=description,
        metadata={
            **metadata,
            "alerts_raised": len(drafts),
            "alerts_new": len(new_ids),
            "alert_ids": dg.MetadataValue.json(new_ids),
            "alert_links": dg.MetadataValue.md(
                "\n".join(f"- [alert {i}]({alert_url(alerts, i)})" for i in new_ids) or "-"
            ),
        },
    )


def _rank(severity: str) -> int:
    return ("info", "warning", "critical").index(severity)


def run_id_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    return context.run.run_id
