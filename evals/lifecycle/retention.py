"""Retention: each run-log source kept for the days evalhouse.yaml's `retention:` gives it.

A pass cuts, per source with a limit, the runs started before now minus its days, with every run
descending from them (a production call's re-grade holds the same submission, so it goes with
it whatever its own source's limit), their reviews, queue entries and alert examples. One
transaction for the whole pass, one audit row per source. A dry run does the same deletes and
rolls them back, so its counts are exactly what a real pass would remove at that moment.

The marts are not rebuilt: they hold counts and metrics, no text and no subject, and keep their
history; the runs' texts are what retention bounds. (A later full refresh recounts from what
raw still holds.) A month whose runs all go is dropped as a partition
(`runlog.delete_erasure_set`), and a real pass also makes the run log's next partitions. Files
are left alone: spooled rows are cut once they reach the warehouse, and review exports are the
reviewers' working copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg

from evals import runlog
from evals.lifecycle import audit
from evals.lifecycle.erase import erase_runs

if TYPE_CHECKING:
    from evals.config import Config


@dataclass(frozen=True)
class SourceCut:
    source: str
    days: int
    cutoff: datetime
    rows: dict[str, int]


def apply_retention(
    conn: psycopg.Connection,
    config: Config,
    *,
    requested_by: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[SourceCut]:
    """Cut every source that has a limit; returns per source what went (or would go)."""
    now = now or datetime.now(UTC)
    cuts = []
    with conn.transaction() as transaction:
        for source, days in sorted(config.retention.items()):
            if days == "forever":
                continue
            cutoff = now - timedelta(days=days)
            erased = erase_runs(conn, source=source, started_before=cutoff)
            cuts.append(SourceCut(source, days, cutoff, erased.rows))
            if not dry_run:
                audit.record_erasure(
                    conn,
                    audit.RETENTION,
                    requested_by,
                    erased.rows,
                    scope={"source": source, "days": days, "started_before": cutoff.isoformat()},
                )
        if dry_run:
            raise psycopg.Rollback(transaction)
        # The nightly maintenance of the partitioned run log: next months exist before any
        # writer needs them (docs/run-log.md).
        runlog.create_partitions_ahead(conn, now)
    return cuts
