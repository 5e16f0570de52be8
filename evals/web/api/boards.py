"""/api/v1/compare (two batches item by item) and /api/v1/leaderboard (models × suites).

Both read the marts through `evals.web.api.reads`, so they see a batch once dbt has built it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder

from evals.web.api import reads
from evals.web.deps import state

router = APIRouter(tags=["compare and leaderboard"])


@router.get("/compare", summary="Two batches side by side, paired by item")
def compare(
    request: Request,
    a: str = Query(description="Batch key of the reference run."),
    b: str = Query(description="Batch key of the run compared with it."),
    a_model: str | None = Query(None, description="Only this model's outcomes of batch a."),
    b_model: str | None = Query(None, description="Only this model's outcomes of batch b."),
) -> dict[str, Any]:
    return jsonable_encoder(reads.compare_batches(state(request).db, a, b, a_model, b_model))


@router.get("/leaderboard", summary="Models × suites with intervals")
def leaderboard(
    request: Request, suite: str | None = None, role: str | None = None
) -> dict[str, Any]:
    return {"rows": jsonable_encoder(reads.leaderboard(state(request).db, suite=suite, role=role))}
