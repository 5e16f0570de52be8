"""/batches, /batches/{id} and /compare: evaluation runs as a team reads them.

A batch's live record (status, heartbeat, counts) comes from raw.eval_batches, so a run in
progress or killed shows at once; its figures come from the dbt marts (fct_eval_batches and its
children; the reader is the exposure `web_batches`). Statuses are shown through
`evals.batches.effective_status`, so a killed run reads `stale`. Two runs are compared on the
items both graded (same item and trial): the paired difference in accuracy, the exact McNemar
p-value and a paired bootstrap interval (evals.stats), per-stage deltas and the flipped items.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from evals.batches import STATUSES, effective_status, stale_before
from evals.marts import load_query
from evals.stats import mcnemar_exact_p, paired_bootstrap_delta_ci, paired_counts
from evals.web.deps import WebState, state

router = APIRouter()
QUERIES = Path(__file__).with_name("queries") / "batches"
PAGE_SIZE = 100
FAILURES_SHOWN = 200
FLIPS_SHOWN = 200
FILTER_STATUSES = (*STATUSES, "stale")


def query(name: str) -> str:
    return load_query(QUERIES / f"{name}.sql")


def batch_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise HTTPException(404, "no such batch") from None


def _shown(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**row, "status": effective_status(row["status"], row["heartbeat_at"], now)}


@dataclass(frozen=True)
class BatchFilters:
    suite: str | None = None
    model: str | None = None
    family: str | None = None
    status: str | None = None

    def params(self, now: datetime) -> dict[str, Any]:
        """`stale` and `running` are both stored as running: the heartbeat tells them apart."""
        stored = "running" if self.status == "stale" else self.status
        alive = {"running": True, "stale": False}.get(self.status or "")
        return {
            "suite": self.suite,
            "model": self.model,
            "family": self.family,
            "status": stored,
            "alive": alive,
            "stale_before": stale_before(now),
            "limit": PAGE_SIZE,
        }


def list_batches(web: WebState, filters: BatchFilters) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [_shown(row, now) for row in web.db.rows(query("batch_list"), filters.params(now))]


@router.get("/batches")
def batch_list(
    request: Request, suite: str = "", model: str = "", family: str = "", status: str = ""
):
    web = state(request)
    if status and status not in FILTER_STATUSES:
        raise HTTPException(400, f"status: one of {', '.join(FILTER_STATUSES)}")
    filters = BatchFilters(suite or None, model or None, family or None, status or None)
    options = web.db.one(query("batch_options")) or {}
    return web.page(
        request,
        "batches.html",
        batches=list_batches(web, filters),
        dagster_url=web.config.alerts.dagster_url.rstrip("/"),
        filters={"suite": suite, "model": model, "family": family, "status": status},
        options={
            "suite": options.get("suite") or [],
            "model": options.get("model") or [],
            "family": options.get("family") or [],
            "status": FILTER_STATUSES,
        },
    )


def shown_batch(web: WebState, batch_id: uuid.UUID) -> dict[str, Any]:
    row = web.db.one(query("batch"), {"batch_id": batch_id})
    if row is None:
        raise HTTPException(404, "no such batch")
    return _shown(row, datetime.now(UTC))


def flipped(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pairs whose correctness differs; `fixed` when the second run got it right."""
    return [
        {**p, "fixed": bool(p["b_correct"])}
        for p in pairs
        if bool(p["a_correct"]) != bool(p["b_correct"])
    ][:FLIPS_SHOWN]


@router.get("/batches/{batch_id}")
def batch_detail(request: Request, batch_id: str):
    web = state(request)
    bid = batch_uuid(batch_id)
    batch = shown_batch(web, bid)
    previous = batch["previous_batch_id"]
    found = web.db.gather(
        {
            "breakdown": (query("breakdown"), {"batch_id": bid}),
            "failures": (query("failures"), {"batch_id": bid, "limit": FAILURES_SHOWN}),
            "pairs": (query("pairs"), {"a": previous, "b": bid}),
        }
    )
    return web.page(
        request,
        "batch.html",
        batch=batch,
        dagster_url=web.config.alerts.dagster_url.rstrip("/"),
        stages=[r for r in found["breakdown"] if r["dimension"] == "stage"],
        categories=[r for r in found["breakdown"] if r["dimension"] == "category"],
        failures=found["failures"],
        flips=flipped(found["pairs"]) if previous else [],
    )


def comparison(web: WebState, a: uuid.UUID, b: uuid.UUID) -> dict[str, Any]:
    """Run b against run a on their paired items: the figures of the compare page."""
    first, second = shown_batch(web, a), shown_batch(web, b)
    found = web.db.gather(
        {
            "pairs": (query("pairs"), {"a": a, "b": b}),
            "a_stages": (query("breakdown"), {"batch_id": a}),
            "b_stages": (query("breakdown"), {"batch_id": b}),
        }
    )
    pairs = found["pairs"]
    result: dict[str, Any] = {"a": first, "b": second, "n_pairs": len(pairs)}
    if pairs:
        base = [bool(p["a_correct"]) for p in pairs]
        cand = [bool(p["b_correct"]) for p in pairs]
        counts = paired_counts(base, cand)
        result.update(
            counts=counts,
            accuracy_a=sum(base) / len(base),
            accuracy_b=sum(cand) / len(cand),
            mcnemar_p=mcnemar_exact_p(counts.baseline_only, counts.candidate_only),
            bootstrap=paired_bootstrap_delta_ci(base, cand),
        )
    result["stages"] = _stage_deltas(found["a_stages"], found["b_stages"])
    flips = flipped(pairs)
    run_ids = [p["a_run_id"] for p in flips] + [p["b_run_id"] for p in flips]
    outputs = (
        {r["run_id"]: r for r in web.db.rows(query("outputs"), {"run_ids": run_ids})}
        if run_ids
        else {}
    )
    result["flips"] = [
        {**p, "a_output": outputs.get(p["a_run_id"]), "b_output": outputs.get(p["b_run_id"])}
        for p in flips
    ]
    return result


def _stage_deltas(a_rows: list[dict], b_rows: list[dict]) -> list[dict[str, Any]]:
    a_by = {r["dimension_value"]: r for r in a_rows if r["dimension"] == "stage"}
    b_by = {r["dimension_value"]: r for r in b_rows if r["dimension"] == "stage"}
    deltas = []
    for stage in sorted(a_by.keys() | b_by.keys()):
        first, second = a_by.get(stage), b_by.get(stage)
        deltas.append(
            {
                "stage": stage,
                "a": first,
                "b": second,
                "delta": second["accuracy"] - first["accuracy"]
                if first and second and None not in (first["accuracy"], second["accuracy"])
                else None,
            }
        )
    return deltas


def _run_of(web: WebState, text: str, suite: str) -> uuid.UUID:
    """A batch id as given, or with `suite`, the latest completed run of the model named."""
    if not suite:
        return batch_uuid(text)
    row = web.db.one(query("latest_batch"), {"suite": suite, "model": text})
    if row is None:
        raise HTTPException(404, f"no completed run of {text} on {suite}")
    return row["batch_id"]


@router.get("/compare")
def compare(request: Request, a: str = "", b: str = "", suite: str = ""):
    """Two runs by id (`a`, `b`), or two models' latest runs on one suite (`suite`, `a`, `b`)."""
    web = state(request)
    if not a or not b:
        raise HTTPException(
            400, "compare needs ?a=<batch id>&b=<batch id>, or ?suite=S&a=<model>&b=<model>"
        )
    return web.page(
        request,
        "compare.html",
        cmp=comparison(web, _run_of(web, a, suite), _run_of(web, b, suite)),
    )
