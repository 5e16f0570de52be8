"""/leaderboard and /models/{family}: models side by side, and a family across checkpoints.

The leaderboard takes each model's latest completed run per suite (fct_eval_batches): accuracy
with its Wilson interval, coverage (items graded / items in the suite version), cost per correct
verdict against accuracy, and the latest run beside the model's best on the same yardstick. The
heatmap pools those same runs per model × stage. Its pairwise section shows each cohort's
ratings with intervals and win-rate matrix (`evals.web.pairwise`). A family's page draws fct_model_checkpoints:
accuracy by training step with intervals, the best checkpoint and the regressions it flags.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from evals.web import charts, pairwise
from evals.web.batches import query
from evals.web.deps import state

router = APIRouter()
HEAT_LEVELS = 10


def heat_level(rate: float | None) -> int | None:
    """The CSS class step (heat-0 .. heat-10) of a pass rate; None when nothing was graded."""
    return None if rate is None else round(rate * HEAT_LEVELS)


def heatmap(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Model × stage pass rates as a grid: rows by model, columns by stage."""
    stages = sorted({r["stage"] for r in rows})
    cells: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        rate = r["n_correct"] / r["n_graded"] if r["n_graded"] else None
        cells[r["model"]][r["stage"]] = {**r, "rate": rate, "level": heat_level(rate)}
    return {"stages": stages, "models": sorted(cells), "cells": cells}


def _scatter(board: list[dict[str, Any]]) -> Any:
    points: dict[str, list] = defaultdict(list)
    for r in board:
        if r["cost_per_correct_usd"] is not None:
            points[r["suite"]].append(
                (r["cost_per_correct_usd"], r["accuracy"], None, None, r["model"])
            )
    return charts.xy_chart(
        points,
        x_label="cost per correct verdict",
        y_label="accuracy",
        x_format=charts.usd,
        y_format=charts.percent,
        lines=False,
        y_max=1.0,
    )


@router.get("/leaderboard")
def leaderboard(request: Request):
    web = state(request)
    found = web.db.gather({"board": (query("leaderboard"), {}), "heat": (query("heatmap"), {})})
    board = found["board"]
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in board:
        by_suite[r["suite"]].append(r)
    return web.page(
        request,
        "leaderboard.html",
        by_suite=dict(by_suite),
        heat=heatmap(found["heat"]),
        scatter=_scatter(board),
        pairwise=pairwise.leaderboard_section(web.db),
    )


def family_view(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The '(all)' curve per suite as a chart, the best checkpoints, and the regressions."""
    curves: dict[str, list] = defaultdict(list)
    for r in rows:
        if r["stage"] == "(all)" and r["model_step"] is not None:
            curves[f"{r['suite']}@{r['suite_version'][:8]}"].append(
                (
                    float(r["model_step"]),
                    r["accuracy"],
                    r["accuracy_ci_low"],
                    r["accuracy_ci_high"],
                    r["model_checkpoint"] or r["model"],
                )
            )
    return {
        "chart": charts.xy_chart(
            curves,
            x_label="training step",
            y_label="accuracy (95 % interval)",
            x_format=charts.count,
            y_format=charts.percent,
            lines=True,
            y_max=1.0,
        ),
        "rows": rows,
        "best": [r for r in rows if r["is_best"] and r["stage"] == "(all)"],
        "best_overall": next((r for r in rows if r["is_best_overall"]), None),
        "regressions": [r for r in rows if r["regressed"]],
    }


@router.get("/models/{family}")
def model_family(request: Request, family: str):
    web = state(request)
    rows = web.db.rows(query("family"), {"family": family})
    if not rows:
        raise HTTPException(404, "no checkpoints of that family have completed runs")
    return web.page(request, "family.html", family=family, view=family_view(rows))
