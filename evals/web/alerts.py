"""/alerts and /alerts/{id}: what a check saw (statistic, window, evidence), every night that
found it again, example runs, ack.

Reads raw.alerts rather than the BI mart because acknowledgement must show at once, not after
the next dbt build. Acknowledging goes through `evals.alerts.acknowledge`, the table's one writer.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from evals import alerts as outbox
from evals.alerts import prompt_diff_path
from evals.web.deps import check_csrf, current_user, state
from evals.web.security import Principal

router = APIRouter()

PAGE_SIZE = 100
STATES = {
    "open": "status = 'firing' and acknowledged_at is null",
    "acknowledged": "acknowledged_at is not null",
    "resolved": "status = 'resolved'",
    "all": "true",
}
ALERT_COLUMNS = (
    "alert_id, kind, severity, subject, message, statistic, observed, expected_low, expected_high,"
    " window_start, window_end, orchestrator_run_id, created_at, delivered_at, delivery_attempts,"
    " acknowledged_at, acknowledged_by, cardinality(example_run_ids) as example_count, status,"
    " occurrences, updated_at, resolved_at"
)


@router.get("/alerts")
def alert_list(
    request: Request,
    show: str = "open",
    severity: str = "",
    kind: str = "",
    before: int | None = None,
):
    web = state(request)
    if show not in STATES:
        raise HTTPException(400, f"show must be one of {sorted(STATES)}")
    clauses, params = [STATES[show]], []
    for column, value in (("severity", severity), ("kind", kind)):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    if before is not None:
        clauses.append("alert_id < %s")
        params.append(before)
    found = web.db.gather(
        {
            "alerts": (
                f"select {ALERT_COLUMNS} from raw.alerts where {' and '.join(clauses)}"
                " order by alert_id desc limit %s",
                [*params, PAGE_SIZE + 1],
            ),
            "counts": (
                f"select count(*) filter (where {STATES['open']}) as open,"
                " count(*) as total from raw.alerts",
                (),
            ),
            "kinds": ("select distinct kind from raw.alerts order by 1", ()),
        }
    )
    alerts = found["alerts"]
    older = alerts[PAGE_SIZE - 1]["alert_id"] if len(alerts) > PAGE_SIZE else None
    return web.page(
        request,
        "alerts.html",
        alerts=alerts[:PAGE_SIZE],
        counts=found["counts"][0],
        kinds=[row["kind"] for row in found["kinds"]],
        show=show,
        severity=severity,
        kind=kind,
        older=older,
    )


@router.get("/alerts/{alert_id}")
def alert_detail(request: Request, alert_id: int, flash: str | None = None):
    web = state(request)
    alert = web.db.one(
        f"select {ALERT_COLUMNS}, evidence, example_run_ids from raw.alerts where alert_id = %s",
        (alert_id,),
    )
    if alert is None:
        raise HTTPException(404, "no such alert")
    found = web.db.gather(
        {
            "examples": (
                "select run_id, started_at, source, suite, stage, item_id, role, model, verdict,"
                " passed, status, latency_ms, cost_usd from raw.eval_runs where run_id = any(%s)"
                " order by started_at desc",
                (alert["example_run_ids"],),
            ),
            "deliveries": (
                "select webhook, attempts, last_attempt_at, last_error, delivered_at,"
                " delivered_revision from raw.alert_deliveries where alert_id = %s"
                " order by webhook",
                (alert_id,),
            ),
            "history": (
                "select window_start, window_end, severity, statistic, observed, message,"
                " recorded_at from raw.alert_occurrences where alert_id = %s"
                " order by window_end desc",
                (alert_id,),
            ),
        }
    )
    dagster_url = (
        f"{web.config.alerts.dagster_url.rstrip('/')}/runs/{alert['orchestrator_run_id']}"
        if alert["orchestrator_run_id"]
        else None
    )
    evidence = alert["evidence"]
    flat_evidence = (
        isinstance(evidence, dict)
        and bool(evidence)
        and not any(isinstance(value, dict | list) for value in evidence.values())
    )
    return web.page(
        request,
        "alert.html",
        alert=alert,
        examples=found["examples"],
        history=found["history"],
        flat_evidence=flat_evidence,
        prompt_diff=prompt_diff_path(alert),
        deliveries=found["deliveries"],
        dagster_url=dagster_url,
        acknowledged=flash == "acknowledged",
    )


@router.post("/alerts/{alert_id}/ack")
def acknowledge(
    request: Request,
    alert_id: int,
    csrf: str = Form(""),
    principal: Principal = Depends(current_user),
):
    """Mark the alert acknowledged by the signed-in user; a second ack keeps the first."""
    check_csrf(principal, csrf, request)
    web = state(request)
    exists = web.db.one("select alert_id from raw.alerts where alert_id = %s", (alert_id,))
    if exists is None:
        raise HTTPException(404, "no such alert")
    with web.db.connection() as conn:
        outbox.acknowledge(conn, alert_id, principal.name)
    return RedirectResponse(f"/alerts/{alert_id}?flash=acknowledged", status_code=303)
