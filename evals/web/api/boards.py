"""/api/v1/compare (two batches item by item), /api/v1/leaderboard (models × suites) and
/api/v1/pairwise/ratings and /matrix (pairwise ratings and win rates per cohort).

All read the marts (through `evals.web.api.reads`, and `evals.web.pairwise` as the leaderboard
page does), so they see a batch once dbt has built it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder

from evals.web import pairwise
from evals.web.api import reads
from evals.web.api.problems import Problem
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


_SUITE = Query(None, description="Only this suite.")
_JUDGE = Query(None, description="Only this judge model.")


def _cohort_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows with their cohort named (suite version × judge × judge prompt version × source)."""
    return {"rows": jsonable_encoder([{"cohort": pairwise.cohort_label(r), **r} for r in rows])}


def _read(read, request: Request, suite: str | None, judge: str | None) -> dict[str, Any]:
    try:
        return _cohort_rows(read(state(request).db, suite=suite, judge=judge))
    except psycopg.errors.UndefinedTable:
        raise Problem(
            503, "the pairwise marts are not built yet: evalhouse dbt build", slug="not-built"
        ) from None


@router.get("/pairwise/ratings", summary="Pairwise ratings with intervals, per cohort")
def pairwise_ratings(
    request: Request, suite: str | None = _SUITE, judge: str | None = _JUDGE
) -> dict[str, Any]:
    return _read(pairwise.ratings, request, suite, judge)


@router.get("/pairwise/matrix", summary="Pairwise win rates, contestant × opponent, per cohort")
def pairwise_matrix(
    request: Request, suite: str | None = _SUITE, judge: str | None = _JUDGE
) -> dict[str, Any]:
    return _read(pairwise.matrix, request, suite, judge)
