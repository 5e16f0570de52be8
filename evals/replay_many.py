"""`evalhouse replay-many`: replay a selection of stored calls as one batch, resumably.

Why: one replay (`evalhouse replay`, evals.replay) answers "what does this call do now"; a
prompt or model change is judged on many — a night's golden batch, the runs a reviewer flagged.
Replaying them one by one would be neither resumable nor bounded by the models' limits.

Which calls: the settled, live calls of a run-log batch (`--batch`, its `batch_id`) or the runs
listed in a file (`--runs-file`, one run id a line), each sent again as stored, to another
model (`--model`) or re-rendered from its stored inputs with another prompt (`--prompt-version`,
`--prompt-file`). Each lands as a new row as a single replay does (source `replay`, the
original's role, parent_run_id = the original), in the batch `replay:<name>` (`--name`, else the
selection's). Its key is derived from (batch, original run, model, prompt), so re-running the
same command — after a kill -9 too — makes only the calls still missing: one row per call. The
calls go through the regrade path (evals.regrade), so they are claimed, made by the runner's
pool over `--processes` worker processes under one budget, and written by its batched writer.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.regrade import RegradeCounts
from evals.replay import ReplayError, replacement_prompt
from evals.runlog import idempotency_key

if TYPE_CHECKING:
    import psycopg

    from evals.batches import BatchSpec
    from evals.config import Config
    from evals.prompts import PromptTemplate
    from evals.regrade import Regrade

SOURCE = "replay"

_SELECT = """
select * from raw.eval_runs
where (batch_id = %(batch)s or run_id = any(%(run_ids)s::uuid[]))
  and superseded_at is null and status in ('ok', 'parse_error')
  and jsonb_array_length(messages) > 0
order by started_at, run_id
"""


@dataclass(frozen=True)
class ReplayManyRequest:
    """The calls to replay (a run-log batch, or run ids), and what to change about them."""

    batch: str | None = None
    run_ids: tuple[str, ...] = ()
    model: str | None = None
    prompt_version: str | None = None
    prompt_file: str | Path | None = None
    name: str | None = None

    @property
    def batch_key(self) -> str:
        """The replay's batch: `replay:<name>`, by default named after the selection."""
        if self.name:
            return f"{SOURCE}:{self.name}"
        if self.batch:
            return f"{SOURCE}:{self.batch}"
        digest = hashlib.sha256("\n".join(sorted(self.run_ids)).encode()).hexdigest()
        return f"{SOURCE}:runs-{digest[:12]}"


@dataclass
class ReplayManySummary:
    """What a replay of many did: `counts.unsettled` calls are made by running it again."""

    batch_key: str
    selected: int = 0
    counts: RegradeCounts = field(default_factory=RegradeCounts)
    elapsed_s: float = 0.0
    processes: int = 1
    lost_processes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_key": self.batch_key,
            "selected": self.selected,
            **asdict(self.counts),
            "elapsed_s": round(self.elapsed_s, 3),
            "processes": self.processes,
            "lost_processes": self.lost_processes,
        }


def read_run_ids(path: Path) -> tuple[str, ...]:
    """Run ids from a file, one a line; blank lines and `#` comments are skipped. Anything else
    is a ReplayError naming the file and line, before anything is selected or called."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{path}: cannot read the runs file: {exc}") from None
    run_ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            run_ids.append(str(uuid.UUID(entry)))
        except ValueError:
            raise ReplayError(f"{path}:{number}: not a run id: {entry[:80]!r}") from None
    return tuple(run_ids)


def _select(conn: psycopg.Connection, request: ReplayManyRequest) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    from evals.replay import parse_run_id

    if (request.batch is None) == (not request.run_ids):
        raise ReplayError("give a batch or run ids (a runs file), one of them")
    ids = [str(parse_run_id(run_id)) for run_id in request.run_ids]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_SELECT, {"batch": request.batch, "run_ids": ids}).fetchall()
    missing = set(ids) - {str(row["run_id"]) for row in rows}
    if missing:
        raise ReplayError(
            f"{len(missing)} run(s) are not settled live calls with messages (first:"
            f" {sorted(missing)[0]})"
        )
    if not rows:
        raise ReplayError(f"batch {request.batch!r} has no settled calls with messages")
    return rows


def _templates(
    conn: psycopg.Connection, request: ReplayManyRequest, rows: list[dict[str, Any]]
) -> dict[str | None, PromptTemplate]:
    """The replacement template per prompt name (a prompt option only); errors before calls."""
    if not (request.prompt_version or request.prompt_file):
        return {}
    if request.prompt_version and request.prompt_file:
        raise ReplayError("give --prompt-version or --prompt-file, not both")
    names = {row["prompt_name"] for row in rows}
    return {
        name: replacement_prompt(
            conn, {"prompt_name": name}, request.prompt_version, request.prompt_file
        )
        for name in names
    }


def _job(config: Config, request: ReplayManyRequest, row: dict[str, Any], template: Any) -> Regrade:
    """One stored call to send again, keyed by the batch, the call, the model and the prompt."""
    from evals.regrade import Regrade
    from evals.replay import messages_to_send

    model = request.model or row["model"]
    name, version = (
        (template.name, template.version)
        if template
        else (row["prompt_name"], row["prompt_version"])
    )
    key = idempotency_key(
        request.batch_key, str(row["run_id"]), model, config.model(model).model, name, version
    )
    fields = {
        "source": SOURCE,
        "role": row["role"],
        "batch_id": request.batch_key,
        "messages": messages_to_send(row, template),
        "prompt_name": name,
        "prompt_version": version,
        "attributes": {"replay_of": str(row["run_id"])},
    }
    return Regrade(key=key, call=row, parent_run_id=row["run_id"], fields=fields)


def _batches(
    config: Config, request: ReplayManyRequest, jobs: list[Regrade]
) -> list[tuple[BatchSpec, list[Regrade]]]:
    """The jobs by model and prompt version (one evaluation-run record each), rows naming it."""
    from evals.batches import ATTRIBUTE, BatchSpec, lineage_of, started_by
    from evals.runner.inputs import code_version

    grouped: dict[tuple[str, str | None], list[Regrade]] = {}
    for job in jobs:
        model = request.model or job.call["model"]
        grouped.setdefault((model, job.fields["prompt_version"]), []).append(job)
    batches = []
    for (model, prompt_version), batch_jobs in grouped.items():
        suites = {(job.call["suite"], job.call["suite_version"]) for job in batch_jobs}
        suite, suite_version = suites.pop() if len(suites) == 1 else (None, None)
        spec = BatchSpec(
            kind="replay",
            batch_key=request.batch_key,
            source=SOURCE,
            model=model,
            started_by=started_by(None),
            suite=suite,
            suite_version=suite_version,
            prompt_version=prompt_version,
            code_version=code_version(),
            lineage=lineage_of(config, model),
        )
        for job in batch_jobs:
            job.fields["attributes"][ATTRIBUTE] = str(spec.batch_id)
        batches.append((spec, batch_jobs))
    return batches


def replay_many(
    config: Config, request: ReplayManyRequest, *, processes: int | None = None
) -> ReplayManySummary:
    """Replay every selected call not yet replayed in this batch; idempotent and resumable.
    `processes` worker processes share the models' budget (default: from the concurrency)."""
    from evals import warehouse
    from evals.config import ConfigError

    if processes is not None and processes < 1:
        raise ReplayError("processes must be >= 1")
    from evals.llm import run_calls

    started = time.perf_counter()
    summary = ReplayManySummary(batch_key=request.batch_key)
    with warehouse.connect(autocommit=True) as conn:
        rows = _select(conn, request)
        try:
            for model in {request.model or row["model"] for row in rows}:
                config.require_credentials(model)
        except ConfigError as exc:
            raise ReplayError(str(exc)) from None
        templates = _templates(conn, request, rows)
        jobs = [_job(config, request, row, templates.get(row["prompt_name"])) for row in rows]
        summary.selected = len(jobs)
        run_calls(_call(conn, config, request, jobs, templates, summary, processes))
    summary.elapsed_s = time.perf_counter() - started
    return summary


async def _call(
    conn: psycopg.Connection,
    config: Config,
    request: ReplayManyRequest,
    jobs: list[Regrade],
    templates: dict,
    summary: ReplayManySummary,
    processes: int | None,
) -> None:
    """Each batch record's calls through one Regrader (one pool for all of them)."""
    from evals.prompts import ensure_prompt_version
    from evals.regrade import Regrader
    from evals.runner.processes import default_processes

    for template in templates.values():
        ensure_prompt_version(conn, template.name, template.version, template.text)
    batches = _batches(config, request, jobs)
    models = [spec.model for spec, _ in batches]
    in_flight = sum(config.model(model).concurrency for model in set(models))
    summary.processes = processes or default_processes(in_flight, len(jobs))
    async with Regrader(config, models, processes=summary.processes) as regrader:
        summary.counts = await regrader.regrade_batches(conn, batches, request.model)
    summary.lost_processes = regrader.lost_processes
