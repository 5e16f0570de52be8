"""The partitioned run log (migration 0016): every row kept by the migration and filed under its
month, partitions made on demand, one live settled row per key across months, whole months
dropped by retention."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from evals import runlog, warehouse
from evals.config import Config
from evals.lifecycle.retention import apply_retention
from evals.reviews import Review, write_reviews
from evals.runlog import RunRecord, write_runs

# A checksum of every column of every row, independent of order and of the table's layout.
_CHECKSUM = "select count(*), sum(hashtextextended(r::text, 0)::numeric) from raw.eval_runs r"
# The month each row's partition holds, against the month of its started_at in UTC.
_MISFILED = """
select count(*) from raw.eval_runs r
join pg_class c on c.oid = r.tableoid
where c.relname <> 'eval_runs_y' || to_char(r.started_at at time zone 'UTC', 'YYYY"m"MM')
"""
_FILL = """
insert into raw.eval_runs (run_id, idempotency_key, source, role, model, started_at, status,
    submission, attributes, superseded_at)
select gen_random_uuid(), 'key-' || (g %% %(keys)s), 'golden', 'grader', 'm',
    %(first)s::timestamptz + (g * %(step)s::interval),
    case when g < %(keys)s then 'ok' else 'error' end,
    'submission ' || g || ' ✓', jsonb_build_object('g', g), null
from generate_series(0, %(rows)s - 1) as g
"""
NOW = datetime.now(UTC)
EDGES = [
    datetime(2000, 1, 1, tzinfo=UTC),  # the importer's earliest plausible call
    datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # still 2025 in UTC
    NOW + timedelta(days=1),  # the importer's latest plausible call
]


def _record(key: str, started_at: datetime, status: str = "ok", **columns) -> RunRecord:
    return RunRecord(
        idempotency_key=key,
        source=columns.pop("source", "golden"),
        role="grader",
        model="m",
        started_at=started_at,
        status=status,
        **columns,
    )


def _fill_at_0015(conn: psycopg.Connection, rows: int, keys: int, first: datetime, step: str):
    conn.execute(_FILL, {"rows": rows, "keys": keys, "first": first, "step": step})


def test_the_migration_keeps_every_row_and_files_it_under_its_utc_month(warehouse_url: str):
    warehouse.migrate("0015")
    edge_ids = [uuid.uuid4() for _ in EDGES]
    with warehouse.connect(autocommit=True) as conn:
        # 3,000 rows over ~25 months (settled first, then failed retries of the same keys).
        _fill_at_0015(conn, 3000, 2000, datetime(2024, 6, 15, tzinfo=UTC), "6 hours")
        for run_id, at in zip(edge_ids, EDGES, strict=True):
            conn.execute(
                "insert into raw.eval_runs (run_id, idempotency_key, source, role, model,"
                " started_at, status) values (%s, %s, 'import', 'grader', 'm', %s, 'ok')",
                (run_id, f"edge-{at.isoformat()}", at),
            )
        conn.execute(
            "update raw.eval_runs set superseded_at = now() where idempotency_key = 'key-7'"
        )
        conn.execute(
            "insert into raw.human_reviews (review_id, run_id, reviewer, verdict)"
            " values (gen_random_uuid(), %s, 'ana', 'pass')",
            (edge_ids[0],),
        )
        before = conn.execute(_CHECKSUM).fetchone()
    assert warehouse.migrate() == warehouse.head_revision()
    with warehouse.connect() as conn:
        assert conn.execute(_CHECKSUM).fetchone() == before
        assert before[0] == 3005
        assert conn.execute(_MISFILED).fetchone() == (0,)
        partitions = {
            row[0]
            for row in conn.execute(
                "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
                " where i.inhparent = 'raw.eval_runs'::regclass"
            )
        }
        assert {"eval_runs_y2000m01", "eval_runs_y2025m12", "eval_runs_y2026m01"} <= partitions
        ahead = NOW + timedelta(days=1)
        assert f"eval_runs_y{ahead.year}m{ahead.month:02d}" in partitions
        keys = conn.execute(
            "select count(*), count(*) filter (where superseded_at is not null)"
            " from raw.eval_run_keys"
        ).fetchone()
        assert keys == (3005, 2)  # key-7: its settled row and one failed retry
        (at_year_edge,) = conn.execute(
            "select c.relname from raw.eval_runs r join pg_class c on c.oid = r.tableoid"
            " where r.run_id = %s",
            (edge_ids[3],),
        ).fetchone()
        assert at_year_edge == "eval_runs_y2025m12"
        assert conn.execute("select count(*) from raw.human_reviews").fetchone() == (1,)


def test_a_row_in_a_month_without_a_partition_makes_it_and_lands_once(warehouse_url: str):
    far = datetime(2031, 5, 17, 12, tzinfo=UTC)
    records = [_record("far-1", far), _record("far-2", far + timedelta(days=40))]
    with warehouse.connect(autocommit=True) as conn:
        assert write_runs(conn, records) == 2
        assert write_runs(conn, records) == 0
        placed = conn.execute(
            "select c.relname, c.reloptions from raw.eval_runs r"
            " join pg_class c on c.oid = r.tableoid order by r.started_at"
        ).fetchall()
    # Made on demand, each keeps ~2-3 KB rows inline and uncompressed like the others (0005).
    assert placed == [
        ("eval_runs_y2031m05", ["toast_tuple_target=8160"]),
        ("eval_runs_y2031m06", ["toast_tuple_target=8160"]),
    ]


def test_a_key_settles_once_across_months_while_failures_keep_their_rows(warehouse_url: str):
    may, june, july = (datetime(2026, month, 3, tzinfo=UTC) for month in (5, 6, 7))
    with warehouse.connect(autocommit=True) as conn:
        assert write_runs(conn, [_record("k", may, "error"), _record("k", june, "ok")]) == 2
        # A re-run settling the same key a month later, alone and amid a batch: skipped.
        assert write_runs(conn, [_record("k", july, "ok")]) == 0
        assert write_runs(conn, [_record("k", july, "ok"), _record("other", july)]) == 1
        rows = conn.execute(
            "select status, started_at from raw.eval_runs where idempotency_key = 'k'"
            " order by started_at"
        ).fetchall()
        assert runlog.settled_keys(conn, ["k", "other", "none"]) == {"k", "other"}
    assert rows == [("error", may), ("ok", june)]


def test_a_superseded_import_gives_its_key_to_the_replacement_in_another_month(
    warehouse_url: str,
):
    old = _record("imp", datetime(2025, 3, 1, tzinfo=UTC), source="import")
    new = _record("imp", datetime(2026, 3, 1, tzinfo=UTC), source="import")
    with warehouse.connect(autocommit=True) as conn:
        assert write_runs(conn, [old]) == 1
        assert write_runs(conn, [new]) == 0
        assert runlog.supersede_imports(conn, "f.jsonl", ["imp"], [new.run_id]) == 1
        assert write_runs(conn, [new]) == 1
        live = conn.execute(
            "select run_id from raw.eval_run_keys where idempotency_key = 'imp'"
            " and superseded_at is null"
        ).fetchall()
    assert live == [(new.run_id,)]


def test_retention_drops_a_month_it_empties_and_deletes_rows_of_a_month_it_shares(
    warehouse_url: str,
):
    now = datetime(2026, 11, 15, tzinfo=UTC)
    old_month = [_record(f"p{i}", datetime(2026, 1, 1 + i, tzinfo=UTC)) for i in range(3)]
    for record in old_month:
        record.source = "production"
    kept = _record("g", datetime(2026, 2, 1, tzinfo=UTC))
    shared = _record("p-feb", datetime(2026, 2, 2, tzinfo=UTC), source="production")
    config = Config(retention={"production": 180, "golden": "forever"})
    with warehouse.connect(autocommit=True) as conn:
        write_runs(conn, [*old_month, kept, shared])
        write_reviews(conn, [Review(old_month[0].run_id, "ana", "pass")])
        (cut,) = apply_retention(conn, config, requested_by="night", now=now)
        partitions = conn.execute(
            "select to_regclass('raw.eval_runs_y2026m01'), to_regclass('raw.eval_runs_y2026m02')"
        ).fetchone()
        left = conn.execute("select run_id from raw.eval_runs").fetchall()
        keys = conn.execute("select run_id from raw.eval_run_keys").fetchall()
        again = write_runs(conn, [old_month[1]])  # a late replay makes the month anew
    assert cut.rows["eval_runs"] == 4
    assert partitions == (None, "raw.eval_runs_y2026m02")
    assert left == keys == [(kept.run_id,)]
    assert again == 1


@pytest.mark.scale
def test_the_migration_keeps_a_million_rows(warehouse_url: str):
    warehouse.migrate("0015")
    with warehouse.connect(autocommit=True) as conn:
        _fill_at_0015(conn, 1_000_000, 900_000, datetime(2024, 1, 1, tzinfo=UTC), "1 minute")
        before = conn.execute(_CHECKSUM).fetchone()
    assert warehouse.migrate() == warehouse.head_revision()
    with warehouse.connect() as conn:
        assert conn.execute(_CHECKSUM).fetchone() == before
        assert conn.execute(_MISFILED).fetchone() == (0,)
        assert conn.execute("select count(*) from raw.eval_run_keys").fetchone() == (1_000_000,)


def test_a_batch_split_over_connections_is_stored_once_and_replays_to_nothing(
    warehouse_url: str,
):
    start = datetime(2026, 3, 31, 23, tzinfo=UTC)
    records = [
        _record(f"par-{i}", start + timedelta(minutes=i)) for i in range(runlog.PARALLEL_MIN_ROWS)
    ]
    twin = _record("par-7", start + timedelta(days=3))  # the same key settled again, later
    conns = [warehouse.connect(autocommit=True) for _ in range(3)]
    try:
        assert runlog.write_runs_parallel(conns, [*records, twin]) == len(records)
        # Written again on one idle connection: large enough, write_runs splits it itself.
        assert write_runs(conns[0], [*records, twin]) == 0
        stored = (
            conns[0]
            .execute("select count(*), count(distinct idempotency_key) from raw.eval_runs")
            .fetchone()
        )
    finally:
        for conn in conns:
            conn.close()
    assert stored == (len(records), len(records))


def test_the_web_role_makes_a_plausible_month_and_is_refused_a_far_one(
    pg_server, warehouse_url: str
):
    from conftest import role_url

    from evals.warehouse.roles import WEB_ROLE

    backfill = _record("api-2001", datetime(2001, 3, 9, tzinfo=UTC), source="production")
    far = _record("api-2200", datetime(2200, 1, 1, tzinfo=UTC), source="production")
    with psycopg.connect(role_url(pg_server, warehouse_url, WEB_ROLE), autocommit=True) as web:
        assert write_runs(web, [backfill]) == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only its owner"):
            write_runs(web, [far])
    with warehouse.connect() as conn:
        assert conn.execute("select to_regclass('raw.eval_runs_y2001m03')").fetchone() == (
            "raw.eval_runs_y2001m03",
        )


def test_a_new_calls_run_id_is_time_ordered_and_carries_the_millisecond_it_was_made(
    warehouse_url: str,
):
    """Run ids are UUID version 7: ids made later sort after earlier ones, so a day's calls
    append to the indexes keyed by run id instead of landing across them. Postgres reads the
    time back from the stored id's first 48 bits."""
    made_from = datetime.now(UTC)
    earlier = [_record(f"earlier-{i}", NOW) for i in range(1000)]
    time.sleep(0.002)
    later = [_record(f"later-{i}", NOW) for i in range(1000)]
    made_until = datetime.now(UTC)

    run_ids = [record.run_id for record in earlier + later]
    assert len(set(run_ids)) == len(run_ids)
    assert {(run_id.version, run_id.variant) for run_id in run_ids} == {(7, uuid.RFC_4122)}
    assert max(r.run_id for r in earlier) < min(r.run_id for r in later)
    with warehouse.connect(autocommit=True) as conn:
        assert write_runs(conn, earlier + later) == 2000
        [(first_ms, last_ms)] = conn.execute(
            "select min(ms), max(ms) from (select ('x' || left(replace(run_id::text, '-', ''),"
            " 12))::bit(48)::bigint as ms from raw.eval_runs) as stamped"
        ).fetchall()
    assert made_from.timestamp() * 1000 - 1 <= first_ms <= last_ms <= made_until.timestamp() * 1000
