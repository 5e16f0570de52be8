"""run_suite: check the request, plan, skip what settled, call the rest, summarise the batch.

LLMClient (LiteLLM, ~5 s to import) and the warehouse are imported inside arun_suite, so
importing the runner stays cheap for the CLI and the Dagster code location.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import TYPE_CHECKING

from evals.batches import started_by, track
from evals.prompts import (
    ANSWER_CANDIDATE,
    ANSWER_JUDGE,
    RUBRIC_GRADER,
    ensure_prompt_version,
    load_prompt,
)
from evals.runner.calls import UnitCaller
from evals.runner.context import RunContext
from evals.runner.display import progress_bar
from evals.runner.inputs import RunnerError, RunRequest, default_judge, resolve_suite
from evals.runner.processes import Work, WorkerPool, call_units, default_processes
from evals.runner.summary import RunSummary, batch_accuracy
from evals.runner.units import Unit, plan, resume, settled_among

if TYPE_CHECKING:
    import psycopg

    from evals.claims import Claims
    from evals.config import Config
    from evals.golden import Suite
    from evals.llm import LLMClient


async def arun_suite(
    config: Config, request: RunRequest, *, progress: bool = False, client: LLMClient | None = None
) -> RunSummary:
    """Run `request` (async); see run_suite. With more than one process (`request.processes`,
    else default_processes) the calls are made by worker processes (evals.runner.processes)
    and `client` is not used."""
    from evals import warehouse
    from evals.claims import Claims
    from evals.llm import LLMClient, preload_litellm

    run = _context(config, request)
    in_flight = _in_flight(run)
    processes = request.processes or default_processes(
        in_flight, request.trials * len(run.suite.items[: request.limit])
    )
    pool = WorkerPool(_work(run), processes, in_flight) if processes > 1 else None
    own_client = client is None and pool is None
    if own_client:
        preload_litellm(run.config)  # overlaps connecting, planning and resuming
        client = LLMClient(run.config)
    started = time.perf_counter()
    conn = claims = None
    try:
        if pool is not None:
            await pool.start()  # first: the workers import LiteLLM while this process plans
        # autocommit: each write_runs transaction commits on its own (inside an implicit
        # transaction opened by a read, it would only be a savepoint and nothing would be
        # durable until the end)
        conn = await asyncio.to_thread(warehouse.connect, autocommit=True)
        claims = await asyncio.to_thread(Claims.open)
        summary = await _run_batch(conn, claims, run, client, pool, request, progress)
    finally:
        if claims is not None:
            await asyncio.to_thread(claims.close)
        if conn is not None:
            await asyncio.to_thread(conn.close)
        if pool is not None:
            await pool.close()
        if own_client:
            await client.aclose()
    summary.processes = processes
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _work(run: RunContext) -> Work:
    """A golden run's units, called by the runner's UnitCaller (here or in worker processes)."""
    return Work(run.config, partial(UnitCaller, run))


def _in_flight(run: RunContext) -> int:
    """Calls the run keeps in flight: its model's concurrency, plus its judge's if it judges."""
    return run.config.model(run.model).concurrency + (
        run.config.model(run.judge).concurrency if "judge" in run.prompts else 0
    )


def _context(config: Config, request: RunRequest) -> RunContext:
    """Check the request and resolve what every call shares, before any call is made."""
    suite = request.suite
    if isinstance(suite, str):
        suite = resolve_suite(config, suite)
    if request.trials < 1:
        raise RunnerError("trials must be >= 1")
    if request.processes is not None and request.processes < 1:
        raise RunnerError("processes must be >= 1")
    config.require_credentials(request.model)  # unknown model or no key: before any call
    grader = suite.kind == "grader"
    needs_judge = not grader and any(item.scorer is None for item in suite.items)
    judge = _judge(config, suite, request.judge, needs_judge)
    overrides = request.prompt_overrides or {}
    prompts = {
        "main": overrides.get("main") or load_prompt(RUBRIC_GRADER if grader else ANSWER_CANDIDATE)
    }
    if needs_judge:
        prompts["judge"] = overrides.get("judge") or load_prompt(ANSWER_JUDGE)
    return RunContext(
        config=_with_concurrency(config, request.model, request.concurrency),
        suite=suite,
        model=request.model,
        judge=judge,
        prompts=prompts,
        source=request.source,
        batch_key=request.batch_key or f"{request.source}:{suite.name}@{suite.version}",
        as_of=request.as_of,
        orchestrator_run_id=request.orchestrator_run_id,
        kind=request.kind,
        started_by=request.started_by or started_by(request.orchestrator_run_id),
    )


def _judge(config: Config, suite: Suite, judge: str | None, needs_judge: bool) -> str | None:
    """The judge asked for, else the suite's default when its items need one (checked known)."""
    judge = judge or (default_judge(config, suite) if needs_judge else None)
    if needs_judge and judge is None:
        raise RunnerError(
            f"suite {suite.name!r} needs a judge: pass --judge or configure "
            "suites.<name>.judge / reference_judge"
        )
    if judge is not None:
        config.require_credentials(judge)
    return judge


def _with_concurrency(config: Config, model_name: str, concurrency: int | None) -> Config:
    """`config` with this run's concurrency for the model (unchanged when None)."""
    if concurrency is None:
        return config
    models = dict(config.models)
    models[model_name] = config.model(model_name).model_copy(update={"concurrency": concurrency})
    return config.model_copy(update={"models": models})


async def _run_batch(
    conn: psycopg.Connection,
    claims: Claims,
    run: RunContext,
    client: LLMClient | None,
    pool: WorkerPool | None,
    request: RunRequest,
    progress: bool,
) -> RunSummary:
    """Store the suite and prompts, plan, skip what settled, call the rest, count the outcome."""
    from evals.golden import store_suite

    store_suite(conn, run.suite)
    for prompt in run.prompts.values():
        ensure_prompt_version(conn, prompt.name, prompt.version, prompt.text)
    units = plan(run, request.trials, request.limit)
    planned = len(units) + sum(1 for u in units if u.judge_key)
    todo, already = resume(conn, units)
    summary = RunSummary(
        suite=run.suite.name,
        suite_version=run.suite.version,
        kind=run.suite.kind,
        model=run.model,
        judge=run.judge,
        batch_key=run.batch_key,
        batch_id=str(run.batch.batch_id),
        planned_calls=planned,
        skipped_calls=already,
    )
    with track(conn, run.batch, planned) as batch:
        await _call(conn, claims, run, client, pool, todo, summary, progress)
        summary.unsettled_calls = planned - len(settled_among(conn, units))
        batch.status = "failed" if summary.unsettled_calls else "completed"
    batch_accuracy(conn, run, summary)
    return summary


async def _call(
    conn: psycopg.Connection,
    claims: Claims,
    run: RunContext,
    client: LLMClient | None,
    pool: WorkerPool | None,
    todo: list[Unit],
    summary: RunSummary,
    progress: bool,
) -> None:
    """Make the calls still to do that no concurrent run makes (here, or in the pool's worker
    processes), redrawing the progress bar as rows are written (here or by the other run)."""
    remaining = summary.planned_calls - summary.skipped_calls
    with progress_bar(progress) as bar:
        task = bar.add_task(
            f"{run.suite.name} x {run.model}", total=remaining, rate=0.0, errors=0, cost=0.0
        )
        calls_started = time.perf_counter()

        def redraw(calls: int, calls_elsewhere: int, errors: int, cost: float) -> None:
            elapsed = max(1e-9, time.perf_counter() - calls_started)
            bar.update(
                task,
                completed=min(calls + calls_elsewhere, remaining),
                rate=calls / elapsed,
                errors=errors,
                cost=cost,
            )

        await call_units(
            conn, claims, _work(run), client, pool, todo, _in_flight(run), summary, redraw
        )


def run_suite(config: Config, request: RunRequest, *, progress: bool = False) -> RunSummary:
    """Run a suite against a model and write one row per call; safe to repeat (idempotent).

    Returns the RunSummary; `progress` draws a progress bar on the terminal.
    """
    from evals.llm import run_calls

    return run_calls(arun_suite(config, request, progress=progress))
