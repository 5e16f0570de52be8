"""`evalhouse rejudge`: another judge's verdict on calls already graded, estimated before any call.

Why: to compare judges (a new judge model, a reworded judge prompt) on the very items the
current judge graded, without touching a stored verdict.

Which calls: the graded calls of the run log — a grader call (a model grading a submission:
production captures, golden grader suites) or a candidate's answer that a judge graded (answer
suites) — settled, made on a UTC day in [since, until], optionally of one suite, from the chosen
sources. The stored call that did the grading (the grader call, or the candidate's judge call) is
sent to judge J through `evals.regrade` (the path production sampling uses), as stored or
re-rendered with another prompt version, and lands as a new row: source `rejudge`, role judge,
model J, parent_run_id = the graded call, batch `rejudge:<J>:<day of the graded call>`. Its key
is derived from (graded call, J, J's LiteLLM model, prompt name, prompt version), so a re-run —
after a kill -9 too — makes only the calls still missing and never a second row per call.

Before any call an `Estimate` is printed: calls to make, tokens from the stored counts of the
calls re-sent (adjusted by the template's length when the prompt changes), cost at the judge's
prices (configured, else LiteLLM's price map), duration from the stored latencies at the
judge's concurrency and rpm cap. A dry run stops there: no call, no row.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.regrade import RegradeCounts
from evals.runlog import idempotency_key, settled_keys

if TYPE_CHECKING:
    import psycopg

    from evals.batches import BatchSpec
    from evals.config import Config
    from evals.prompts import PromptTemplate
    from evals.regrade import Regrade

SOURCE = "rejudge"
DEFAULT_SOURCES = ("golden", "ci", "production", "import")
"""Sources rejudged unless --source says otherwise: replays are experiments, not graded traffic."""
CHARS_PER_TOKEN = 4  # for a stored call without token counts (the usual rule of thumb)
_KEY_CHUNK = 5000

# One row per graded call: the call that graded it (itself, or a candidate's latest judge call
# of the same source that has messages) and what the estimate needs — no message text.
_SELECT = """
select g.run_id as graded_id, coalesce(j.run_id, g.run_id) as call_id,
       (g.started_at at time zone 'UTC')::date as day, g.source,
       c.prompt_name, c.prompt_version, c.inputs <> '{}'::jsonb as has_inputs,
       c.input_tokens, c.output_tokens, c.latency_ms, octet_length(c.messages::text) as chars
from raw.eval_runs g
left join lateral (
    select j.run_id from raw.eval_runs j
    where j.parent_run_id = g.run_id and j.role = 'judge' and j.source = g.source
      and jsonb_array_length(j.messages) > 0
    order by j.status in ('ok', 'parse_error') desc, j.started_at desc
    limit 1
) j on g.role = 'candidate'
join raw.eval_runs c on c.run_id = coalesce(j.run_id, g.run_id)
where g.source = any(%(sources)s) and g.superseded_at is null
  and (%(start)s::timestamptz is null or g.started_at >= %(start)s)
  and (%(end)s::timestamptz is null or g.started_at < %(end)s)
  and (%(suite)s::text is null or g.suite = %(suite)s)
  and ((g.role = 'grader' and g.status in ('ok', 'parse_error')
        and jsonb_array_length(g.messages) > 0)
       or (g.role = 'candidate' and g.status = 'ok' and j.run_id is not null))
order by g.started_at, g.run_id
"""


class RejudgeError(ValueError):
    """The rejudge cannot start as asked (unknown judge, prompt version, source...)."""


@dataclass(frozen=True)
class RejudgeRequest:
    """What to rejudge and with what: the judge, the graded calls' days, suite and sources."""

    judge: str
    since: date | None = None
    until: date | None = None
    suite: str | None = None
    sources: tuple[str, ...] = DEFAULT_SOURCES
    prompt_version: str | None = None
    prompt_file: str | Path | None = None


@dataclass
class Estimate:
    """What the rejudge will cost before it is run, from the run log's stored figures."""

    judge: str
    model: str
    graded: int
    settled_before: int
    calls: int
    input_tokens: int
    output_tokens: int
    without_tokens: int
    prices: tuple[float, float] | None
    concurrency: int
    rpm: int | None
    median_latency_ms: float | None
    days: tuple[date, date] | None
    by_source: dict[str, int] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float | None:
        if self.calls == 0:
            return 0.0
        if self.prices is None:
            return None
        return self.input_tokens * self.prices[0] + self.output_tokens * self.prices[1]

    @property
    def duration_s(self) -> float | None:
        """Waves of `concurrency` calls at the median latency, or the rpm cap if slower."""
        if self.calls == 0:
            return 0.0
        if self.median_latency_ms is None:
            return None
        waves = math.ceil(self.calls / self.concurrency) * self.median_latency_ms / 1000
        return max(waves, self.calls / self.rpm * 60) if self.rpm else waves

    def _cost_text(self) -> str:
        if self.calls == 0:
            return "none (nothing to call)"
        if self.cost_usd is None:
            return "unknown (no price for this model)"
        return (
            f"~${self.cost_usd:.4f} at ${self.prices[0] * 1e6:.2f} /"
            f" ${self.prices[1] * 1e6:.2f} per million tokens in / out"
        )

    def _duration_text(self) -> str:
        if self.calls == 0:
            return "none"
        if self.duration_s is None:
            return "unknown (no stored latency)"
        rpm = f", {self.rpm} rpm" if self.rpm else ""
        return (
            f"~{self.duration_s:.0f} s at concurrency {self.concurrency}{rpm}"
            f" (median stored latency {self.median_latency_ms:.0f} ms)"
        )

    def lines(self) -> list[str]:
        span = f" made {self.days[0]} .. {self.days[1]}" if self.days else ""
        sources = ", ".join(f"{source} {n}" for source, n in sorted(self.by_source.items()))
        return [
            f"rejudge with {self.judge} ({self.model})",
            f"  graded calls: {self.graded} ({sources or 'none'}){span}",
            f"  already rejudged: {self.settled_before}; calls to make: {self.calls}",
            f"  tokens: ~{self.input_tokens:,} in + ~{self.output_tokens:,} out (stored counts"
            + (
                f"; {self.without_tokens} calls without counts, estimated)"
                if self.without_tokens
                else ")"
            ),
            f"  cost: {self._cost_text()}",
            f"  duration: {self._duration_text()}",
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "model": self.model,
            "graded": self.graded,
            "settled_before": self.settled_before,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "duration_s": self.duration_s,
        }


@dataclass
class RejudgeSummary:
    """The estimate, and (unless a dry run) what the calls did."""

    estimate: Estimate
    counts: RegradeCounts = field(default_factory=RegradeCounts)
    elapsed_s: float = 0.0
    dry_run: bool = False
    processes: int = 1
    lost_processes: int = 0

    @property
    def new_rows(self) -> int:
        return self.counts.new

    @property
    def failed(self) -> int:
        return self.counts.failed

    @property
    def unsettled(self) -> int:
        """Failed calls and the units of worker processes that died: run it again."""
        return self.counts.unsettled

    @property
    def cost_usd(self) -> float:
        return self.counts.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate.as_dict(),
            "dry_run": self.dry_run,
            "new_rows": self.new_rows,
            "failed": self.failed,
            "unsettled": self.unsettled,
            "processes": self.processes,
            "lost_processes": self.lost_processes,
            "cost_usd": round(self.cost_usd, 6),
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class _Planned:
    """One graded call to rejudge, as selected (no message text yet)."""

    graded_id: Any
    call_id: Any
    day: date
    source: str
    key: str
    row: dict[str, Any]


def token_prices(config: Config, judge: str) -> tuple[float, float] | None:
    """(input, output) USD per token the judge's calls are charged at: the configured prices,
    else LiteLLM's price map with this config's custom providers registered, else None."""
    cfg = config.model(judge)
    if (prices := cfg.prices()) is not None:
        return prices
    from evals.llm import configured_litellm

    litellm = configured_litellm(config)  # the config's custom providers and prices installed
    try:
        info = litellm.get_model_info(cfg.model)
    except Exception:  # not in LiteLLM's map: say "unknown" rather than guess
        return None
    return info.get("input_cost_per_token") or 0.0, info.get("output_cost_per_token") or 0.0


def _templates(
    conn: psycopg.Connection, request: RejudgeRequest, rows: list[dict]
) -> dict[str | None, PromptTemplate]:
    """The replacement template per prompt name (a prompt override only); errors before calls."""
    from evals.replay import ReplayError, replacement_prompt

    if not (request.prompt_version or request.prompt_file):
        return {}
    if request.prompt_version and request.prompt_file:
        raise RejudgeError("give --prompt-version or --prompt-file, not both")
    if not all(row["has_inputs"] for row in rows):
        raise RejudgeError("some selected calls stored no inputs to render another prompt from")
    templates = {}
    for name in {row["prompt_name"] for row in rows}:
        try:
            templates[name] = replacement_prompt(
                conn, {"prompt_name": name}, request.prompt_version, request.prompt_file
            )
        except ReplayError as exc:
            raise RejudgeError(str(exc)) from None
    return templates


def _select(conn: psycopg.Connection, request: RejudgeRequest) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    def start(day: date | None) -> datetime | None:
        return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)

    args = {
        "sources": list(request.sources),
        "start": start(request.since),
        "end": start(request.until + timedelta(days=1)) if request.until else None,
        "suite": request.suite,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SELECT, args).fetchall()


def _stored_template_chars(
    conn: psycopg.Connection, name: str | None, version: str | None
) -> int | None:
    row = conn.execute(
        "select length(template) from raw.prompt_versions"
        " where prompt_name = %s and prompt_version = %s",
        (name, version),
    ).fetchone()
    return None if row is None else row[0]


def plan(
    conn: psycopg.Connection, config: Config, request: RejudgeRequest
) -> tuple[list[_Planned], dict[str | None, PromptTemplate], Estimate]:
    """The graded calls still to rejudge, the prompt override, and the estimate; no call."""
    from evals.config import ConfigError

    try:
        config.require_credentials(request.judge)
        cfg = config.model(request.judge)
    except ConfigError as exc:
        raise RejudgeError(str(exc)) from None
    unknown = set(request.sources) - {"golden", "ci", "production", "import", "replay"}
    if unknown:
        raise RejudgeError(
            f"cannot rejudge source(s) {', '.join(sorted(unknown))}: graded calls"
            " come from golden, ci, production, import or replay"
        )
    rows = _select(conn, request)
    templates = _templates(conn, request, rows)
    planned = []
    for row in rows:
        template = templates.get(row["prompt_name"])
        name, version = (
            (template.name, template.version)
            if template
            else (row["prompt_name"], row["prompt_version"])
        )
        key = idempotency_key(
            SOURCE, str(row["graded_id"]), request.judge, cfg.model, name, version
        )
        planned.append(
            _Planned(row["graded_id"], row["call_id"], row["day"], row["source"], key, row)
        )
    settled: set[str] = set()
    for offset in range(0, len(planned), _KEY_CHUNK):
        settled |= settled_keys(conn, [p.key for p in planned[offset : offset + _KEY_CHUNK]])
    todo = [p for p in planned if p.key not in settled]
    estimate = _estimate(conn, config, request, planned, todo, templates)
    return todo, templates, estimate


def _estimate(
    conn: psycopg.Connection,
    config: Config,
    request: RejudgeRequest,
    planned: Sequence[_Planned],
    todo: Sequence[_Planned],
    templates: dict,
) -> Estimate:
    cfg = config.model(request.judge)
    delta = {}  # extra input tokens per call of a prompt when another template renders it
    for name, template in templates.items():
        for version in {p.row["prompt_version"] for p in todo if p.row["prompt_name"] == name}:
            old = _stored_template_chars(conn, name, version)
            delta[(name, version)] = (
                0 if old is None else (len(template.text) - old) // CHARS_PER_TOKEN
            )
    known_out = [p.row["output_tokens"] for p in todo if p.row["output_tokens"] is not None]
    mean_out = round(statistics.fmean(known_out)) if known_out else 0
    input_tokens = output_tokens = without = 0
    for p in todo:
        stored_in, stored_out = p.row["input_tokens"], p.row["output_tokens"]
        without += stored_in is None or stored_out is None
        input_tokens += max(
            0,
            (stored_in if stored_in is not None else p.row["chars"] // CHARS_PER_TOKEN)
            + delta.get((p.row["prompt_name"], p.row["prompt_version"]), 0),
        )
        output_tokens += stored_out if stored_out is not None else mean_out
    latencies = [p.row["latency_ms"] for p in todo if p.row["latency_ms"] is not None]
    days = sorted({p.day for p in planned})
    return Estimate(
        judge=request.judge,
        model=cfg.model,
        graded=len(planned),
        settled_before=len(planned) - len(todo),
        calls=len(todo),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        without_tokens=without,
        prices=token_prices(config, request.judge) if todo else None,
        concurrency=cfg.concurrency,
        rpm=cfg.rpm,
        median_latency_ms=statistics.median(latencies) if latencies else None,
        days=(days[0], days[-1]) if days else None,
        by_source=dict(Counter(p.source for p in planned)),
    )


def _batches(
    config: Config,
    request: RejudgeRequest,
    jobs: Sequence[Regrade],
    orchestrator_run_id: str | None,
) -> list[tuple[BatchSpec, list[Regrade]]]:
    """The day's jobs by batch key (one evaluation-run record each), their rows naming it."""
    from evals.batches import ATTRIBUTE, BatchSpec, lineage_of, started_by
    from evals.runner.inputs import code_version

    grouped: dict[tuple[str, str | None], list[Regrade]] = {}
    for job in jobs:
        grouped.setdefault((job.fields["batch_id"], job.fields.get("prompt_version")), []).append(
            job
        )
    batches = []
    for (key, prompt_version), batch_jobs in grouped.items():
        spec = BatchSpec(
            kind="rejudge",
            batch_key=key,
            source=SOURCE,
            model=request.judge,
            started_by=started_by(orchestrator_run_id),
            suite=request.suite,
            prompt_version=prompt_version,
            code_version=code_version(),
            lineage=lineage_of(config, request.judge),
        )
        for job in batch_jobs:
            job.fields["attributes"][ATTRIBUTE] = str(spec.batch_id)
        batches.append((spec, batch_jobs))
    return batches


def _jobs(
    conn: psycopg.Connection,
    request: RejudgeRequest,
    day: date,
    planned: Sequence[_Planned],
    templates: dict,
) -> list[Regrade]:
    """The day's regrades: each graded call's grading call, re-rendered when overridden."""
    from evals.regrade import Regrade, load_runs

    calls = load_runs(conn, [p.call_id for p in planned])
    jobs = []
    for p in planned:
        call = calls[str(p.call_id)]
        template = templates.get(call["prompt_name"])
        batch = f"{request.judge}@{template.version}" if template else request.judge
        fields: dict[str, Any] = {
            "source": SOURCE,
            "batch_id": f"{SOURCE}:{batch}:{day}",
            "attributes": {"rejudge_of": str(call["run_id"]), "as_of": day.isoformat()},
        }
        if template is not None:
            try:
                messages = template.render(**call["inputs"])
            except Exception as exc:  # jinja's UndefinedError names the missing variable
                raise RejudgeError(
                    f"prompt {template.name!r} cannot render the inputs of run"
                    f" {call['run_id']}: {exc}"
                ) from None
            fields.update(
                messages=messages, prompt_name=template.name, prompt_version=template.version
            )
        jobs.append(Regrade(key=p.key, call=call, parent_run_id=p.graded_id, fields=fields))
    return jobs


def run_rejudge(
    config: Config,
    request: RejudgeRequest,
    *,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    orchestrator_run_id: str | None = None,
    processes: int | None = None,
) -> RejudgeSummary:
    """Plan, print the estimate (`echo`), then — unless `dry_run` — make the missing calls, one
    day of graded calls after another, over `processes` worker processes sharing the judge's
    budget (default: evals.runner.processes.default_processes). Idempotent and resumable."""
    from evals import warehouse

    if processes is not None and processes < 1:
        raise RejudgeError("processes must be >= 1")
    started = time.perf_counter()
    with warehouse.connect(autocommit=True) as conn:
        todo, templates, estimate = plan(conn, config, request)
        for line in estimate.lines():
            echo(line)
        summary = RejudgeSummary(estimate=estimate, dry_run=dry_run)
        if not dry_run and todo:
            from evals.llm import run_calls

            run_calls(
                _call(
                    conn, config, request, todo, templates, summary, orchestrator_run_id, processes
                )
            )
    summary.elapsed_s = time.perf_counter() - started
    return summary


async def _call(
    conn: psycopg.Connection,
    config: Config,
    request: RejudgeRequest,
    todo: list[_Planned],
    templates: dict,
    summary: RejudgeSummary,
    orchestrator_run_id: str | None,
    processes: int | None,
) -> None:
    """The days' batches one after another, every call through one Regrader (one pool)."""
    from evals.prompts import ensure_prompt_version
    from evals.regrade import Regrader
    from evals.runner.processes import default_processes

    for template in templates.values():
        ensure_prompt_version(conn, template.name, template.version, template.text)
    by_day: dict[date, list[_Planned]] = {}
    for p in todo:
        by_day.setdefault(p.day, []).append(p)
    summary.processes = processes or default_processes(
        config.model(request.judge).concurrency, len(todo)
    )
    async with Regrader(
        config, [request.judge], processes=summary.processes,
        orchestrator_run_id=orchestrator_run_id,
    ) as regrader:  # fmt: skip
        for day, planned in sorted(by_day.items()):
            jobs = _jobs(conn, request, day, planned, templates)
            batches = _batches(config, request, jobs, orchestrator_run_id)
            summary.counts.add(await regrader.regrade_batches(conn, batches, request.judge))
    summary.lost_processes = regrader.lost_processes
