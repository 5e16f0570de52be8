"""`evalhouse forget --subject ID`: a learner's data erased everywhere evalhouse keeps it.

Where a subject lives: raw.eval_runs (its rows by `subject_id`, and every row descending from
them: re-grades, replays and rejudges copy the submission), raw.human_reviews and
raw.review_queue (by run), alert examples and evidence, the capture spool and its rejected rows
(rows that never reached the warehouse), and review-queue exports (files the queue recorded it
wrote). The files are rewritten inside the transaction that deletes the rows and writes the
audit row, before it commits: a crash before the commit leaves the rows (and the export paths)
for a second `forget` to find, a crash after it leaves only the marts, pending in the audit.

The marts: `int_eval_runs` and the incremental marts over it keep rows that raw no longer has,
so the models downstream of the erased tables are rebuilt with `dbt run --full-refresh`. A full
refresh is the one rebuild that provably holds nothing of the subject; it costs a whole build
(minutes at 10M calls), which an erasure, a rare and legal act, can afford. A failed or deferred
rebuild stays pending in the audit table and the next `forget` retries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.lifecycle import audit
from evals.lifecycle.erase import erase_runs

if TYPE_CHECKING:
    import uuid

    import psycopg

    from evals.config import Config

REBUILD_SELECTION = (
    "@source:raw.eval_runs",
    "@source:raw.human_reviews",
    "@source:raw.review_queue",
    "@source:raw.alerts",
)
"""Every dbt model built from a table an erasure changes, with everything those models read
(`@`), so the rebuild also works on a warehouse whose marts were never built whole."""


class ForgetError(RuntimeError):
    """The erasure could not be completed; the message says what is left to do."""


@dataclass(frozen=True)
class Forgotten:
    erasure_id: uuid.UUID
    rows: dict[str, int]
    files: dict[str, int]

    @property
    def complete(self) -> bool:
        """False while a live app holds spool segments that may still hold the subject."""
        return self.files["busy_spool_segments"] == 0


def forget_subject(
    conn: psycopg.Connection, config: Config, subject_id: str, *, requested_by: str
) -> Forgotten:
    """Erase `subject_id` from the warehouse, the spool and the queue exports, and record it.

    The marts still hold the subject's calls until `rebuild_marts` runs.
    """
    from evals.capture import spool_dir
    from evals.capture.spool import Spool
    from evals.reviews import erase_from_export

    if not subject_id.strip():
        raise ValueError("the subject id is empty")
    with conn.transaction():
        erased = erase_runs(conn, subject_id=subject_id, mentions=[subject_id])
        mentions = [subject_id, *(str(run_id) for run_id in erased.run_ids)]
        spool = Spool(spool_dir(config)).erase(
            lambda record: (
                record.subject_id == subject_id
                or record.run_id in erased.run_ids
                or record.parent_run_id in erased.run_ids
            ),
            mentions,
        )
        files = {
            "spool_rows": spool.rows,
            "busy_spool_segments": spool.skipped_busy,
            "export_files": len(erased.exports),
            "export_rows": sum(erase_from_export(path, erased.run_ids) for path in erased.exports),
        }
        nothing_in_marts = erased.rows["eval_runs"] == 0 and erased.rows["alerts"] == 0
        erasure_id = audit.record_erasure(
            conn,
            audit.FORGET,
            requested_by,
            erased.rows,
            files=files,
            marts_rebuilt=nothing_in_marts,
        )
    return Forgotten(erasure_id, erased.rows, files)


def rebuild_marts(conn: psycopg.Connection, config: Config) -> int:
    """Rebuild the models downstream of erased tables when an erasure awaits it; returns how
    many erasures the rebuild completed (0: none was pending)."""
    from evals.dbt import dbt_env, run_dbt

    pending = audit.pending_rebuilds(conn)
    if not pending:
        return 0
    result = run_dbt(
        ["run", "--quiet", "--full-refresh", "--select", *REBUILD_SELECTION],
        env=dbt_env(config=config),
    )
    if not result.success:
        raise ForgetError(
            f"dbt could not rebuild the marts ({result.exception or 'a model failed'}); the "
            "subject's calls may remain in them: run `evalhouse forget --rebuild` again"
        )
    with conn.transaction():
        audit.mark_rebuilt(conn, pending)
    return len(pending)
