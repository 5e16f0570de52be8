"""The day: the unit of the nightly job, of the run log's partitions and of backfills.

Every daily asset shares this one definition so a single job (and a single-run backfill) can
carry them together. The first day only bounds what the UI offers for backfills.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

FIRST_DAY = "2025-01-01"
DAILY = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC")
SINGLE_RUN = dg.BackfillPolicy.single_run()
"""A backfill of N days is one run over the range, not N runs paying start-up N times."""

_PARTITION_TAG = "dagster/partition"
_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def days_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[date]:
    """The days a run covers: its partition, or every day of a single-run backfill's range;
    [] for a run without one. Read from the run's tags, so a step that is not partitioned
    itself (a drift check on a mart) sees the same nights as the daily assets of its run."""
    tags = context.run.tags
    start, end = (tags.get(tag) for tag in _RANGE_TAGS)
    if start and end:
        keys = DAILY.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    else:
        keys = [tags[_PARTITION_TAG]] if _PARTITION_TAG in tags else []
    return [date.fromisoformat(key) for key in keys]


def day_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
