"""/api/v1/batches: start an evaluation, list them, one of them.

Starting queues the request (`evals.batch_requests.submit`), hands it to a Dagster run where
the code location is deployed (`evals.batch_launch`) or else to the server's batch worker, and
answers 202 with its id; the callback (and the webhooks) hear the result once it ends.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from evals import batch_launch, batch_requests
from evals.alerts import dagster_run_url
from evals.web.api import reads
from evals.web.api.auth import ApiCaller, api_caller
from evals.web.api.problems import Problem
from evals.web.deps import state
from evals.web.run_queries import BadFilter, decode_cursor, keyset_cursor

router = APIRouter(tags=["batches"])
log = logging.getLogger(__name__)


class BatchIn(BaseModel):
    """An evaluation to start: a configured suite and model; the rest optional."""

    model_config = ConfigDict(extra="forbid")
    suite: str = Field(description="A suite under `suites:` in evalhouse.yaml.")
    model: str = Field(description="A model under `models:` in evalhouse.yaml.")
    judge: str | None = Field(None, description="Judge model for answer suites.")
    limit: int | None = Field(None, ge=1, description="First N items only.")
    trials: int = Field(1, ge=1, le=100)
    callback_url: AnyHttpUrl | None = Field(
        None, description="POSTed the result once the batch ends (retried until a 2xx)."
    )
    baseline: str | None = Field(
        None,
        description="MODEL or MODEL@PROMPT_VERSION: add a release-gate decision "
        "(this model as the candidate) to the summary.",
    )


def _check_names(request: Request, body: BatchIn) -> None:
    config = state(request).config
    for field, value, known in (
        ("suite", body.suite, config.suites),
        ("model", body.model, config.models),
        ("judge", body.judge, config.models),
    ):
        if value is not None and value not in known:
            raise Problem(
                422,
                f"{field}: {value!r} is not configured",
                slug="validation",
                errors=[{"field": field, "message": f"unknown {field}; known: {sorted(known)}"}],
            )
    if body.baseline is not None and body.baseline.split("@", 1)[0] not in config.models:
        raise Problem(
            422,
            f"baseline: {body.baseline!r} names no configured model",
            slug="validation",
            errors=[{"field": "baseline", "message": "unknown model"}],
        )


@router.post(
    "/batches",
    status_code=202,
    summary="Start an evaluation; answers at once with its id",
    responses={202: {"description": "Queued; poll `links.self` or wait for the callback."}},
)
def start_batch(
    request: Request, body: BatchIn, caller: ApiCaller = Depends(api_caller)
) -> JSONResponse:
    _check_names(request, body)
    spec = batch_requests.BatchSpec(
        suite=body.suite,
        model=body.model,
        judge=body.judge,
        limit=body.limit,
        trials=body.trials,
        callback_url=str(body.callback_url) if body.callback_url else None,
        baseline=body.baseline,
    )
    with state(request).db.connection() as conn:
        request_id = batch_requests.submit(conn, spec, caller.name)
    location = f"/api/v1/batches/{request_id}"
    links = {"self": location}
    runner = _hand_over(request, request_id, caller.name, links)
    return JSONResponse(
        {
            "request_id": str(request_id),
            "batch_key": batch_requests.batch_key(request_id),
            "status": "queued",
            "runner": runner,
            "links": links,
        },
        status_code=202,
        headers={"location": location},
    )


def _hand_over(request: Request, request_id: uuid.UUID, by: str, links: dict[str, str]) -> str:
    """Launch the request's Dagster run, else give it to this server's worker: who runs it
    (`dagster`, `server`, or `queued` for a server that has neither)."""
    launcher = request.app.state.batch_launcher
    if launcher is not None:
        try:
            run_id = launcher.launch(request_id, by)
        except batch_launch.LaunchError as exc:
            log.warning("batch %s: %s; this server runs it", request_id, exc)
        else:
            with state(request).db.connection() as conn:
                batch_requests.launched(conn, request_id, run_id)
            links["dagster_run"] = launcher.run_url(run_id)
            return "dagster"
    if (worker := request.app.state.batch_worker) is not None:
        worker.take(request_id)
        return "server"
    return "queued"


def _linked(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each request with `dagster_run_url`: its Dagster run in the UI at alerts.dagster_url."""
    alerts = state(request).config.alerts
    return [
        {
            **row,
            "dagster_run_url": (
                dagster_run_url(alerts, row["dagster_run_id"]) if row["dagster_run_id"] else None
            ),
        }
        for row in rows
    ]


def _position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    try:
        return decode_cursor(cursor) if cursor else None
    except BadFilter as exc:
        raise Problem(400, str(exc), slug="bad-filter") from None


@router.get("/batches", summary="Batches, newest first, keyset-paginated")
def list_batches(
    request: Request,
    status: str = "",
    model: str = "",
    suite: str = "",
    cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
    limit: int = Query(100, ge=1, le=500),
) -> dict[str, Any]:
    rows = reads.list_batches(
        state(request).db,
        status=status,
        model=model,
        suite=suite,
        before=_position(cursor),
        limit=limit,
    )
    return {
        "batches": jsonable_encoder(_linked(request, rows[:limit])),
        "next_cursor": (
            keyset_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["request_id"])
            if len(rows) > limit
            else None
        ),
    }


@router.get("/batches/{request_id}", summary="One batch: request, state, counts, summary")
def get_batch(request: Request, request_id: uuid.UUID) -> dict[str, Any]:
    found = reads.batch_detail(state(request).db, request_id)
    if found is None:
        raise Problem(404, f"no batch {request_id}", slug="not-found")
    return jsonable_encoder(_linked(request, [found])[0])
