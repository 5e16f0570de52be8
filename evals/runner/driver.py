"""run_suite: check the request, plan, skip what settled, call the rest, summarise the batch.

LLMClient (LiteLLM, ~5 s to import) and the warehouse are imported inside arun_suite, so
importing the runner stays cheap for the CLI and the Dagster code location.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

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
from evals.runner.summary import RunSummary, batch_accuracy
from evals.runner.units import plan, resume, settled_among
from evals.runner.workers import execute
from evals.runner.writer import RunWriter

if TYPE_CHECKING:
    from evals.config import Config
    from evals.llm import LLMClient


async def arun_suite(config: Config, request: RunRequest, *, progress: bool = False,
                     client: LLMClient | None = None) -> RunSummary:
    """Run `request` (async); see run_suite."""
    from evals import warehouse
    from evals.golden import store_suite
    from evals.llm import LLMClient

    suite, model_name, judge = request.suite, request.model, request.judge
    if isinstance(suite, str):
        suite = resolve_suite(config, suite)
    if request.trials < 1:
        raise RunnerError("trials must be >= 1")
    config.model(model_name)  # unknown model: a ConfigError before anything happens
    grader = suite.kind == "grader"
    needs_judge = not grader and any(item.scorer is None for item in suite.items)
    judge = judge or (default_judge(config, suite) if needs_judge else None)
    if needs_judge and judge is None:
        raise RunnerError(f"suite {suite.name!r} needs a judge: pass --judge or configure "
                          "suites.<name>.judge / reference_judge")
    if judge is not None:
        config.model(judge)
    if request.concurrency is not None:
        models = dict(config.models)
        models[model_name] = config.model(model_name).model_copy(
            update={"concurrency": request.concurrency})
        config = config.model_copy(update={"models": models})
    overrides = request.prompt_overrides or {}
    prompts = {"main": overrides.get("main") or load_prompt(RUBRIC_GRADER if grader
                                                            else ANSWER_CANDIDATE)}
    if needs_judge:
        prompts["judge"] = overrides.get("judge") or load_prompt(ANSWER_JUDGE)
    batch_key = request.batch_key or f"{request.source}:{suite.name}@{suite.version}"
    own_client = client is None
    client = client or LLMClient(config)
    run = RunContext(config=config, suite=suite, model=model_name, judge=judge,
                     prompts=prompts, source=request.source, batch_key=batch_key,
                     as_of=request.as_of, orchestrator_run_id=request.orchestrator_run_id)
    started = time.perf_counter()
    # autocommit: each write_runs transaction commits on its own (inside an implicit transaction
    # opened by a read, it would only be a savepoint and nothing would be durable until the end)
    conn = await asyncio.to_thread(warehouse.connect, autocommit=True)
    try:
        store_suite(conn, suite)
        for prompt in prompts.values():
            ensure_prompt_version(conn, prompt.name, prompt.version, prompt.text)
        units = plan(run, request.trials, request.limit)
        planned = len(units) + sum(1 for u in units if u.judge_key)
        todo, already = resume(conn, units)
        summary = RunSummary(
            suite=suite.name, suite_version=suite.version, kind=suite.kind, model=model_name,
            judge=judge, batch_key=batch_key, planned_calls=planned, skipped_calls=already)
        remaining = planned - already
        workers = config.model(model_name).concurrency + (
            config.model(judge).concurrency if needs_judge and judge else 0)
        writer = RunWriter(summary)
        with progress_bar(progress) as bar:
            task = bar.add_task(f"{suite.name} x {model_name}", total=remaining,
                                rate=0.0, errors=0, cost=0.0)

            calls_started = time.perf_counter()

            def on_flush() -> None:
                elapsed = max(1e-9, time.perf_counter() - calls_started)
                bar.update(task, completed=min(summary.calls, remaining),
                           rate=summary.calls / elapsed, errors=summary.errors,
                           cost=summary.cost_usd)

            if todo:
                await execute(conn, todo, workers, UnitCaller(run, client, writer.emit),
                              writer, on_flush)
        summary.unsettled_calls = planned - len(settled_among(conn, units))
        batch_accuracy(conn, run, summary)
    finally:
        await asyncio.to_thread(conn.close)
        if own_client:
            await client.aclose()
    summary.elapsed_s = time.perf_counter() - started
    return summary


def run_suite(config: Config, request: RunRequest, *, progress: bool = False) -> RunSummary:
    """Run a suite against a model and write one row per call; safe to repeat (idempotent).

    Returns the RunSummary; `progress` draws a progress bar on the terminal.
    """
    return asyncio.run(arun_suite(config, request, progress=progress))
