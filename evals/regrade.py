"""Grading stored calls again with a judge: the one path production sampling and rejudge share.

A stored grader or judge call is sent again to a judge model — its stored messages and params,
or (when the caller re-rendered it with another prompt version) new messages — and the reply is
parsed against the suite's vocabulary, as the original was. The result is a NEW row (role
judge, parent_run_id = the graded call) under an idempotency key the caller derives, so nothing
is ever overwritten and a re-run makes only the calls whose key has not settled. Rows are
written and committed chunk by chunk: a run killed mid-way keeps every chunk it finished.
Each chunk is claimed first (evals.claims), so two regrades of the same calls (two rejudges, a
rejudge beside the nightly sample) make each call once between them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from evals.runlog import record_from_row, settled_keys, write_runs

if TYPE_CHECKING:
    import psycopg

    from evals.config import Config
    from evals.golden import Suite
    from evals.llm import CallResult, LLMClient
    from evals.runlog import RunRecord

CHUNK_PER_SLOT = 4
"""A chunk is this many calls per concurrency slot: enough to keep the slots busy, few enough
that a killed run loses little."""


@dataclass(frozen=True)
class Regrade:
    """One stored call to grade again.

    `call` is the stored row whose messages are sent (the grader call itself, or the judge call
    of a candidate's answer); `parent_run_id` the graded call the new row hangs under; `fields`
    the new row's own columns (source, batch_id, attributes; messages and prompt when
    re-rendered), which override what is copied from `call`.
    """

    key: str
    call: dict[str, Any]
    parent_run_id: uuid.UUID
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.fields.get("messages", self.call["messages"])


@dataclass
class RegradeCounts:
    """What a regrade did: rows new to the log, failed calls among them, and keys found settled
    when reached (by an earlier run, or a concurrent one while this one waited)."""

    new: int = 0
    failed: int = 0
    settled_before: int = 0
    cost_usd: float = 0.0


def load_runs(
    conn: psycopg.Connection, run_ids: Sequence[uuid.UUID | str]
) -> dict[str, dict[str, Any]]:
    """Stored rows by run id (as text), fetched in one query."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select * from raw.eval_runs where run_id = any(%s::uuid[])",
            ([str(run_id) for run_id in run_ids],),
        ).fetchall()
    return {str(row["run_id"]): row for row in rows}


def regrade(
    conn: psycopg.Connection,
    config: Config,
    judge: str,
    jobs: Sequence[Regrade],
    *,
    orchestrator_run_id: str | None = None,
    chunk: int | None = None,
) -> RegradeCounts:
    """Grade each job's call with `judge` (bounded by the judge's concurrency); write new rows.

    Concurrent regrades of the same calls share them (evals.claims): a job another run holds is
    set aside and looked at again after the rest, once it has settled or its claimant died.
    """
    from evals.claims import POLL_S, Claims
    from evals.llm import LLMClient

    chunk = chunk or config.model(judge).concurrency * CHUNK_PER_SLOT
    counts = RegradeCounts()
    suites: dict[tuple[str | None, str | None], Suite | None] = {}
    client = LLMClient(config)
    claims = Claims.open()
    try:
        pending = list(jobs)
        while pending:
            held_elsewhere: list[Regrade] = []
            for offset in range(0, len(pending), chunk):
                part = pending[offset : offset + chunk]
                mine = claims.claim(job.key for job in part)
                held_elsewhere += [job for job in part if job.key not in mine]
                # checked after the claim, so it sees whatever the previous holder committed
                settled = settled_keys(claims.conn, mine)
                counts.settled_before += len(settled)
                todo = [job for job in part if job.key in mine and job.key not in settled]
                if todo:
                    records = _grade_chunk(
                        conn, config, client, judge, todo, suites, orchestrator_run_id
                    )
                    conn.commit()  # end the reads' transaction: the chunk's write commits alone
                    counts.new += write_runs(conn, records)
                    conn.commit()
                    counts.failed += sum(r.status in ("error", "timeout") for r in records)
                    counts.cost_usd += sum(record.cost_usd or 0.0 for record in records)
                claims.release(list(mine))
            pending = held_elsewhere
            if pending:
                time.sleep(POLL_S)
    finally:
        claims.close()
        client.close()
    return counts


def _grade_chunk(
    conn: psycopg.Connection,
    config: Config,
    client: LLMClient,
    judge: str,
    todo: Sequence[Regrade],
    suites: dict,
    orchestrator_run_id: str | None,
) -> list[RunRecord]:
    from evals.replay import run_metadata, stored_suite

    for job in todo:
        name, version = job.call["suite"], job.call["suite_version"]
        if (name, version) not in suites:
            suites[(name, version)] = stored_suite(conn, config, name, version)
    suite_of = [suites[(job.call["suite"], job.call["suite_version"])] for job in todo]
    metadata = [
        run_metadata(conn, job.call, suite) for job, suite in zip(todo, suite_of, strict=True)
    ]

    async def call_all() -> list[CallResult]:
        return await asyncio.gather(
            *(
                client.acomplete(judge, job.messages, params=job.call["params"], metadata=meta)
                for job, meta in zip(todo, metadata, strict=True)
            )
        )

    results = client.run_sync(call_all())
    return [
        _record(job, judge, result, suite, orchestrator_run_id)
        for job, result, suite in zip(todo, results, suite_of, strict=True)
    ]


def _record(
    job: Regrade,
    judge: str,
    result: CallResult,
    suite: Suite | None,
    orchestrator_run_id: str | None,
) -> RunRecord:
    from evals.replay import grade_record
    from evals.runner.inputs import code_version

    columns: dict[str, Any] = {
        "run_id": uuid.uuid4(),
        "idempotency_key": job.key,
        "parent_run_id": job.parent_run_id,
        "role": "judge",
        "model": judge,
        "status": result.status,
        "started_at": result.started_at,
        "output_text": result.text,
        "response_model": result.response_model,
        "provider": result.provider,
        "latency_ms": result.latency_ms,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": result.cost_usd,
        "timings": result.timings or None,
        "error_class": result.error_class,
        "error_message": result.error_message,
        "attempts": result.attempts,
        "verdict": None,
        "passed": None,
        "score": None,
        "feedback": None,
        "issue_tags": [],
        "sample_weight": None,
        "attributes": {},
        "orchestrator_run_id": orchestrator_run_id,
        "code_version": code_version(),
    }
    columns.update(job.fields)
    record = replace(record_from_row(job.call), **columns)
    grade_record(record, suite)
    return record
