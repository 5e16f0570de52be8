"""Golden suites into the warehouse: raw.golden_suites and raw.golden_items."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evals.golden.model import Suite

if TYPE_CHECKING:
    import psycopg

_INSERT_SUITE = """
insert into raw.golden_suites (suite, suite_version, kind, description, verdicts,
    passing_verdicts, issue_tags, item_count, source_path)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (suite, suite_version) do nothing
"""
_INSERT_ITEM = """
insert into raw.golden_items (suite, suite_version, item_id, item_hash, stage, category,
    inputs, expected)
values (%s, %s, %s, %s, %s, %s, %s, %s)
on conflict (suite, suite_version, item_id) do nothing
"""


def store_suite(conn: psycopg.Connection, suite: Suite) -> bool:
    """Insert a suite version and its items in one transaction; True if the version was new.

    A version is immutable (its id is its content hash), so when the suite row already exists
    its items are complete too (they were written in the same transaction) and nothing is written.
    """
    from psycopg.types.json import Jsonb

    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            _INSERT_SUITE,
            (
                suite.name,
                suite.version,
                suite.kind,
                suite.description,
                list(suite.verdicts),
                list(suite.passing_verdicts),
                list(suite.issue_tags),
                len(suite.items),
                suite.source_path,
            ),
        )
        if cur.rowcount != 1:
            return False
        cur.executemany(
            _INSERT_ITEM,
            [
                (
                    suite.name,
                    suite.version,
                    item.item_id,
                    item.item_hash,
                    item.stage,
                    item.category,
                    Jsonb(item.inputs()),
                    Jsonb(item.expected()),
                )
                for item in suite.items
            ],
        )
    return True
