"""One erasure in the warehouse: a set of runs and everything that refers to them.

`evals.runlog.collect_erasure` picks the runs (a subject's, or a source's older than a cut-off,
with every run descending from them) into a temp table; each owner then deletes or rewrites
its own rows by that set, children before parents: reviews and the review queue
(`evals.reviews`), alert examples and evidence (`evals.alerts`), then the runs (`evals.runlog`).
All of it happens in the caller's transaction, so an erasure is whole or absent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from evals import alerts, reviews, runlog

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Erased:
    """What one erasure removed: rows per table, and the runs' ids and export files (kept in
    memory to clean files outside the warehouse, never stored)."""

    rows: dict[str, int]
    run_ids: frozenset[uuid.UUID]
    exports: tuple[Path, ...]


def erase_runs(
    conn: psycopg.Connection,
    *,
    subject_id: str | None = None,
    source: str | None = None,
    started_before: datetime | None = None,
    mentions: Sequence[str] = (),
) -> Erased:
    """Erase one subject's runs, or one source's runs started before a time, with their
    descendants, reviews, queue entries and alert examples; `mentions` are also taken out of
    alert evidence. Runs inside the caller's transaction."""
    runlog.collect_erasure(
        conn, subject_id=subject_id, source=source, started_before=started_before
    )
    # A subject's runs are few and files outside the warehouse may hold them; a retention pass
    # may cut millions and leaves files alone, so their ids never come into memory.
    run_ids = frozenset(runlog.erasure_run_ids(conn)) if subject_id is not None else frozenset()
    review_rows = reviews.erase_reviews(conn)
    alert_rows = alerts.erase_run_mentions(conn, [*mentions, *(str(run_id) for run_id in run_ids)])
    rows = {
        "eval_runs": runlog.delete_erasure_set(conn),
        "human_reviews": review_rows.reviews,
        "review_queue": review_rows.queued,
        "alerts": alert_rows,
    }
    return Erased(rows, run_ids, review_rows.exports)
