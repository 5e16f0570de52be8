"""The reads behind batches, compare, leaderboard and health: one named function each.

They take the web database and return plain dicts, so the routers stay thin and the sources can
change under them. A batch is an evaluation started through the API: its own state (queued,
running, stale, callback) is its raw.batch_requests row, read live and paged by (created_at,
request_id) so a page never shifts while requests arrive; its figures are the marts' (the
evaluation-run record's fct_eval_batches row and, for one batch, fct_eval_batch_breakdown), as
of the last dbt build, null before it. Compare pairs two batches' golden outcomes
(fct_golden_outcomes). Mart SQL lives in `evals/web/api_queries/` (the dbt exposure `web_api`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from evals.batch_requests import COLUMNS as REQUEST_COLUMNS
from evals.marts import load_query
from evals.stats import mcnemar_exact_p, paired_bootstrap_delta_ci, paired_counts
from evals.web.db import WebDatabase

QUERIES = Path(__file__).resolve().parents[1] / "api_queries"
BOOTSTRAP_SAMPLES = 2000
FLIPPED_SHOWN = 200


def marts_loaded_through(db: WebDatabase) -> datetime | None:
    row = db.one(load_query(QUERIES / "marts_loaded_through.sql"))
    return row["loaded_through"] if row else None


def list_batches(
    db: WebDatabase,
    *,
    status: str = "",
    model: str = "",
    suite: str = "",
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Batches newest first (limit + 1 rows: one more says another page follows)."""
    clauses, params = ["true"], []
    for column, value in (("status", status), ("model", model), ("suite", suite)):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    if before is not None:
        clauses.append("(created_at, request_id) < (%s, %s)")
        params += list(before)
    requests = db.rows(
        f"select {REQUEST_COLUMNS} from raw.batch_requests where {' and '.join(clauses)}"
        " order by created_at desc, request_id desc limit %s",
        [*params, limit + 1],
    )
    return _with_figures(db, requests, breakdown=False)


def batch_detail(db: WebDatabase, request_id: uuid.UUID) -> dict[str, Any] | None:
    """One batch: the request, its state, and its run's figures with the per-stage and
    per-category breakdown."""
    request = db.one(
        f"select {REQUEST_COLUMNS} from raw.batch_requests where request_id = %s", (request_id,)
    )
    return None if request is None else _with_figures(db, [request], breakdown=True)[0]


def _with_figures(
    db: WebDatabase, requests: list[dict[str, Any]], *, breakdown: bool
) -> list[dict[str, Any]]:
    """Each request with `figures`: its run's fct_eval_batches row, or None until dbt built it
    (or when the warehouse has no marts yet: a request's state never waits for dbt)."""
    figures: dict[tuple[str, str], dict[str, Any]] = {}
    if requests:
        try:
            found = db.rows(
                load_query(QUERIES / "batch_figures.sql"),
                {"batch_keys": [r["batch_key"] for r in requests], "breakdown": breakdown},
            )
        except psycopg.errors.UndefinedTable:
            found = []
        for row in found:
            key = (row.pop("batch_key"), row.pop("model"))
            if not breakdown:
                row.pop("breakdown")
            figures[key] = {**row, "links": {"page": f"/batches/{row['batch_id']}"}}
    return [{**r, "figures": figures.get((r["batch_key"], r["model"]))} for r in requests]


def compare_batches(
    db: WebDatabase, a: str, b: str, a_model: str | None = None, b_model: str | None = None
) -> dict[str, Any]:
    """Two batches (batch keys, each optionally narrowed to one model) paired by item and
    trial: accuracies, the paired difference (b - a) with McNemar's exact p and a bootstrap
    interval, per-stage deltas, and the items that flipped."""
    query = load_query(QUERIES / "batch_outcomes.sql")
    found = db.gather(
        {
            "a": (query, {"batch_id": a, "model": a_model}),
            "b": (query, {"batch_id": b, "model": b_model}),
        }
    )
    side_a = {
        (row["item_id"], row["trial"]): row for row in found["a"] if row["outcome"] != "unjudged"
    }
    side_b = {
        (row["item_id"], row["trial"]): row for row in found["b"] if row["outcome"] != "unjudged"
    }
    keys = sorted(side_a.keys() & side_b.keys())
    result: dict[str, Any] = {
        "a": {
            "batch_key": a,
            "model": a_model,
            "outcomes": len(side_a),
            "accuracy": _accuracy(side_a.values()),
        },
        "b": {
            "batch_key": b,
            "model": b_model,
            "outcomes": len(side_b),
            "accuracy": _accuracy(side_b.values()),
        },
        "paired": len(keys),
    }
    if not keys:
        return result
    base = [bool(side_a[key]["is_correct"]) for key in keys]
    cand = [bool(side_b[key]["is_correct"]) for key in keys]
    counts = paired_counts(base, cand)
    interval = paired_bootstrap_delta_ci(base, cand, n_resamples=BOOTSTRAP_SAMPLES)
    stages: dict[str, list[int]] = {}
    for key, right_a, right_b in zip(keys, base, cand, strict=True):
        tally = stages.setdefault(side_a[key]["stage"] or "(none)", [0, 0, 0])
        tally[0] += 1
        tally[1] += right_a
        tally[2] += right_b
    flipped = [
        {
            "item_id": key[0],
            "trial": key[1],
            "a_correct": right_a,
            "b_correct": right_b,
            "a_run_id": str(side_a[key]["run_id"]),
            "b_run_id": str(side_b[key]["run_id"]),
        }
        for key, right_a, right_b in zip(keys, base, cand, strict=True)
        if right_a != right_b
    ]
    result.update(
        both_correct=counts.both,
        a_only=counts.baseline_only,
        b_only=counts.candidate_only,
        neither=counts.neither,
        delta=counts.delta,
        mcnemar_p=mcnemar_exact_p(counts.baseline_only, counts.candidate_only),
        delta_ci={"low": interval.low, "high": interval.high, "confidence": interval.confidence},
        stages=[
            {
                "stage": stage,
                "n": n,
                "a_accuracy": ra / n,
                "b_accuracy": rb / n,
                "delta": (rb - ra) / n,
            }
            for stage, (n, ra, rb) in sorted(stages.items())
        ],
        flipped=flipped[:FLIPPED_SHOWN],
        flipped_total=len(flipped),
    )
    return result


def _accuracy(rows) -> float | None:
    rows = list(rows)
    return sum(bool(row["is_correct"]) for row in rows) / len(rows) if rows else None


def leaderboard(
    db: WebDatabase, *, suite: str | None = None, role: str | None = None
) -> list[dict]:
    """Models × suites (newest suite version): accuracy, interval, coverage, rank."""
    return db.rows(load_query(QUERIES / "leaderboard.sql"), {"suite": suite, "role": role})
