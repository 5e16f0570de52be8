"""Evaluation runs as records (raw.eval_batches): one row per model x suite x batch key.

A batch's id is derived from what makes its calls the same calls (batch key, source, suite and
version, model, prompt version, judge and its prompt version), so the command that is run again
after a crash reopens the record instead of starting another one, and completes it. While it
runs, a thread moves the record's heartbeat every HEARTBEAT_S; a `kill -9` stops it and
leaves the status `running`, which readers show as `stale` once the heartbeat is older than
STALE_AFTER_S. The run-log rows of a batch name it in `attributes.eval_batch_id`; the counts
on the record are recounted from those rows whenever it closes, so they cover every invocation.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from evals import warehouse

if TYPE_CHECKING:
    import psycopg

    from evals.config import Config

KINDS = ("run", "golden_runs", "gate", "rejudge", "import", "replay")
STATUSES = ("running", "completed", "failed", "cancelled")
HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0
"""Twelve missed heartbeats: a loaded machine may delay one, never twelve."""
ATTRIBUTE = "eval_batch_id"
log = logging.getLogger(__name__)
_NAMESPACE = uuid.UUID("5b0f4d1e-3a51-4c1f-9d0a-2f7e1c0b9e41")


@dataclass(frozen=True)
class Lineage:
    """Where a model sits in its family, copied from the config when a batch starts."""

    family: str | None = None
    checkpoint: str | None = None
    step: int | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()


def lineage_of(config: Config, model: str) -> Lineage:
    """The lineage evalhouse.yaml declares for `model` (empty for a model it does not list)."""
    entry = config.models.get(model)
    if entry is None:
        return Lineage()
    return Lineage(entry.family, entry.checkpoint, entry.step, entry.owner, tuple(entry.tags))


@dataclass(frozen=True)
class BatchSpec:
    """What a batch is (its identity) and how this invocation of it was started."""

    kind: str
    batch_key: str
    source: str
    model: str
    started_by: str
    suite: str | None = None
    suite_version: str | None = None
    prompt_version: str | None = None
    judge: str | None = None
    judge_prompt_version: str | None = None
    code_version: str | None = None
    lineage: Lineage = field(default_factory=Lineage)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")

    @cached_property
    def batch_id(self) -> uuid.UUID:
        identity = [
            self.batch_key,
            self.source,
            self.suite,
            self.suite_version,
            self.model,
            self.prompt_version,
            self.judge,
            self.judge_prompt_version,
        ]
        return uuid.uuid5(_NAMESPACE, json.dumps(identity, separators=(",", ":")))


def started_by(orchestrator_run_id: str | None) -> str:
    """`dagster:<run id>` inside a Dagster run, else `cli`."""
    return f"dagster:{orchestrator_run_id}" if orchestrator_run_id else "cli"


_OPEN = """
insert into raw.eval_batches (
    batch_id, kind, batch_key, source, suite, suite_version, model, prompt_version, judge,
    judge_prompt_version, code_version, started_by, model_family, model_checkpoint, model_step,
    model_owner, model_tags, planned_calls, status
) values (
    %(batch_id)s, %(kind)s, %(batch_key)s, %(source)s, %(suite)s, %(suite_version)s, %(model)s,
    %(prompt_version)s, %(judge)s, %(judge_prompt_version)s, %(code_version)s, %(started_by)s,
    %(family)s, %(checkpoint)s, %(step)s, %(owner)s, %(tags)s, %(planned_calls)s, 'running'
)
on conflict (batch_id) do update set
    status = 'running',
    invocations = raw.eval_batches.invocations + 1,
    heartbeat_at = now(),
    ended_at = null,
    error_message = null,
    kind = excluded.kind,
    started_by = excluded.started_by,
    code_version = excluded.code_version,
    planned_calls = excluded.planned_calls
"""

_CLOSE = f"""
update raw.eval_batches as b set
    status = %(status)s,
    ended_at = now(),
    heartbeat_at = now(),
    error_message = %(error_message)s,
    calls = c.calls,
    settled = c.settled,
    errors = c.errors,
    parse_errors = c.parse_errors,
    models_answered = c.models_answered
from (
    select
        count(*) as calls,
        count(*) filter (where status in ('ok', 'parse_error')) as settled,
        count(*) filter (where status in ('error', 'timeout')) as errors,
        count(*) filter (where status = 'parse_error') as parse_errors,
        coalesce(
            array_agg(distinct response_model order by response_model)
                filter (where response_model is not null and model = %(model)s),
            '{{}}'
        ) as models_answered
    from raw.eval_runs
    where batch_id = %(batch_key)s and attributes @> jsonb_build_object('{ATTRIBUTE}', %(id)s::text)
) as c
where b.batch_id = %(batch_id)s
"""


def open_batch(conn: psycopg.Connection, spec: BatchSpec, planned_calls: int | None) -> uuid.UUID:
    """Start (or, for a batch run before, reopen) the record as `running`; returns its id."""
    lineage = spec.lineage
    conn.execute(
        _OPEN,
        {
            "batch_id": spec.batch_id,
            "kind": spec.kind,
            "batch_key": spec.batch_key,
            "source": spec.source,
            "suite": spec.suite,
            "suite_version": spec.suite_version,
            "model": spec.model,
            "prompt_version": spec.prompt_version,
            "judge": spec.judge,
            "judge_prompt_version": spec.judge_prompt_version,
            "code_version": spec.code_version,
            "started_by": spec.started_by,
            "family": lineage.family,
            "checkpoint": lineage.checkpoint,
            "step": lineage.step,
            "owner": lineage.owner,
            "tags": list(lineage.tags),
            "planned_calls": planned_calls,
        },
    )
    conn.commit()
    return spec.batch_id


def heartbeat(conn: psycopg.Connection, batch_id: uuid.UUID) -> None:
    """The batch is alive: readers do not call it stale for another STALE_AFTER_S."""
    conn.execute(
        "update raw.eval_batches set heartbeat_at = now() where batch_id = %s", (batch_id,)
    )
    conn.commit()


def close_batch(
    conn: psycopg.Connection, spec: BatchSpec, status: str, error_message: str | None = None
) -> None:
    """End the record with `status` and its counts recounted from the run log."""
    if status not in STATUSES or status == "running":
        raise ValueError(f"a batch closes as completed, failed or cancelled, not {status!r}")
    conn.execute(
        _CLOSE,
        {
            "status": status,
            "error_message": error_message,
            "model": spec.model,
            "batch_key": spec.batch_key,
            "id": str(spec.batch_id),
            "batch_id": spec.batch_id,
        },
    )
    conn.commit()


class _Heartbeat(threading.Thread):
    """Moves the record's heartbeat every HEARTBEAT_S on a connection of its own, so whatever
    the batch's own code is doing (a long provider call, a big COPY) the record stays live;
    a `kill -9` stops it with the process."""

    def __init__(self, conn: psycopg.Connection, batch_id: uuid.UUID) -> None:
        super().__init__(name=f"eval-batch-heartbeat-{batch_id}", daemon=True)
        self.conninfo, self.batch_id = warehouse.conninfo_of(conn), batch_id
        self.stopped = threading.Event()

    def run(self) -> None:
        import psycopg

        try:  # the batch's own database, which need not be the warehouse in use
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                while not self.stopped.wait(HEARTBEAT_S):
                    heartbeat(conn, self.batch_id)
        except psycopg.Error as exc:  # the batch goes on; readers will call it stale
            log.warning("eval batch %s: heartbeat stopped: %s", self.batch_id, exc)


@dataclass
class Tracked:
    """An open batch: the caller sets `status` to `failed` when its work ended unfinished."""

    spec: BatchSpec
    status: str = "completed"


@contextmanager
def track(
    conn: psycopg.Connection, spec: BatchSpec, planned_calls: int | None = None
) -> Iterator[Tracked]:
    """Open the record, and close it however the block ends: an interrupt is `cancelled`,
    an exception `failed` (with its message, scrubbed of secrets), else the caller's status."""
    from evals.redact import scrub

    beat = _Heartbeat(conn, open_batch(conn, spec, planned_calls))
    beat.start()
    tracked = Tracked(spec)
    status, message = "cancelled", None  # unless it ends below: Ctrl-C, a cancelled task
    try:
        yield tracked
        status = tracked.status
    except Exception as exc:
        status, message = "failed", scrub(f"{type(exc).__name__}: {exc}")[:2000]
        raise
    finally:
        beat.stopped.set()
        beat.join()
        close_batch(conn, spec, status, message)


def stale_before(now: datetime, stale_after_s: float = STALE_AFTER_S) -> datetime:
    """A `running` batch whose heartbeat is older than this is shown as `stale`."""
    return now - timedelta(seconds=stale_after_s)


def effective_status(
    status: str, heartbeat_at: datetime, now: datetime, stale_after_s: float = STALE_AFTER_S
) -> str:
    """The stored status, except `stale` for a `running` batch whose process stopped beating."""
    if status == "running" and heartbeat_at < stale_before(now, stale_after_s):
        return "stale"
    return status


def fetch_batch(conn: psycopg.Connection, batch_id: uuid.UUID | str) -> dict[str, Any] | None:
    """One batch record as a dict (column -> value), or None."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from raw.eval_batches where batch_id = %s", (str(batch_id),)
        ).fetchone()


def calls_by_run(
    conn: psycopg.Connection, batch_key: str, batch_id: uuid.UUID | str, orchestrator_run_id: str
) -> tuple[int, float]:
    """Calls and their cost that one orchestrator run wrote to a batch, whichever of its steps
    (processes, machines) wrote them: steps report through the warehouse, not to each other."""
    calls, cost = conn.execute(
        "select count(*), coalesce(sum(cost_usd), 0) from raw.eval_runs"
        " where batch_id = %s and orchestrator_run_id = %s"
        f" and attributes @> jsonb_build_object('{ATTRIBUTE}', %s::text)",
        (batch_key, orchestrator_run_id, str(batch_id)),
    ).fetchone()
    return calls, float(cost)
