"""Sending stored calls again: the one path production sampling, rejudge and replay-many share.

A stored grader or judge call is sent again to a judge model — its stored messages and params,
or (when the caller re-rendered it with another prompt version) new messages — and the reply is
parsed against the suite's vocabulary, as the original was (a replay of many sends any stored
call to its own model or another, evals.replay_many). The result is a NEW row (by default role
judge; parent_run_id = the graded call) under an idempotency key the caller derives, so nothing
is ever overwritten and a re-run makes only the calls whose key has not settled. The calls
go through the runner's machinery (evals.runner.processes): claimed first (evals.claims), so two
regrades of the same calls (two rejudges, a rejudge beside the nightly sample) make each call
once between them; made by its pool, in this process or in worker processes under one budget;
written by its batched writer, committed well under a second apart, so a run killed mid-way
keeps every row it finished.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from evals.runlog import new_run_id, record_from_row
from evals.runner.units import resume_calls

if TYPE_CHECKING:
    import psycopg

    from evals.batches import BatchSpec
    from evals.config import Config
    from evals.golden import Suite
    from evals.llm import CallResult, LLMClient
    from evals.runlog import RunRecord


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
    """What a regrade did: rows new to the log, failed calls among them, keys found settled
    when reached (by an earlier run, or a concurrent one while this one waited), and keys
    still unsettled after it (its failed calls, and the units of a worker process that died)."""

    new: int = 0
    failed: int = 0
    settled_before: int = 0
    cost_usd: float = 0.0
    unsettled: int = 0

    def add(self, other: RegradeCounts) -> None:
        for name in ("new", "failed", "settled_before", "cost_usd", "unsettled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


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


def prepare(
    conn: psycopg.Connection, config: Config, jobs: Sequence[Regrade], model: str | None
) -> list[RegradeUnit]:
    """Each job with the model to ask (`model`, else the stored call's own) and what its call
    needs from the warehouse (the suite graded against, the call's metadata), so the call
    itself needs nothing else (here or in a worker process)."""
    from evals.replay import run_metadata, stored_suite

    suites: dict[tuple[str | None, str | None], Suite | None] = {}
    units = []
    for job in jobs:
        name, version = job.call["suite"], job.call["suite_version"]
        if (name, version) not in suites:
            suites[(name, version)] = stored_suite(conn, config, name, version)
        suite = suites[(name, version)]
        metadata = run_metadata(conn, job.call, suite)
        units.append(RegradeUnit(job, model or job.call["model"], suite, metadata))
    return units


@dataclass
class RegradeUnit:
    """A Regrade as the runner's pool takes it (evals.runner.processes): one call, one key."""

    job: Regrade
    model: str
    suite: Suite | None
    metadata: dict[str, Any]
    call_main: bool = True  # the shape evals.runner.claiming counts calls by
    judge_key: None = None

    @property
    def key(self) -> str:
        return self.job.key


class RegradeCaller:
    """Sends a unit's stored call to its model and hands its new row to `emit` (the writer)."""

    def __init__(
        self,
        orchestrator_run_id: str | None,
        client: LLMClient,
        emit: Callable[[RunRecord], None],
    ) -> None:
        self.orchestrator_run_id, self.client, self.emit = orchestrator_run_id, client, emit

    async def run_unit(self, unit: RegradeUnit) -> None:
        job = unit.job
        result = await self.client.acomplete(
            unit.model, job.messages, params=copy.deepcopy(job.call["params"]),
            metadata=unit.metadata,
        )  # fmt: skip
        self.emit(record_of(job, unit.model, result, unit.suite, self.orchestrator_run_id))

    def failure(self, unit: RegradeUnit, exc: Exception) -> RunRecord:
        """An error row for a unit that raised outside the LLM call (retried next run)."""
        from evals.llm import CallResult
        from evals.redact import scrub

        result = CallResult(
            text=None,
            status="error",
            started_at=datetime.now(UTC),
            attempts=0,
            error_class=type(exc).__name__,
            error_message=scrub(str(exc))[:2000],
        )
        return record_of(unit.job, unit.model, result, None, self.orchestrator_run_id)


class Regrader:
    """Regrades by `models`, group after group (a rejudge's days), on the runner's machinery:
    claims, pool and batched writer in this process, or `processes` worker processes sharing
    one budget (evals.runner.processes), started once for every group."""

    def __init__(
        self,
        config: Config,
        models: Sequence[str],
        *,
        processes: int = 1,
        orchestrator_run_id: str | None = None,
    ) -> None:
        from evals.runner.processes import Work, WorkerPool

        self.config, self.processes = config, processes
        self.work = Work(config, partial(RegradeCaller, orchestrator_run_id), resume_calls)
        self.workers = sum(config.model(name).concurrency for name in set(models))
        self.pool = WorkerPool(self.work, processes, self.workers) if processes > 1 else None
        self.client: LLMClient | None = None
        self.conn = self.claims = None
        self.lost_processes = 0

    async def __aenter__(self) -> Regrader:
        from evals import warehouse
        from evals.claims import Claims
        from evals.llm import LLMClient

        if self.pool is not None:
            await self.pool.start()
        else:
            self.client = LLMClient(self.config)
        self.conn = await asyncio.to_thread(warehouse.connect, autocommit=True)
        self.claims = await asyncio.to_thread(Claims.open)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.claims is not None:
            await asyncio.to_thread(self.claims.close)
        if self.conn is not None:
            await asyncio.to_thread(self.conn.close)
        if self.pool is not None:
            await self.pool.close()
        if self.client is not None:
            await self.client.aclose()

    async def regrade(self, units: list[RegradeUnit]) -> RegradeCounts:
        """Make the calls of `units` not settled yet, each once among concurrent regrades of
        the same calls (a job another run holds is called only if it never settles there)."""
        from evals.runner.processes import call_units
        from evals.runner.summary import RunSummary

        todo, settled = await asyncio.to_thread(resume_calls, self.conn, units)
        tally = RunSummary(
            suite="", suite_version="", kind="regrade", model="", judge=None, batch_key="",
            planned_calls=len(units), skipped_calls=settled,
        )  # fmt: skip
        await call_units(
            self.conn,
            self.claims,
            self.work,
            self.client,
            self.pool,
            todo,
            self.workers,
            tally,
            lambda *_: None,
        )
        self.lost_processes += tally.lost_processes
        left, _ = await asyncio.to_thread(resume_calls, self.conn, todo)
        return RegradeCounts(
            new=tally.calls,
            failed=tally.statuses["error"] + tally.statuses["timeout"],
            settled_before=settled + tally.calls_elsewhere,
            cost_usd=tally.cost_usd,
            unsettled=len(left),
        )

    async def regrade_batches(
        self,
        conn: psycopg.Connection,
        batches: Sequence[tuple[BatchSpec, Sequence[Regrade]]],
        model: str | None,
    ) -> RegradeCounts:
        """Each batch record's jobs in turn (`model`: see prepare), the record closed `failed`
        while any of its calls stays unsettled."""
        from evals.batches import track

        total = RegradeCounts()
        for spec, jobs in batches:
            units = prepare(conn, self.config, jobs, model)
            with track(conn, spec) as batch:
                done = await self.regrade(units)
                batch.status = "failed" if done.unsettled else "completed"
            total.add(done)
        return total


def regrade(
    conn: psycopg.Connection,
    config: Config,
    judge: str,
    jobs: Sequence[Regrade],
    *,
    orchestrator_run_id: str | None = None,
    processes: int = 1,
) -> RegradeCounts:
    """Grade each job's call with `judge` (bounded by the judge's concurrency); write new rows.
    `conn` reads what the calls need; the rows are written on connections of their own."""
    from evals.llm import run_calls

    units = prepare(conn, config, jobs, judge)

    async def run() -> RegradeCounts:
        async with Regrader(
            config, [judge], processes=processes, orchestrator_run_id=orchestrator_run_id
        ) as regrader:
            return await regrader.regrade(units)

    return run_calls(run())


def record_of(
    job: Regrade,
    model: str,
    result: CallResult,
    suite: Suite | None,
    orchestrator_run_id: str | None,
) -> RunRecord:
    """The new row of a call sent again: the stored call's columns, this call's outcome, the
    job's own fields over both; graded against `suite` as the original was."""
    from evals.replay import grade_record
    from evals.runner.inputs import code_version

    columns: dict[str, Any] = {
        "run_id": new_run_id(),
        "idempotency_key": job.key,
        "parent_run_id": job.parent_run_id,
        "role": "judge",
        "model": model,
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
