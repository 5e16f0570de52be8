"""/api/v1/runs: the run log filtered and keyset-paginated, one run whole, and ingestion.

Listing shares the /runs page's filters and keyset (`evals.web.run_queries`): pages follow
(started_at, run_id) descending, so rows inserted while a client pages never repeat or skip a
row that existed when it started (a row newer than the cursor sorts before it).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.encoders import jsonable_encoder

from evals.capture.prepare import RowPreparer
from evals.redact import PiiRedactor, secret_env_values
from evals.web.api.ingest import RunsIn, RunsStored, ingest
from evals.web.api.problems import Problem
from evals.web.deps import state
from evals.web.run_queries import (
    LIST_COLUMNS,
    BadFilter,
    RunFilters,
    encode_cursor,
    page_query,
)

router = APIRouter(tags=["runs"])
MAX_LIMIT = 500


@router.get("/runs", summary="Runs, newest first, filtered, keyset-paginated")
def list_runs(
    request: Request,
    suite: str = "",
    stage: str = "",
    model: str = Query("", description="The model asked for, or the one that answered."),
    prompt_version: str = "",
    verdict: str = "",
    status: str = "",
    source: str = "",
    role: str = "",
    item_id: str = "",
    date_from: str = Query("", description="First day (YYYY-MM-DD, UTC), inclusive."),
    date_to: str = Query("", description="Last day (YYYY-MM-DD, UTC), inclusive."),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    filters = RunFilters(
        suite=suite,
        stage=stage,
        model=model,
        prompt_version=prompt_version,
        verdict=verdict,
        status=status,
        source=source,
        role=role,
        item_id=item_id,
        date_from=date_from,
        date_to=date_to,
    )
    try:
        sql, params = page_query(filters, cursor, limit)
    except BadFilter as exc:
        raise Problem(400, str(exc), slug="bad-filter") from None
    rows = state(request).db.rows(sql, params)
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return {
        "runs": jsonable_encoder(rows[:limit]),
        "next_cursor": next_cursor,
        "columns": list(LIST_COLUMNS),
    }


@router.get("/runs/{run_id}", summary="One run, every stored column")
def get_run(request: Request, run_id: uuid.UUID) -> dict[str, Any]:
    web = state(request)
    row = web.db.one("select * from raw.eval_runs where run_id = %s", (run_id,))
    if row is None:
        raise Problem(404, f"no run {run_id}", slug="not-found")
    return jsonable_encoder(web.scrub.value(row))


@router.post(
    "/runs",
    summary="Ingest run-log records (idempotent by key)",
    status_code=201,
    responses={
        200: {"description": "Every record was already stored."},
        413: {"description": "Body or record count over the limits."},
        422: {"description": "A record is invalid; `errors` names each field."},
    },
)
def post_runs(
    request: Request,
    response: Response,
    body: RunsIn,
) -> RunsStored:
    limit = request.app.state.settings.max_runs_per_request
    if len(body.runs) > limit:
        raise Problem(
            413, f"{len(body.runs)} records in one request; the limit is {limit}", slug="too-large"
        )
    web = state(request)
    # One preparer per request: capture's redaction with the environment's secrets read once.
    capture = web.config.capture
    prepare = RowPreparer(
        PiiRedactor(capture.redact_pii, capture.redact_patterns),
        None,
        request.app.state.parse_verdict,
        env_secrets=secret_env_values(),
    )
    with web.db.connection() as conn:
        stored = ingest(conn, prepare, body.runs)
    if not stored.created:
        response.status_code = 200
    return stored
