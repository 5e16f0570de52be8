"""raw.data_erasures: the record of every erasure, kept without what was erased.

One row per `forget` and per source a retention pass cut: who asked, when, how many rows of
each table and how many spooled or exported lines went, and (for `forget`) when the marts were
rebuilt without them. Never the subject's id, a text or a run id: the audit must not become
the place the erased data survives.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

FORGET = "forget"
RETENTION = "retention"


def record_erasure(
    conn: psycopg.Connection,
    action: str,
    requested_by: str,
    rows_erased: Mapping[str, int],
    *,
    scope: Mapping[str, Any] | None = None,
    files: Mapping[str, int] | None = None,
    marts_rebuilt: bool = False,
) -> uuid.UUID:
    """Insert one audit row (in the caller's transaction, so it exists exactly when the
    erasure committed); `marts_rebuilt` when the marts need no rebuild for it."""
    erasure_id = uuid.uuid4()
    conn.execute(
        "insert into raw.data_erasures"
        " (erasure_id, action, requested_by, scope, rows_erased, files, marts_rebuilt_at)"
        " values (%s, %s, %s, %s, %s, %s, case when %s then now() end)",
        (
            erasure_id,
            action,
            requested_by,
            json.dumps(dict(scope or {})),
            json.dumps(dict(rows_erased)),
            json.dumps(dict(files or {})),
            marts_rebuilt,
        ),
    )
    return erasure_id


def pending_rebuilds(conn: psycopg.Connection) -> list[uuid.UUID]:
    """Forget erasures whose rows may still sit in the marts (the rebuild failed or was put off)."""
    rows = conn.execute(
        "select erasure_id from raw.data_erasures"
        " where action = %s and marts_rebuilt_at is null order by erased_at",
        (FORGET,),
    ).fetchall()
    return [row[0] for row in rows]


def mark_rebuilt(conn: psycopg.Connection, erasure_ids: Sequence[uuid.UUID]) -> None:
    conn.execute(
        "update raw.data_erasures set marts_rebuilt_at = now() where erasure_id = any(%s)",
        (list(erasure_ids),),
    )


def erasures(conn: psycopg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The newest audit rows, newest first."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from raw.data_erasures order by erased_at desc limit %s", (limit,)
        ).fetchall()
