"""SQL behind /runs: the filter form as parameterised WHERE clauses, keyset pages, exports.

Pages are keyset-paginated on (started_at, run_id) descending, which the started_at index serves
at any depth: page 10 000 costs what page 1 costs, where OFFSET would scan everything before it.
The cursor is the last row's key, opaque (base64) but not secret.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from typing import Any

PAGE_SIZE = 50
EXPORT_MAX_ROWS = 100_000

LIST_COLUMNS = (
    "run_id",
    "started_at",
    "source",
    "suite",
    "stage",
    "item_id",
    "role",
    "model",
    "response_model",
    "prompt_name",
    "prompt_version",
    "verdict",
    "passed",
    "score",
    "issue_tags",
    "status",
    "error_class",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "parent_run_id",
    "subject_id",
    "touchpoint",
)

# Filters compared for equality, each with the column it constrains.
_EQUALITY = {
    "suite": "suite",
    "stage": "stage",
    "prompt_version": "prompt_version",
    "verdict": "verdict",
    "status": "status",
    "source": "source",
    "role": "role",
    "item_id": "item_id",
}


class BadFilter(ValueError):
    """A filter value that cannot be used (an unparsable date or cursor)."""


@dataclass(frozen=True)
class RunFilters:
    """The /runs form; empty strings mean "any". Routes take it as `Depends()`, so each field is
    a declared query parameter (and the web fuzz test finds it); values are trimmed to 200."""

    suite: str = ""
    stage: str = ""
    model: str = ""
    prompt_version: str = ""
    verdict: str = ""
    status: str = ""
    source: str = ""
    role: str = ""
    item_id: str = ""
    date_from: str = ""
    date_to: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, getattr(self, f.name).strip()[:200])

    def as_query(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for name, column in _EQUALITY.items():
            if value := getattr(self, name):
                clauses.append(f"{column} = %s")
                params.append(value)
        if self.model:  # the model asked for, or the one that answered
            clauses.append("(model = %s or response_model = %s)")
            params += [self.model, self.model]
        first = _day(self.date_from, time.min) if self.date_from else None
        last = _day(self.date_to, time.max) if self.date_to else None
        if first and last and first > last:
            raise BadFilter("date_from is after date_to")
        if first:
            clauses.append("started_at >= %s")
            params.append(first)
        if last:  # inclusive: the whole last day (its last microsecond, so 9999-12-31 works)
            clauses.append("started_at <= %s")
            params.append(last)
        return clauses, params


def _day(text: str, at: time) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), at, tzinfo=UTC)
    except ValueError:
        raise BadFilter(f"not a date (YYYY-MM-DD): {text!r}") from None


def keyset_cursor(at: datetime, key: uuid.UUID) -> str:
    """A (timestamp, uuid) keyset position as an opaque cursor; `decode_cursor` reads it back."""
    raw = f"{at.isoformat()}|{key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def encode_cursor(row: Mapping[str, Any]) -> str:
    return keyset_cursor(row["started_at"], row["run_id"])


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        started_at, _, run_id = raw.partition("|")
        return datetime.fromisoformat(started_at), uuid.UUID(run_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadFilter("invalid page cursor") from None


def page_query(filters: RunFilters, cursor: str | None, limit: int) -> tuple[str, list[Any]]:
    """One keyset page (limit + 1 rows are fetched to know whether another page follows)."""
    clauses, params = filters.where()
    if cursor:
        started_at, run_id = decode_cursor(cursor)
        # The first clause is what the started_at index can range-scan; the row comparison
        # breaks ties between calls that started in the same microsecond.
        clauses.append("started_at <= %s and (started_at, run_id) < (%s, %s)")
        params += [started_at, started_at, run_id]
    where = f"where {' and '.join(clauses)}" if clauses else ""
    sql = (
        f"select {', '.join(LIST_COLUMNS)} from raw.eval_runs {where}"
        " order by started_at desc, run_id desc limit %s"
    )
    return sql, [*params, limit + 1]


def export_query(filters: RunFilters, limit: int) -> tuple[str, list[Any]]:
    return page_query(filters, None, min(limit, EXPORT_MAX_ROWS) - 1)
