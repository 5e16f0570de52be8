"""Pairwise reads for the pages and the API: ratings and win-rate matrices per cohort, and one
judgment with its siblings for the run view.

A cohort is one suite version × judge model × judge prompt version × source: ratings and
matrices are never pooled across judges, versions or sources, and every label names its cohort. The marts come from
dbt (`fct_pairwise_ratings`, `fct_pairwise_matrix`; queries/pairwise/, the exposure
`web_pairwise`). A judgment's siblings (the same item, judge, contestants and batch, in every
order and trial) and the two responses come from the run log, so the run view shows a
judgment as soon as it is written. Rows follow the pairwise contract (docs/pairwise.md):
verdicts a / b / tie in the item's labelling, `attributes.position` ab (A shown first) or ba.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg

from evals.marts import load_query
from evals.web.db import WebDatabase

QUERIES = Path(__file__).with_name("queries") / "pairwise"
COHORT = ("suite", "suite_version", "judge_model", "judge_prompt_version", "source")
ORDERS = {"ab": "A shown first", "ba": "B shown first"}


def cohort_label(row: dict[str, Any]) -> str:
    """`suite@version · judge model@prompt version · source`: the cohort a figure belongs to."""
    version = (row["suite_version"] or "-")[:8]
    judge = row["judge_model"]
    if row["judge_prompt_version"]:
        judge = f"{judge}@{row['judge_prompt_version'][:10]}"
    return f"{row['suite']}@{version} · judge {judge} · {row['source']}"


def ratings(db: WebDatabase, *, suite: str | None = None, judge: str | None = None) -> list[dict]:
    return db.rows(load_query(QUERIES / "ratings.sql"), {"suite": suite, "judge": judge})


def matrix(db: WebDatabase, *, suite: str | None = None, judge: str | None = None) -> list[dict]:
    return db.rows(load_query(QUERIES / "matrix.sql"), {"suite": suite, "judge": judge})


def cohorts(rating_rows: list[dict], matrix_rows: list[dict]) -> list[dict[str, Any]]:
    """Ratings and matrix cells grouped by cohort, for the leaderboard's pairwise section.

    The matrix lists contestants in rating order, so the best is the first row and column.
    """
    grouped: dict[tuple, dict[str, Any]] = {}
    for row in rating_rows:
        key = tuple(row[c] for c in COHORT)
        cohort = grouped.setdefault(key, {"label": cohort_label(row), "ratings": [], "cells": {}})
        cohort["ratings"].append(row)
    cells: dict[tuple, dict[tuple[str, str], dict]] = defaultdict(dict)
    for row in matrix_rows:
        cells[tuple(row[c] for c in COHORT)][(row["contestant"], row["opponent"])] = row
    for key, cohort in grouped.items():
        cohort["contestants"] = [r["contestant"] for r in cohort["ratings"]]
        cohort["cells"] = cells.get(key, {})
    return list(grouped.values())


def leaderboard_section(db: WebDatabase) -> list[dict[str, Any]] | None:
    """Every cohort's ratings and matrix; None while dbt has not built the pairwise marts."""
    try:
        return cohorts(ratings(db), matrix(db))
    except psycopg.errors.UndefinedTable:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON column as a dict; ingested rows may hold any JSON there."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def is_judgment(record: dict[str, Any]) -> bool:
    """A pairwise judgment: a judge row naming the two contestants it compared."""
    attributes = _mapping(record.get("attributes"))
    return record.get("role") == "judge" and bool(attributes.get("contestant_a"))


_SIBLINGS = """
select run_id, trial, status, verdict, started_at,
       attributes ->> 'position' as position, attributes ->> 'slot_verdict' as slot_verdict
from raw.eval_runs
where role = 'judge' and suite is not distinct from %(suite)s
  and suite_version is not distinct from %(suite_version)s and item_id = %(item_id)s
  and model = %(model)s and prompt_version is not distinct from %(prompt_version)s
  and batch_id is not distinct from %(batch_id)s
  and attributes ->> 'contestant_a' = %(contestant_a)s
  and attributes ->> 'contestant_b' = %(contestant_b)s
order by trial, attributes ->> 'position', started_at
"""


def _response(
    db: WebDatabase, record: dict[str, Any], side: str, item_inputs: dict[str, Any]
) -> dict[str, Any]:
    """One side's response: its generated row when the judgment links one, else the text the
    judge was shown (its inputs) or the item's stored response."""
    attributes = _mapping(record.get("attributes"))
    run_id = _text(attributes.get(f"response_{side}_run_id"))
    row = None
    if run_id:
        row = db.one(
            "select run_id, model, prompt_version, output_text, status from raw.eval_runs"
            " where run_id::text = %s",
            (run_id,),
        )
    inputs = _mapping(record.get("inputs"))
    text = (
        row["output_text"]
        if row
        else inputs.get(f"response_{side}") or item_inputs.get(f"response_{side}")
    )
    return {
        "side": side.upper(),
        "contestant": _text(attributes.get(f"contestant_{side}")),
        "run": row,
        "run_id": run_id,
        "text": _text(text),
    }


def judgment_view(db: WebDatabase, record: dict[str, Any]) -> dict[str, Any]:
    """Both responses side by side and the judge's verdict in every order and trial of the
    item (the sibling judgments of the same item, judge, contestants and batch)."""
    attributes = _mapping(record.get("attributes"))
    params = {
        "suite": record.get("suite"),
        "suite_version": record.get("suite_version"),
        "item_id": record.get("item_id"),
        "model": record["model"],
        "prompt_version": record.get("prompt_version"),
        "batch_id": record.get("batch_id"),
        "contestant_a": _text(attributes.get("contestant_a")),
        "contestant_b": _text(attributes.get("contestant_b")),
    }
    siblings = db.rows(_SIBLINGS, params) if record.get("item_id") else []
    item = db.one(
        "select inputs from raw.golden_items where suite = %s and suite_version = %s"
        " and item_id = %s",
        (record.get("suite"), record.get("suite_version"), record.get("item_id")),
    )
    item_inputs = _mapping((item or {}).get("inputs"))
    by_trial: dict[int, dict[str, Any]] = defaultdict(dict)
    for row in siblings:
        row["order"] = ORDERS.get(row["position"] or "", row["position"] or "unknown order")
        row["preferred"] = _text(attributes.get(f"contestant_{row['verdict']}")) or row["verdict"]
        by_trial[row["trial"]][row["position"]] = row
    consistency = {
        trial: (rows["ab"]["verdict"] == rows["ba"]["verdict"])
        for trial, rows in by_trial.items()
        if {"ab", "ba"} <= rows.keys() and rows["ab"]["verdict"] and rows["ba"]["verdict"]
    }
    return {
        "question": _text(
            _mapping(record.get("inputs")).get("question") or item_inputs.get("question")
        ),
        "responses": [_response(db, record, side, item_inputs) for side in ("a", "b")],
        "siblings": siblings,
        "consistency": consistency,
    }
