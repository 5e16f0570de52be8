"""/api/v1/alerts: the alert incidents (raw.alerts, so an acknowledgement shows at once) and
acknowledging one through `evals.alerts.acknowledge`, the table's one writer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder

from evals import alerts as outbox
from evals.web.alerts import ALERT_COLUMNS, STATES
from evals.web.api.auth import ApiCaller, api_caller
from evals.web.api.problems import Problem
from evals.web.deps import state

router = APIRouter(tags=["alerts"])


def _alert(request: Request, alert_id: int) -> dict[str, Any]:
    found = state(request).db.one(
        f"select {ALERT_COLUMNS}, evidence, example_run_ids from raw.alerts where alert_id = %s",
        (alert_id,),
    )
    if found is None:
        raise Problem(404, f"no alert {alert_id}", slug="not-found")
    return found


@router.get("/alerts", summary="Alerts, newest first, keyset-paginated by id")
def list_alerts(
    request: Request,
    show: str = Query("open", description=f"One of {sorted(STATES)}."),
    severity: str = "",
    kind: str = "",
    cursor: int | None = Query(None, description="`next_cursor` of the previous page."),
    limit: int = Query(100, ge=1, le=500),
) -> dict[str, Any]:
    if show not in STATES:
        raise Problem(400, f"show must be one of {sorted(STATES)}", slug="bad-filter")
    clauses, params = [STATES[show]], []
    for column, value in (("severity", severity), ("kind", kind)):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    if cursor is not None:
        clauses.append("alert_id < %s")
        params.append(cursor)
    rows = state(request).db.rows(
        f"select {ALERT_COLUMNS} from raw.alerts where {' and '.join(clauses)}"
        " order by alert_id desc limit %s",
        [*params, limit + 1],
    )
    return {
        "alerts": jsonable_encoder(rows[:limit]),
        "next_cursor": rows[limit - 1]["alert_id"] if len(rows) > limit else None,
    }


@router.get("/alerts/{alert_id}", summary="One alert with its evidence and example runs")
def get_alert(request: Request, alert_id: int) -> dict[str, Any]:
    return jsonable_encoder(_alert(request, alert_id))


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert (the first ack is kept)")
def acknowledge(
    request: Request, alert_id: int, caller: ApiCaller = Depends(api_caller)
) -> dict[str, Any]:
    _alert(request, alert_id)
    with state(request).db.connection() as conn:
        outbox.acknowledge(conn, alert_id, caller.name)
    after = _alert(request, alert_id)
    return jsonable_encoder(
        {key: after[key] for key in ("alert_id", "status", "acknowledged_at", "acknowledged_by")}
    )
