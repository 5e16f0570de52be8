"""Run a golden suite against a model: items x trials -> LLM calls -> one run-log row per call.

The contract, kept by construction:
- idempotent: every logical call has an idempotency key (batch key, item hash, role, model,
  prompt version, params, trial; a judge call also the candidate's key). Keys already settled
  (ok / parse_error) are skipped, keys with only failed rows are called again, so re-running
  the same command after a crash or a `kill -9` makes exactly the missing calls;
- durable: finished rows go to a writer that COPYs them in batches and commits every
  FLUSH_INTERVAL_S (well under a second), so a crash loses only the calls in flight;
- honest: provider failures are rows with status error / timeout and their attempts, replies
  that do not parse are parse_error rows with the raw text, never a silent score;
- lean: no logging, no progress redraw and no DB round trip per call — the progress bar and
  the writer run on a timer.

A grader suite makes one `grader` call per item and trial. An answer suite makes a `candidate`
call, then either scores it with the item's deterministic scorer (on the candidate row) or makes
a `judge` call whose row points at the candidate row (parent_run_id).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.judging import (
    JSON_RESPONSE_FORMAT,
    Grade,
    Rendered,
    parse_grade,
    render_candidate,
    render_grader,
    render_judge,
    score_deterministic,
)
from evals.prompts import (
    ANSWER_CANDIDATE,
    ANSWER_JUDGE,
    RUBRIC_GRADER,
    PromptTemplate,
    ensure_prompt_version,
    load_prompt,
)
from evals.runlog import RunRecord, idempotency_key, settled_keys, write_runs

if TYPE_CHECKING:
    from evals.config import Config
    from evals.golden import GoldenItem, Suite
    from evals.llm import CallResult, LLMClient

FLUSH_INTERVAL_S = 0.25
FLUSH_ROWS = 2000
_KEY_CHUNK = 5000
_SIM_PREFIX = "evalhouse-sim/"


class RunnerError(ValueError):
    """The run cannot start (unknown suite, missing judge, ...); nothing was called."""


@cache
def code_version() -> str:
    """The git commit of the code doing the run (EVALHOUSE_CODE_VERSION overrides)."""
    if env := os.environ.get("EVALHOUSE_CODE_VERSION"):
        return env
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"evalhouse-{version('evalhouse')}"
    except PackageNotFoundError:
        return "unknown"


def resolve_suite(config: Config, name_or_path: str) -> Suite:
    """A suite by its config name, else by file path (GoldenSetError if it is invalid)."""
    from evals.golden import load_suite

    if name_or_path in config.suites:
        return load_suite(config.resolve_path(config.suites[name_or_path].path))
    if Path(name_or_path).is_file():
        return load_suite(name_or_path)
    known = ", ".join(config.suites) or "none"
    raise RunnerError(f"unknown suite {name_or_path!r}: not a configured suite ({known}) "
                      "nor a file")


def default_judge(config: Config, suite: Suite) -> str | None:
    """The judge for a suite: its configured judge, else the reference judge, else the first."""
    entry = config.suites.get(suite.name)
    if entry is not None and entry.judge:
        return entry.judge
    return config.reference_judge or (config.judges[0] if config.judges else None)


# --- the plan -------------------------------------------------------------------------------


@dataclass
class _Unit:
    """One item x trial: the calls still to make for it."""

    item: GoldenItem
    trial: int
    key: str  # the grader or candidate call
    judge_key: str | None = None
    call_main: bool = True
    candidate_run_id: uuid.UUID | None = None  # when the candidate settled in an earlier run
    candidate_answer: str | None = None


@dataclass
class RunSummary:
    """What a run did (this invocation) and where the batch stands (all invocations)."""

    suite: str
    suite_version: str
    kind: str
    model: str
    judge: str | None
    batch_key: str
    planned_calls: int
    skipped_calls: int
    calls: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0
    unsettled_calls: int = 0
    scored: int = 0
    correct: int = 0
    by_stage: dict[str, tuple[int, int]] = field(default_factory=dict)  # stage -> (correct, n)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    def latency_ms(self, quantile: float) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[
            round(quantile * 100) - 1]

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "ok")

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "suite_version": self.suite_version, "kind": self.kind,
            "model": self.model, "judge": self.judge, "batch_key": self.batch_key,
            "planned_calls": self.planned_calls, "skipped_calls": self.skipped_calls,
            "calls": self.calls, "statuses": dict(self.statuses),
            "unsettled_calls": self.unsettled_calls, "accuracy": self.accuracy,
            "scored": self.scored, "by_stage": {s: {"correct": c, "n": n}
                                                for s, (c, n) in self.by_stage.items()},
            "latency_p50_ms": self.latency_ms(0.5), "latency_p95_ms": self.latency_ms(0.95),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd, "elapsed_s": self.elapsed_s,
        }


class _Run:
    """One invocation of run_suite: plan, calls, writer, progress, summary."""

    def __init__(self, config: Config, suite: Suite, model: str, judge: str | None,
                 client: LLMClient, *, trials: int, limit: int | None, source: str,
                 batch_key: str, as_of: date | None, orchestrator_run_id: str | None,
                 prompts: dict[str, PromptTemplate]) -> None:
        self.config, self.suite, self.model, self.judge = config, suite, model, judge
        self.client = client
        self.trials, self.limit, self.source, self.batch_key = trials, limit, source, batch_key
        self.as_of, self.orchestrator_run_id = as_of, orchestrator_run_id
        self.prompts = prompts
        self.code_version = code_version()
        self.invocation = uuid.uuid4().hex[:12]
        self.pending: list[RunRecord] = []
        self.wake_writer = asyncio.Event()
        self.summary: RunSummary | None = None

    # --- keys and params ------------------------------------------------------------------

    def _params(self, model_name: str, json_reply: bool) -> dict[str, Any]:
        cfg = self.config.model(model_name)
        params: dict[str, Any] = dict(cfg.params)
        if json_reply and cfg.json_mode:
            params["response_format"] = JSON_RESPONSE_FORMAT
        return params

    def _key(self, item: GoldenItem, role: str, model_name: str, prompt: PromptTemplate,
             params: dict[str, Any], trial: int, *extra: Any) -> str:
        return idempotency_key(self.batch_key, item.item_hash, role, model_name,
                               self.config.model(model_name).model, prompt.version, params,
                               trial, *extra)

    def plan(self) -> list[_Unit]:
        suite = self.suite
        items = suite.items[: self.limit] if self.limit is not None else suite.items
        grader = suite.kind == "grader"
        main_role = "grader" if grader else "candidate"
        main_prompt = self.prompts["main"]
        main_params = self._params(self.model, json_reply=grader)
        judge_params = self._params(self.judge, True) if self.judge else {}
        units = []
        for trial in range(self.trials):
            for item in items:
                key = self._key(item, main_role, self.model, main_prompt, main_params, trial)
                judge_key = None
                if not grader and item.scorer is None:
                    judge_key = self._key(item, "judge", self.judge, self.prompts["judge"],
                                          judge_params, trial, key)
                units.append(_Unit(item, trial, key, judge_key))
        return units

    def resume(self, conn, units: list[_Unit]) -> tuple[list[_Unit], int]:
        """Drop what settled before; a settled candidate whose judge is missing gets judged."""
        keys = [u.key for u in units] + [u.judge_key for u in units if u.judge_key]
        settled: set[str] = set()
        for offset in range(0, len(keys), _KEY_CHUNK):
            settled |= settled_keys(conn, keys[offset:offset + _KEY_CHUNK])
        todo, needs_answer = [], {}
        for unit in units:
            main_done = unit.key in settled
            judge_done = unit.judge_key is None or unit.judge_key in settled
            if main_done and judge_done:
                continue
            unit.call_main = not main_done
            if main_done:
                needs_answer[unit.key] = unit
            todo.append(unit)
        if needs_answer:
            rows = conn.execute(
                "select idempotency_key, run_id, output_text from raw.eval_runs"
                " where idempotency_key = any(%s) and status in ('ok', 'parse_error')",
                (list(needs_answer),),
            ).fetchall()
            for key, run_id, output_text in rows:
                needs_answer[key].candidate_run_id = run_id
                needs_answer[key].candidate_answer = output_text or ""
        return todo, len(settled)

    # --- one unit -------------------------------------------------------------------------

    def _sim_metadata(self, model_name: str, role: str, unit: _Unit,
                      **extra: Any) -> dict[str, Any] | None:
        """Ground truth for the simulated provider only: a real provider never sees the key."""
        if not self.config.model(model_name).model.startswith(_SIM_PREFIX):
            return None
        item, suite = unit.item, self.suite
        return {"evalhouse": {
            "role": role, "item_id": f"{suite.name}/{item.item_id}", "trial": unit.trial,
            "stage": item.stage, "expected_verdict": item.expected_verdict,
            "expected_issue_tags": list(item.expected_issue_tags),
            "verdicts": list(suite.verdicts), "passing_verdicts": list(suite.passing_verdicts),
            "issue_taxonomy": list(suite.issue_tags), "expected_answer": item.expected_answer,
            "as_of": (self.as_of or date.today()).isoformat(), **extra,
        }}

    def _record(self, unit: _Unit, role: str, model_name: str, key: str, rendered: Rendered,
                params: dict[str, Any], result: CallResult, grade: Grade | None,
                **fields: Any) -> RunRecord:
        item = unit.item
        status = result.status if grade is None or not result.ok else grade.status
        attributes: dict[str, Any] = {
            "litellm_model": self.config.model(model_name).model, "invocation": self.invocation,
            "expected_issue_tags": list(item.expected_issue_tags),
        }
        if self.as_of is not None:
            attributes["as_of"] = self.as_of.isoformat()
        if grade is not None and grade.unknown_tags:
            attributes["unknown_issue_tags"] = grade.unknown_tags
        timings = dict(result.timings)
        if grade is not None:
            timings["parse_ms"] = grade.parse_ms
        parse_failed = grade is not None and grade.status == "parse_error" and result.ok
        return RunRecord(
            idempotency_key=key, source=self.source, role=role, model=model_name,
            started_at=result.started_at, status=status, batch_id=self.batch_key,
            trial=unit.trial, suite=self.suite.name, suite_version=self.suite.version,
            item_id=item.item_id, item_hash=item.item_hash, stage=item.stage,
            category=item.category, orchestrator_run_id=self.orchestrator_run_id,
            code_version=self.code_version, rubric=item.rubric,
            prior_context=item.prior_context, inputs=rendered.inputs,
            messages=rendered.messages, params=params, response_model=result.response_model,
            provider=result.provider, prompt_name=rendered.prompt_name,
            prompt_version=rendered.prompt_version, output_text=result.text,
            verdict=grade.verdict if grade else None, passed=grade.passed if grade else None,
            score=grade.score if grade else None, feedback=grade.feedback if grade else None,
            issue_tags=grade.issue_tags if grade else [],
            expected_verdict=item.expected_verdict, latency_ms=result.latency_ms,
            input_tokens=result.input_tokens, output_tokens=result.output_tokens,
            cost_usd=result.cost_usd, timings=timings, attributes=attributes,
            error_class="ParseError" if parse_failed else result.error_class,
            error_message=grade.problem if parse_failed else result.error_message,
            attempts=result.attempts, **fields,
        )

    async def _call(self, unit: _Unit, role: str, model_name: str, rendered: Rendered,
                    json_reply: bool, **sim: Any) -> tuple[CallResult, dict]:
        params = self._params(model_name, json_reply)
        result = await self.client.acomplete(
            model_name, rendered.messages, metadata=self._sim_metadata(model_name, role, unit,
                                                                        **sim),
            response_format=JSON_RESPONSE_FORMAT if json_reply else None)
        return result, params

    async def run_unit(self, unit: _Unit) -> None:
        suite, item = self.suite, unit.item
        if suite.kind == "grader":
            rendered = render_grader(suite, item, self.prompts["main"])
            result, params = await self._call(unit, "grader", self.model, rendered, True)
            grade = parse_grade(result.text, suite) if result.ok else None
            self._emit(self._record(unit, "grader", self.model, unit.key, rendered, params,
                                    result, grade, submission=item.submission))
            return
        answer, candidate_run_id = unit.candidate_answer, unit.candidate_run_id
        if unit.call_main:
            rendered = render_candidate(item, self.prompts["main"])
            result, params = await self._call(unit, "candidate", self.model, rendered, False)
            grade = score_deterministic(suite, item, result.text or "") \
                if result.ok and item.scorer is not None else None
            record = self._record(unit, "candidate", self.model, unit.key, rendered, params,
                                  result, grade)
            self._emit(record)
            if not result.ok:
                return
            answer, candidate_run_id = result.text or "", record.run_id
            unit.call_main, unit.candidate_run_id = False, candidate_run_id
        if unit.judge_key is None or answer is None:
            return
        rendered = render_judge(suite, item, answer, self.prompts["judge"])
        result, params = await self._call(unit, "judge", self.judge, rendered, True,
                                          candidate_answer=answer)
        grade = parse_grade(result.text, suite) if result.ok else None
        self._emit(self._record(unit, "judge", self.judge, unit.judge_key, rendered, params,
                                result, grade, submission=answer,
                                parent_run_id=candidate_run_id))

    def _failure(self, unit: _Unit, exc: Exception) -> RunRecord:
        """An error row for a unit that raised outside the LLM call (retried next run)."""
        from datetime import UTC, datetime

        from evals.redact import scrub

        grader = self.suite.kind == "grader"
        role = "grader" if grader else ("candidate" if unit.call_main else "judge")
        model = self.judge if role == "judge" else self.model
        return RunRecord(
            idempotency_key=unit.judge_key if role == "judge" else unit.key,
            source=self.source, role=role, model=model, started_at=datetime.now(UTC),
            status="error", batch_id=self.batch_key, trial=unit.trial, suite=self.suite.name,
            suite_version=self.suite.version, item_id=unit.item.item_id,
            item_hash=unit.item.item_hash, stage=unit.item.stage, category=unit.item.category,
            orchestrator_run_id=self.orchestrator_run_id, code_version=self.code_version,
            parent_run_id=unit.candidate_run_id if role == "judge" else None,
            error_class=type(exc).__name__, error_message=scrub(str(exc))[:2000], attempts=0,
            attributes={"invocation": self.invocation, "failed_in": "runner"},
        )

    def _emit(self, record: RunRecord) -> None:
        summary = self.summary
        summary.calls += 1
        summary.statuses[record.status] += 1
        if record.status in ("ok", "parse_error") and record.latency_ms is not None:
            summary.latencies_ms.append(record.latency_ms)
        summary.input_tokens += record.input_tokens or 0
        summary.output_tokens += record.output_tokens or 0
        summary.cost_usd += record.cost_usd or 0.0
        self.pending.append(record)
        if len(self.pending) >= FLUSH_ROWS:
            self.wake_writer.set()

    # --- writer and driver ----------------------------------------------------------------

    async def _flush(self, conn) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            await asyncio.to_thread(write_runs, conn, batch)

    async def _writer(self, conn, stop: asyncio.Event, on_flush) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.wake_writer.wait(), FLUSH_INTERVAL_S)
            except TimeoutError:
                pass
            self.wake_writer.clear()
            await self._flush(conn)
            on_flush()
        await self._flush(conn)
        on_flush()

    async def execute(self, conn, units: list[_Unit], workers: int, on_flush) -> None:
        queue: asyncio.Queue[_Unit] = asyncio.Queue()
        for unit in units:
            queue.put_nowait(unit)

        async def work() -> None:
            while True:
                try:
                    unit = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await self.run_unit(unit)
                except Exception as exc:  # a bug for one item must not sink the batch
                    self._emit(self._failure(unit, exc))

        stop = asyncio.Event()
        writer = asyncio.create_task(self._writer(conn, stop, on_flush))
        try:
            await asyncio.gather(*(work() for _ in range(max(1, min(workers, len(units))))))
        finally:
            stop.set()
            self.wake_writer.set()
            await writer

    def batch_accuracy(self, conn) -> None:
        """Accuracy over the whole logical batch (earlier invocations included), per stage."""
        summary = self.summary
        if self.suite.kind == "grader":
            rows = conn.execute(
                "select coalesce(stage, '-'), count(*) filter (where verdict = expected_verdict),"
                " count(*) from raw.eval_runs where batch_id = %s and suite = %s"
                " and suite_version = %s and model = %s and role = 'grader'"
                " and prompt_version = %s and status in ('ok', 'parse_error') group by 1"
                " order by 1",
                (self.batch_key, self.suite.name, self.suite.version, self.model,
                 self.prompts["main"].version),
            ).fetchall()
        else:
            rows = conn.execute(
                "select coalesce(c.stage, '-'),"
                " count(*) filter (where coalesce(j.passed, c.passed)), count(*)"
                " from raw.eval_runs c left join raw.eval_runs j on j.parent_run_id = c.run_id"
                " and j.role = 'judge' and j.model = %s and j.status in ('ok', 'parse_error')"
                " where c.batch_id = %s and c.suite = %s and c.suite_version = %s"
                " and c.model = %s and c.role = 'candidate' and c.prompt_version = %s"
                " and c.status = 'ok' and (c.verdict is not null or j.run_id is not null)"
                " group by 1 order by 1",
                (self.judge or "", self.batch_key, self.suite.name, self.suite.version,
                 self.model, self.prompts["main"].version),
            ).fetchall()
        summary.by_stage = {stage: (correct, n) for stage, correct, n in rows}
        summary.correct = sum(c for c, _ in summary.by_stage.values())
        summary.scored = sum(n for _, n in summary.by_stage.values())


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} calls/s"), TimeElapsedColumn(), TextColumn("eta"),
        TimeRemainingColumn(), TextColumn("errors {task.fields[errors]}"),
        TextColumn("${task.fields[cost]:.4f}"),
        console=Console(stderr=True), disable=not enabled, refresh_per_second=4,
        transient=False,
    )


async def arun_suite(config: Config, suite: Suite | str, model_name: str,
                     judge: str | None = None, *, trials: int = 1, limit: int | None = None,
                     source: str = "golden", batch_key: str | None = None,
                     as_of: date | None = None, orchestrator_run_id: str | None = None,
                     concurrency: int | None = None, progress: bool = False,
                     prompt_overrides: dict[str, PromptTemplate] | None = None,
                     client: LLMClient | None = None) -> RunSummary:
    """Run `suite` against `model_name` (async); see run_suite."""
    from evals import warehouse
    from evals.golden import store_suite
    from evals.llm import LLMClient

    if isinstance(suite, str):
        suite = resolve_suite(config, suite)
    if trials < 1:
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
    if concurrency is not None:
        models = dict(config.models)
        models[model_name] = config.model(model_name).model_copy(
            update={"concurrency": concurrency})
        config = config.model_copy(update={"models": models})
    overrides = prompt_overrides or {}
    prompts = {"main": overrides.get("main") or load_prompt(RUBRIC_GRADER if grader
                                                            else ANSWER_CANDIDATE)}
    if needs_judge:
        prompts["judge"] = overrides.get("judge") or load_prompt(ANSWER_JUDGE)
    batch_key = batch_key or f"{source}:{suite.name}@{suite.version}"
    own_client = client is None
    client = client or LLMClient(config)
    run = _Run(config, suite, model_name, judge, client, trials=trials, limit=limit,
               source=source, batch_key=batch_key, as_of=as_of,
               orchestrator_run_id=orchestrator_run_id, prompts=prompts)
    started = time.perf_counter()
    # autocommit: each write_runs transaction commits on its own (inside an implicit transaction
    # opened by a read, it would only be a savepoint and nothing would be durable until the end)
    conn = await asyncio.to_thread(warehouse.connect, autocommit=True)
    try:
        store_suite(conn, suite)
        for prompt in prompts.values():
            ensure_prompt_version(conn, prompt.name, prompt.version, prompt.text)
        units = run.plan()
        planned = len(units) + sum(1 for u in units if u.judge_key)
        todo, already = run.resume(conn, units)
        run.summary = RunSummary(
            suite=suite.name, suite_version=suite.version, kind=suite.kind, model=model_name,
            judge=judge, batch_key=batch_key, planned_calls=planned, skipped_calls=already)
        remaining = planned - already
        workers = config.model(model_name).concurrency + (
            config.model(judge).concurrency if needs_judge and judge else 0)
        with _progress(progress) as bar:
            task = bar.add_task(f"{suite.name} x {model_name}", total=remaining,
                                rate=0.0, errors=0, cost=0.0)

            calls_started = time.perf_counter()

            def on_flush() -> None:
                summary = run.summary
                elapsed = max(1e-9, time.perf_counter() - calls_started)
                bar.update(task, completed=min(summary.calls, remaining),
                           rate=summary.calls / elapsed, errors=summary.errors,
                           cost=summary.cost_usd)

            if todo:
                await run.execute(conn, todo, workers, on_flush)
        after = set()
        keys = [u.key for u in units] + [u.judge_key for u in units if u.judge_key]
        for offset in range(0, len(keys), _KEY_CHUNK):
            after |= settled_keys(conn, keys[offset:offset + _KEY_CHUNK])
        run.summary.unsettled_calls = planned - len(after)
        run.batch_accuracy(conn)
    finally:
        await asyncio.to_thread(conn.close)
        if own_client:
            await client.aclose()
    run.summary.elapsed_s = time.perf_counter() - started
    return run.summary


def run_suite(config: Config, suite: Suite | str, model_name: str, judge: str | None = None,
              *, trials: int = 1, limit: int | None = None, source: str = "golden",
              batch_key: str | None = None, as_of: date | None = None,
              orchestrator_run_id: str | None = None, concurrency: int | None = None,
              progress: bool = False,
              prompt_overrides: dict[str, PromptTemplate] | None = None) -> RunSummary:
    """Run a suite against a model and write one row per call; safe to repeat (idempotent).

    `batch_key` names the logical batch (default `<source>:<suite>@<version>`): the same key
    skips what settled, a new key (e.g. a Dagster partition) runs everything again.
    `as_of` dates the calls for the simulator's drift scenarios. Returns the RunSummary.
    """
    return asyncio.run(arun_suite(
        config, suite, model_name, judge, trials=trials, limit=limit, source=source,
        batch_key=batch_key, as_of=as_of, orchestrator_run_id=orchestrator_run_id,
        concurrency=concurrency, progress=progress, prompt_overrides=prompt_overrides))


def render_summary(summary: RunSummary, console) -> None:
    """The closing summary as rich tables."""
    from rich.table import Table

    head = Table(title=f"{summary.suite}@{summary.suite_version} x {summary.model}"
                 + (f" (judge {summary.judge})" if summary.judge else ""), show_header=False)
    accuracy = summary.accuracy
    p50, p95 = summary.latency_ms(0.5), summary.latency_ms(0.95)
    rows = [
        ("batch", summary.batch_key),
        ("calls", f"{summary.calls} made, {summary.skipped_calls} already settled, "
                  f"{summary.planned_calls} planned"),
        ("by status", ", ".join(f"{s} {n}" for s, n in sorted(summary.statuses.items()))
         or "-"),
        ("still unsettled", str(summary.unsettled_calls)),
        ("accuracy" if summary.kind == "grader" else "pass rate",
         f"{accuracy:.1%} of {summary.scored}" if accuracy is not None else "-"),
        ("latency p50 / p95", f"{p50:.0f} / {p95:.0f} ms" if p50 is not None else "-"),
        ("tokens in / out", f"{summary.input_tokens:,} / {summary.output_tokens:,}"),
        ("cost", f"${summary.cost_usd:.4f}"),
        ("elapsed", f"{summary.elapsed_s:.1f} s"),
    ]
    for name, value in rows:
        head.add_row(name, value)
    console.print(head)
    if summary.by_stage:
        stages = Table(title="per stage (whole batch)")
        for column in ("stage", "correct" if summary.kind == "grader" else "passed", "n",
                       "rate"):
            stages.add_column(column, justify="left" if column == "stage" else "right")
        for stage, (correct, n) in summary.by_stage.items():
            stages.add_row(stage, str(correct), str(n), f"{correct / n:.1%}" if n else "-")
        console.print(stages)
