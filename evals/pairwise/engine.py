"""run_pairwise: check the request, generate the missing responses, judge every pair, summarise.

Two phases, each a plan of one-call units run through the runner's own machinery — claims
(evals.claims, via evals.runner.claiming), the pool (evals.runner.workers) and the batched
writer (evals.runner.writer) — so a pairwise run is as resumable, shareable and durable as any
run: generated responses first (a judgment needs both of its pair), then the judgments. The
whole run is one batch record (evals.batches).
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import TYPE_CHECKING

from evals.batches import started_by, track
from evals.pairwise.calls import PairCaller
from evals.pairwise.context import PairContext
from evals.pairwise.request import ORDERS, PairwiseRequest, Side, resolve_side
from evals.pairwise.summary import PairwiseSummary
from evals.pairwise.units import Generation, Judgment, Response, settled_rows
from evals.prompts import PAIRWISE_JUDGE, ensure_prompt_version, load_prompt
from evals.runlog import idempotency_key
from evals.runner.display import progress_bar
from evals.runner.inputs import RunnerError, resolve_suite
from evals.runner.processes import Work, call_units
from evals.runner.summary import RunSummary
from evals.runner.units import resume_calls

if TYPE_CHECKING:
    import psycopg

    from evals.claims import Claims
    from evals.config import Config
    from evals.golden import GoldenItem, Suite
    from evals.llm import LLMClient


def _suite(config: Config, request: PairwiseRequest) -> Suite:
    suite = request.suite
    if isinstance(suite, str):  # a configured name, a file, or a file beside the config
        beside = config.resolve_path(suite)
        in_config = suite in config.suites or not beside.is_file()
        suite = resolve_suite(config, suite if in_config else str(beside))
    if suite.kind == "grader":
        raise RunnerError(f"suite {suite.name!r} is a grader suite: it has no questions to answer")
    if request.orders not in (1, 2):
        raise RunnerError("orders must be 1 or 2")
    if request.trials < 1:
        raise RunnerError("trials must be >= 1")
    return suite


def _items(suite: Suite, limit: int | None) -> tuple[GoldenItem, ...]:
    return suite.items[:limit] if limit is not None else suite.items


def _with_concurrency(config: Config, names: list[str], concurrency: int | None) -> Config:
    """`config` with this run's concurrency for every model it calls (unchanged when None)."""
    if concurrency is None:
        return config
    models = dict(config.models)
    for name in names:
        models[name] = config.model(name).model_copy(update={"concurrency": concurrency})
    return config.model_copy(update={"models": models})


def _context(config: Config, conn: psycopg.Connection, request: PairwiseRequest) -> PairContext:
    """Check the request and resolve suite, judge and sides before any call is made."""
    suite = _suite(config, request)
    config.require_credentials(request.judge)
    answered = [item.item_id for item in _items(suite, request.limit) if item.responses is None]
    sides = None
    if answered:
        if request.baseline is None or request.candidate is None:
            raise RunnerError(
                f"{len(answered)} items of {suite.name!r} have no stored responses (first:"
                f" {answered[0]}): pass --baseline and --candidate (MODEL or MODEL@PROMPT)"
            )
        sides = (
            resolve_side(config, conn, request.baseline),
            resolve_side(config, conn, request.candidate),
        )
        if sides[0].label == sides[1].label:
            raise RunnerError(f"baseline and candidate are the same contestant ({sides[0].label})")
    batch_key = request.batch_key or f"{request.source}:{suite.name}@{suite.version}"
    if request.batch_key is None and sides is not None:
        batch_key += f":{sides[0].label}~{sides[1].label}"
    called = [request.judge] + ([s.model for s in sides] if sides else [])
    return PairContext(
        config=_with_concurrency(config, called, request.concurrency),
        suite=suite,
        judge=request.judge,
        judge_prompt=load_prompt(PAIRWISE_JUDGE),
        sides=sides,
        source=request.source,
        batch_key=batch_key,
        as_of=request.as_of,
        orchestrator_run_id=request.orchestrator_run_id,
        kind=request.kind,
        started_by=request.started_by or started_by(request.orchestrator_run_id),
    )


def _generation_key(run: PairContext, item: GoldenItem, side: Side) -> str:
    cfg = run.config.model(side.model)
    params = run.params(side.model, False)
    return idempotency_key(
        run.batch_key, item.item_hash, "candidate", side.model, cfg.model, side.prompt.version,
        params, 0,
    )  # fmt: skip


def plan_generations(run: PairContext, items: tuple[GoldenItem, ...]) -> list[Generation]:
    """One unit per item without stored responses x side (a = baseline, b = candidate)."""
    if run.sides is None:
        return []
    return [
        Generation(item, letter, side, _generation_key(run, item, side))
        for item in items
        if item.responses is None
        for letter, side in zip("ab", run.sides, strict=True)
    ]


def _pair(item: GoldenItem, generated: dict[tuple[str, str], Response]) -> tuple | None:
    """The item's (A, B) responses, or None while a generated one is missing."""
    if item.responses is not None:
        r = item.responses
        return Response(r.response_a, r.source_a), Response(r.response_b, r.source_b)
    a, b = generated.get((item.item_id, "a")), generated.get((item.item_id, "b"))
    return (a, b) if a is not None and b is not None else None


def plan_judgments(
    run: PairContext,
    items: tuple[GoldenItem, ...],
    orders: int,
    trials: int,
    generated: dict[tuple[str, str], Response],
) -> list[Judgment]:
    """One unit per item whose pair is complete x trial x order."""
    cfg = run.config.model(run.judge)
    params = run.params(run.judge, True)
    units = []
    for trial in range(trials):
        for item in items:
            pair = _pair(item, generated)
            if pair is None:
                continue
            a, b = pair
            for position in ORDERS[:orders]:
                key = idempotency_key(
                    run.batch_key, item.item_hash, "judge", run.judge, cfg.model,
                    run.judge_prompt.version, params, trial, a.contestant, b.contestant, position,
                )  # fmt: skip
                units.append(Judgment(item, trial, position, a, b, key))
    return units


def _generated(conn: psycopg.Connection, units: list[Generation]) -> dict:
    """(item id, letter) -> the settled generated Response."""
    rows = settled_rows(conn, [u.key for u in units])
    return {
        (u.item.item_id, u.letter): Response(rows[u.key][1] or "", u.side.label, rows[u.key][0])
        for u in units
        if u.key in rows and rows[u.key][3] == "ok"
    }


async def _run_batch(
    conn: psycopg.Connection,
    claims: Claims,
    run: PairContext,
    client: LLMClient,
    request: PairwiseRequest,
    progress: bool,
) -> PairwiseSummary:
    """Store suite and prompts, generate what is missing, judge every complete pair, count."""
    from evals.golden import store_suite

    store_suite(conn, run.suite)
    prompts = [run.judge_prompt] + [side.prompt for side in run.sides or ()]
    for prompt in prompts:
        ensure_prompt_version(conn, prompt.name, prompt.version, prompt.text)
    items = _items(run.suite, request.limit)
    generations = plan_generations(run, items)
    judgments_planned = len(items) * request.orders * request.trials
    planned = len(generations) + judgments_planned
    calls = RunSummary(
        suite=run.suite.name,
        suite_version=run.suite.version,
        kind="pairwise",
        model=run.judge,
        judge=run.judge,
        batch_key=run.batch_key,
        batch_id=str(run.batch.batch_id),
        planned_calls=planned,
        skipped_calls=0,
    )
    work = Work(run.config, partial(PairCaller, run), resume_calls)
    with track(conn, run.batch, planned) as batch, progress_bar(progress) as bar:
        task = bar.add_task(
            f"{run.suite.name} pairwise", total=planned, rate=0.0, errors=0, cost=0.0
        )
        started = time.perf_counter()

        def redraw(made: int, elsewhere: int, errors: int, cost: float) -> None:
            bar.update(
                task,
                completed=calls.skipped_calls + made,
                rate=made / max(1e-9, time.perf_counter() - started),
                errors=errors,
                cost=cost,
            )

        todo, calls.skipped_calls = resume_calls(conn, generations)
        side_workers = sum(run.config.model(s.model).concurrency for s in run.sides or ())
        await call_units(conn, claims, work, client, None, todo, side_workers, calls, redraw)
        generated = _generated(conn, generations)
        judgments = plan_judgments(run, items, request.orders, request.trials, generated)
        todo, settled_before = resume_calls(conn, judgments)
        calls.skipped_calls += settled_before
        judge_workers = run.config.model(run.judge).concurrency
        await call_units(conn, claims, work, client, None, todo, judge_workers, calls, redraw)
        settled = settled_rows(conn, [u.key for u in judgments])
        calls.unsettled_calls = planned - len(settled) - len(generated)
        batch.status = "failed" if calls.unsettled_calls else "completed"
    summary = PairwiseSummary(calls, judgments_planned=judgments_planned)
    summary.tally(judgments, settled)
    return summary


async def arun_pairwise(
    config: Config,
    request: PairwiseRequest,
    *,
    progress: bool = False,
    client: LLMClient | None = None,
) -> PairwiseSummary:
    """Run `request` (async); see run_pairwise."""
    from evals import warehouse
    from evals.claims import Claims
    from evals.llm import LLMClient

    started = time.perf_counter()
    conn = await asyncio.to_thread(warehouse.connect, autocommit=True)
    claims = own_client = None
    try:
        run = _context(config, conn, request)
        own_client = client is None
        client = client or LLMClient(run.config)
        claims = await asyncio.to_thread(Claims.open)
        summary = await _run_batch(conn, claims, run, client, request, progress)
    finally:
        if claims is not None:
            await asyncio.to_thread(claims.close)
        await asyncio.to_thread(conn.close)
        if own_client and client is not None:
            await client.aclose()
    summary.calls.elapsed_s = time.perf_counter() - started
    return summary


def run_pairwise(
    config: Config, request: PairwiseRequest, *, progress: bool = False
) -> PairwiseSummary:
    """Judge every pair of `request`'s suite; safe to repeat (idempotent), see the package doc.
    `progress` draws the runner's progress bar on the terminal."""
    from evals.llm import run_calls

    return run_calls(arun_pairwise(config, request, progress=progress))
