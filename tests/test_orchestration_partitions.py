"""`days_of`: the one helper every asset and check uses to learn which days its run covers."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from orchestration.lib.partitions import days_of


def _context(**tags: str) -> SimpleNamespace:
    return SimpleNamespace(run=SimpleNamespace(tags=tags))


def test_a_run_of_one_partition_covers_that_day():
    assert days_of(_context(**{"dagster/partition": "2026-11-10"})) == [date(2026, 11, 10)]


def test_a_single_run_backfill_covers_every_day_of_its_range_across_a_month_end():
    context = _context(
        **{
            "dagster/asset_partition_range_start": "2026-10-30",
            "dagster/asset_partition_range_end": "2026-11-02",
        }
    )
    assert days_of(context) == [
        date(2026, 10, 30),
        date(2026, 10, 31),
        date(2026, 11, 1),
        date(2026, 11, 2),
    ]


def test_a_run_without_a_partition_covers_no_day():
    assert days_of(_context(**{"dagster/job": "adhoc"})) == []
