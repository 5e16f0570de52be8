"""/api/v1/health: is the warehouse reachable, at the migration head, and how old are the marts.

503 when the warehouse cannot be reached; a warehouse behind the code's migrations or with no
marts yet is `degraded` (200), with the figures that say why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from evals import warehouse
from evals.marts import MartError
from evals.redact import scrub
from evals.web.api.reads import marts_loaded_through
from evals.web.deps import state

router = APIRouter(tags=["health"])


@router.get("/health", summary="Warehouse reachable, migrations at head, marts age")
def health(request: Request) -> JSONResponse:
    web = state(request)
    head = warehouse.head_revision()
    body: dict[str, Any] = {"status": "ok", "checked_at": datetime.now(UTC).isoformat()}
    try:
        current = web.db.one("select version_num from public.alembic_version")
    except psycopg.Error as exc:
        body.update(status="down", warehouse={"reachable": False, "error": scrub(str(exc))})
        return JSONResponse(body, status_code=503)
    body["warehouse"] = {"reachable": True}
    at_head = current is not None and current["version_num"] == head
    body["migrations"] = {
        "current": current and current["version_num"],
        "head": head,
        "at_head": at_head,
    }
    try:
        loaded = marts_loaded_through(web.db)
    except (MartError, psycopg.errors.UndefinedTable):
        loaded = None
    body["marts"] = {
        "built": loaded is not None,
        "runs_loaded_through": loaded.isoformat() if loaded else None,
        "age_s": round((datetime.now(UTC) - loaded).total_seconds(), 1) if loaded else None,
    }
    if not at_head or loaded is None:
        body["status"] = "degraded"
    return JSONResponse(body)
