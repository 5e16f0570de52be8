"""`POST /api/v1/runs`: run-log records from any language, stored as capture stores them.

The record schema is RunRecord's own fields (built from the dataclass, so a new run-log column
reaches the API without a second list), with the vocabularies as enums, an idempotency key
required and timestamps that must carry a zone. Each record then takes capture's path: the
shared redaction and the deployment's patterns, clean params, the suite's verdict parser
(`evals.capture.prepare.RowPreparer`), and `evals.runlog.write_runs`.

Idempotency: the run id defaults to a UUID derived from (idempotency key, started_at), so a
client retrying the same POST writes nothing twice, and a key that already settled answers
with the stored run's id (`created: false`). `created` is decided by a look-up before the
write, so two identical posts racing each other may both say `created: true`; the run log
still holds one row.
"""

from __future__ import annotations

import dataclasses
import typing
import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from evals.capture.prepare import RowPreparer
from evals.runlog import ROLES, SETTLED_STATUSES, STATUSES, RunRecord, write_runs

RUN_ID_NAMESPACE = uuid.UUID("6f1d3c1e-4c55-4a8e-9d55-0b1b0f3a2e77")
KEY_MAX = 512
_OVERRIDES: dict[str, Any] = {
    "idempotency_key": (str, Field(min_length=1, max_length=KEY_MAX)),
    "model": (str, Field(min_length=1, max_length=500)),
    # What an app captures; golden, CI, sample and rejudge rows come only from evalhouse's own
    # runners (the web role's row policy refuses them too: evals.warehouse.roles).
    "source": (Literal["production"], "production"),
    "role": (Literal[ROLES], "grader"),  # type: ignore[valid-type]
    "status": (Literal[STATUSES], "ok"),  # type: ignore[valid-type]
    "started_at": (AwareDatetime, ...),
    "run_id": (uuid.UUID | None, None),
    "trial": (int, Field(0, ge=0)),
    "attempts": (int, Field(1, ge=1)),
}


def _record_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(RunRecord)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(RunRecord):
        if f.name in _OVERRIDES:
            fields[f.name] = _OVERRIDES[f.name]
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (
                hints[f.name],
                None if f.default is dataclasses.MISSING else f.default,
            )
    return fields


RunIn = create_model(
    "RunIn",
    __config__=ConfigDict(extra="forbid"),
    __doc__="One LLM call (docs/run-log.md names each column).",
    **_record_fields(),
)


class RunsIn(BaseModel):
    """A batch of run-log records (at most `api.max_runs_per_request`)."""

    model_config = ConfigDict(extra="forbid")
    runs: list[RunIn] = Field(min_length=1)  # type: ignore[valid-type]


class StoredRun(BaseModel):
    run_id: uuid.UUID
    idempotency_key: str
    created: bool = Field(description="False when the key (or run id) was already stored.")


class RunsStored(BaseModel):
    created: int
    existing: int
    runs: list[StoredRun]


def to_record(run: BaseModel) -> RunRecord:
    values = run.model_dump()
    if values["run_id"] is None:
        values["run_id"] = uuid.uuid5(
            RUN_ID_NAMESPACE, f"{values['idempotency_key']}|{values['started_at'].isoformat()}"
        )
    return RunRecord(**values)


def ingest(conn, prepare: RowPreparer, runs: list[BaseModel]) -> RunsStored:
    """Redact, parse verdicts and write; answer each record with the id the log holds for it.

    `conn` is an autocommit connection with dict rows (the web pool's)."""
    records = [prepare(to_record(run)) for run in runs]
    ids = [record.run_id for record in records]
    keys = [record.idempotency_key for record in records]
    present = {
        row["run_id"]
        for row in conn.execute(
            "select run_id from raw.eval_run_keys where run_id = any(%s)", (ids,)
        ).fetchall()
    }
    write_runs(conn, records)
    settled = {
        row["idempotency_key"]: row["run_id"]
        for row in conn.execute(
            "select idempotency_key, run_id from raw.eval_run_keys"
            " where idempotency_key = any(%s) and status = any(%s) and superseded_at is null",
            (keys, list(SETTLED_STATUSES)),
        ).fetchall()
    }
    stored = []
    for record in records:
        kept = settled.get(record.idempotency_key, record.run_id)
        created = kept == record.run_id and record.run_id not in present
        stored.append(
            StoredRun(run_id=kept, idempotency_key=record.idempotency_key, created=created)
        )
    created = sum(run.created for run in stored)
    return RunsStored(created=created, existing=len(stored) - created, runs=stored)
