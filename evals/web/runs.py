"""/runs (search, keyset pages, CSV/JSON export) and /runs/{id} (the whole record, replay, review).

The record, its parent, children, reviews and prompt template come from `evals.replay`, the same
code behind `evalhouse show`, so the page and the CLI never disagree about what a run was.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from evals import replay, reviews
from evals.runlog import ROLES, SOURCES, STATUSES
from evals.web import charts, diffs, pairwise
from evals.web.deps import WebState, check_csrf, current_user, state
from evals.web.run_queries import (
    LIST_COLUMNS,
    PAGE_SIZE,
    BadFilter,
    RunFilters,
    encode_cursor,
    export_query,
    page_query,
)
from evals.web.security import Principal
from evals.web.timeline import timeline

log = logging.getLogger(__name__)
router = APIRouter()

NOTES_MAX = 5000
# flash code -> (kind, message, the page section it belongs to)
_FLASH = {
    "reviewed": ("ok", "Review saved.", "reviews"),
    "already-reviewed": (
        "error",
        "You have already reviewed this run; reviews are not edited.",
        "reviews",
    ),
    "bad-verdict": ("error", "Choose a verdict from the suite's vocabulary.", "reviews"),
    "bad-score": ("error", "The score must be a number between 0 and 1.", "reviews"),
    "bad-tags": ("error", "Issue tags must come from the suite's taxonomy.", "reviews"),
    "replayed": ("ok", "Replayed: the new run is shown beside the original below.", "compare"),
    "replay-failed": (
        "error",
        "This run cannot be replayed that way (no stored inputs or messages for it).",
        "replay",
    ),
    "bad-replay": ("error", "Unknown model or prompt version for this run.", "replay"),
    "replay-error": ("error", "The replay could not run; the server log says why.", "replay"),
}


def _run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise HTTPException(404, "no such run") from None


def _stored_run(web: WebState, run_id: uuid.UUID, columns: str) -> dict:
    """The run's `columns` (a fixed list written in this module), or 404 for a form posted to
    a run that does not exist."""
    record = web.db.one(f"select {columns} from raw.eval_runs where run_id = %s", (run_id,))
    if record is None:
        raise HTTPException(404, "no such run")
    return record


def _filter_options(web: WebState) -> dict[str, list[str]]:
    """Values for the filter datalists, from the small dimension tables (never the run log)."""
    found = web.db.gather(
        {
            "suite": ("select distinct suite as v from raw.golden_suites order by 1", ()),
            "stage": (
                "select distinct stage as v from raw.golden_items"
                " where stage is not null order by 1",
                (),
            ),
            "prompt_version": (
                "select prompt_version as v from raw.prompt_versions"
                " order by created_at desc limit 200",
                (),
            ),
            "verdict": (
                "select distinct unnest(verdicts) as v from raw.golden_suites order by 1",
                (),
            ),
        }
    )
    options = {name: [row["v"] for row in rows] for name, rows in found.items()}
    options.update(
        model=sorted(web.config.models),
        source=list(SOURCES),
        status=list(STATUSES),
        role=list(ROLES),
    )
    return options


@router.get("/runs")
def run_list(
    request: Request,
    filters: RunFilters = Depends(),
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
):
    web = state(request)
    limit = max(1, min(limit, 500))
    try:
        sql, params = page_query(filters, cursor, limit)
    except BadFilter as exc:
        raise HTTPException(400, str(exc)) from None
    rows = web.db.rows(sql, params)
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    query = filters.as_query()
    return web.page(
        request,
        "runs.html",
        runs=rows[:limit],
        filters=filters,
        options=_filter_options(web),
        next_url=f"/runs?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None,
        first_url=f"/runs?{urlencode(query)}" if cursor else None,
        export_query=urlencode(query),
    )


def _export_rows(web: WebState, filters: RunFilters, limit: int) -> Iterator[dict[str, Any]]:
    """Rows for an export, streamed from a server-side cursor and scrubbed one by one."""
    sql, params = export_query(filters, limit)
    with (
        web.db.connection() as conn,
        conn.transaction(),
        conn.cursor(name="evalhouse_export") as cur,
    ):
        cur.execute(sql, params)
        for row in cur:
            yield web.scrub.value({k: row[k] for k in LIST_COLUMNS})


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """OWASP's rule against CSV injection: a text cell a spreadsheet would run as a formula
    (`=HYPERLINK(…)` in a model's output) gets a leading `'`; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LIST_COLUMNS)
    writer.writeheader()
    for row in rows:
        row["issue_tags"] = ";".join(row["issue_tags"] or [])
        writer.writerow({name: _csv_cell(value) for name, value in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row, default=str, ensure_ascii=False)
    yield "]\n"


_EXPORTS = {
    "csv": (_csv_lines, "text/csv; charset=utf-8"),
    "json": (_json_lines, "application/json"),
}


@router.get("/runs.{fmt}")
def run_export(request: Request, fmt: str, filters: RunFilters = Depends(), limit: int = 10_000):
    """The filtered run list as CSV or JSON (newest first, at most `limit` rows).

    The query runs, and its first row arrives, before the response starts: a failure is then an
    error status, not a 200 whose body stops short.
    """
    web = state(request)
    if fmt not in _EXPORTS:
        raise HTTPException(404, "export formats: csv, json")
    try:
        filters.where()
    except BadFilter as exc:
        raise HTTPException(400, str(exc)) from None
    rows = _export_rows(web, filters, max(1, limit))
    first = next(rows, None)
    lines, media = _EXPORTS[fmt]
    body = lines(itertools.chain([first], rows) if first is not None else iter(()))
    return StreamingResponse(
        body,
        media_type=media,
        headers={"content-disposition": f'attachment; filename="evalhouse-runs.{fmt}"'},
    )


def _suite_vocabulary(web: WebState, record: dict[str, Any]) -> dict[str, list[str]]:
    row = web.db.one(
        "select verdicts, issue_tags from raw.golden_suites where suite = %s"
        " order by (suite_version = %s) desc, loaded_at desc limit 1",
        (record.get("suite"), record.get("suite_version")),
    )
    return {
        "verdicts": row["verdicts"] if row else [],
        "issue_tags": row["issue_tags"] if row else [],
    }


def _prompt_context(
    web: WebState, record: dict[str, Any], template: str | None, against: str | None
) -> dict[str, Any]:
    """Other versions of the run's prompt, and a diff of its template against one of them."""
    name = record.get("prompt_name")
    versions = (
        web.db.rows(
            "select prompt_version, created_at from raw.prompt_versions where prompt_name = %s"
            " order by created_at",
            (name,),
        )
        if name
        else []
    )
    others = [v for v in versions if v["prompt_version"] != record.get("prompt_version")]
    against = against or (others[-1]["prompt_version"] if others else None)
    diff: list[diffs.DiffLine] = []
    if against and template is not None:
        other = web.db.one(
            "select template from raw.prompt_versions where prompt_name = %s"
            " and prompt_version = %s",
            (name, against),
        )
        if other:
            diff = diffs.unified(
                other["template"],
                template,
                f"{name}@{against}",
                f"{name}@{record.get('prompt_version')}",
            )
    return {"versions": versions, "others": others, "against": against, "diff": diff}


def _comparison(web: WebState, run_id: uuid.UUID, other: str | None) -> dict[str, Any] | None:
    """Old vs new for a replay (or any two runs): both records and the diffs of what changed."""
    if not other:
        return None
    other_id = _run_id(other)
    with web.db.connection(tuple_rows=True) as conn:
        try:
            sections = replay.diff_runs(conn, run_id, other_id)
            old, new = replay.load_run(conn, run_id), replay.load_run(conn, other_id)
        except replay.RunNotFound:
            raise HTTPException(404, "no such run to compare") from None
    return {
        "other_id": other_id,
        "old": old,
        "new": new,
        "sections": {
            name: diffs.classify(text.splitlines()) for name, text in sections.items() if text
        },
    }


def _answered_by_another_model(web: WebState, record: dict[str, Any]) -> bool:
    """True when the answering model is not the one asked, beyond a provider's dated alias.

    Providers answer with a versioned name (gpt-4o → gpt-4o-2024-08-06); what ops must see is
    a call routed to another model family, so the asked model's base name is looked for in it.
    """
    answered = record.get("response_model")
    if not answered:
        return False
    asked = record["model"]
    configured = web.config.models.get(asked)
    names = {asked, configured.model if configured else asked}
    return not any(name.rsplit("/", 1)[-1] in answered for name in names)


@router.get("/runs/{run_id}")
def run_detail(
    request: Request,
    run_id: str,
    against: str | None = None,
    compare: str | None = None,
    flash: str | None = None,
):
    web = state(request)
    rid = _run_id(run_id)
    with web.db.connection(tuple_rows=True) as conn:
        try:
            view = replay.load_run_view(conn, rid)
        except replay.RunNotFound:
            raise HTTPException(404, "no such run") from None
    record = view["run"]
    alerts = web.db.rows(
        "select alert_id, severity, subject, created_at from raw.alerts"
        " where %s = any(example_run_ids) order by created_at desc limit 20",
        (rid,),
    )
    answered_elsewhere = _answered_by_another_model(web, record)
    dagster_url = (
        f"{web.config.alerts.dagster_url.rstrip('/')}/runs/{record['orchestrator_run_id']}"
        if record.get("orchestrator_run_id")
        else None
    )
    return web.page(
        request,
        "run.html",
        view=view,
        record=record,
        alerts=alerts,
        dagster_url=dagster_url,
        answered_elsewhere=answered_elsewhere,
        prompt=_prompt_context(web, record, view["template"], against),
        vocabulary=_suite_vocabulary(web, record),
        models=sorted(web.config.models),
        comparison=_comparison(web, rid, compare),
        timeline=charts.timeline_chart(timeline(record, view["children"])),
        flash=_FLASH.get(flash or ""),
        pairwise=pairwise.judgment_view(web.db, record) if pairwise.is_judgment(record) else None,
    )


def _back(run_id: uuid.UUID, flash: str, **extra: str) -> RedirectResponse:
    """Back to the run page, scrolled to the section the message is about."""
    query = urlencode({"flash": flash, **extra})
    return RedirectResponse(f"/runs/{run_id}?{query}#{_FLASH[flash][2]}", status_code=303)


@router.post("/runs/{run_id}/reviews")
def add_review(
    request: Request,
    run_id: str,
    verdict: str = Form(""),
    score: str = Form(""),
    issue_tags: list[str] = Form(default_factory=list),
    notes: str = Form(""),
    csrf: str = Form(""),
    principal: Principal = Depends(current_user),
):
    """Add the signed-in reviewer's label through `evals.reviews` (the table's one rule); the page
    does not edit a label, so a reviewer who already labelled the run is told so."""
    check_csrf(principal, csrf, request)
    web = state(request)
    rid = _run_id(run_id)
    record = _stored_run(web, rid, "suite, suite_version")
    vocabulary = _suite_vocabulary(web, record)
    verdict = verdict.strip()
    if not verdict or (vocabulary["verdicts"] and verdict not in vocabulary["verdicts"]):
        return _back(rid, "bad-verdict")
    if vocabulary["issue_tags"] and not set(issue_tags) <= set(vocabulary["issue_tags"]):
        return _back(rid, "bad-tags")
    try:
        score_value = float(score) if score.strip() else None
    except ValueError:
        return _back(rid, "bad-score")
    if score_value is not None and not 0 <= score_value <= 1:
        return _back(rid, "bad-score")
    if web.db.one(
        "select 1 as found from raw.human_reviews where run_id = %s and reviewer = %s",
        (rid, principal.name),
    ):
        return _back(rid, "already-reviewed")
    review = reviews.Review(
        rid,
        principal.name,
        verdict,
        score_value,
        tuple(sorted(set(issue_tags))),
        notes.strip()[:NOTES_MAX] or None,
        source="web",
    )
    with web.db.connection() as conn:
        reviews.write_reviews(conn, [review])
    return _back(rid, "reviewed")


@router.post("/runs/{run_id}/replay")
def replay_run(
    request: Request,
    run_id: str,
    model: str = Form(""),
    prompt_version: str = Form(""),
    csrf: str = Form(""),
    principal: Principal = Depends(current_user),
):
    """Re-execute the run (optionally with another model or prompt version) and show old vs new."""
    check_csrf(principal, csrf, request)
    web = state(request)
    rid = _run_id(run_id)
    record = _stored_run(web, rid, "prompt_name")
    known_versions = {
        row["prompt_version"]
        for row in web.db.rows(
            "select prompt_version from raw.prompt_versions where prompt_name = %s",
            (record["prompt_name"],),
        )
    }
    if (model and model not in web.config.models) or (
        prompt_version and prompt_version not in known_versions
    ):
        return _back(rid, "bad-replay")
    try:
        with web.db.connection(tuple_rows=True) as conn:
            _old, new = replay.replay_run(
                web.config,
                rid,
                model=model or None,
                prompt_version=prompt_version or None,
                conn=conn,
            )
    except replay.ReplayError as exc:
        log.warning("replay of run %s refused: %s", rid, web.scrub(str(exc)))
        return _back(rid, "replay-failed")
    except Exception as exc:  # the page must say so, not answer 500; the log names the error
        log.error("replay of run %s failed: %s", rid, web.scrub(repr(exc)))
        return _back(rid, "replay-error")
    new_id = new["run_id"]
    return _back(rid, "replayed", compare=str(new_id))
