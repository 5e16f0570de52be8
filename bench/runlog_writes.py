"""Run-log write throughput: realistic ~2 KB rows through `evals.runlog.write_runs`.

Writes N rows in batches (as the runner does), then writes the same rows again to show the
idempotent replay costs about the same and adds nothing. Uses the warehouse selected by
EVALHOUSE_DATABASE_URL, else a throwaway embedded Postgres under a temp dir.

    .venv/bin/python -m bench.runlog_writes [--rows 200000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bench._machine import describe
from bench._warehouse import bench_warehouse
from evals import warehouse
from evals.runlog import (
    _JSON_COLUMNS,
    COLUMNS,
    PARALLEL_MIN_ROWS,
    WRITE_CONNECTIONS,
    RunRecord,
    _copy,
    _copy_chunks,
    _json,
    create_partitions,
    idempotency_key,
    write_runs,
    write_runs_parallel,
)

if TYPE_CHECKING:
    import psycopg

_WORDS = (
    "loop",
    "index",
    "variable",
    "function",
    "return",
    "list",
    "edge",
    "case",
    "value",
    "string",
    "learner",
    "rubric",
    "print",
    "range",
    "boundary",
    "answer",
    "type",
)


def _text(rng: random.Random, chars: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(_WORDS))
    return " ".join(words)[:chars]


def realistic_rows(n: int, seed: int = 1) -> list[RunRecord]:
    """Grader rows shaped like the runner's: ~2 KB each (rubric, submission, messages, feedback)."""
    rng = random.Random(seed)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        rubric, submission = _text(rng, 300), _text(rng, 500)
        rows.append(
            RunRecord(
                idempotency_key=idempotency_key("bench", i),
                source="golden",
                role="grader",
                model="tutor-small",
                started_at=start + timedelta(seconds=i),
                status="ok",
                batch_id="bench",
                suite="intro-python",
                suite_version="0123456789abcdef",
                item_id=f"item-{i % 500}",
                item_hash=f"{i:064x}",
                stage=f"stage-{i % 6}",
                category="loops",
                code_version="abc123",
                rubric=rubric,
                submission=submission,
                inputs={"stage": f"stage-{i % 6}"},
                messages=[
                    {"role": "system", "content": _text(rng, 250)},
                    {"role": "user", "content": rubric + "\n" + submission},
                ],
                params={"temperature": 0},
                response_model="tutor-small-sim-v1",
                provider="evalhouse-sim",
                prompt_name="rubric_grader",
                prompt_version="f41890575d948195",
                output_text='{"verdict": "pass", "score": 0.9}',
                verdict="pass",
                passed=True,
                score=0.9,
                feedback={"strengths": ["clear"], "problems": [], "suggestion": "ok"},
                issue_tags=["off_by_one"],
                expected_verdict="pass",
                latency_ms=900.0,
                input_tokens=300,
                output_tokens=60,
                cost_usd=0.0001,
                timings={"queued_ms": 0.1, "call_ms": 900.0, "parse_ms": 0.05},
            )
        )
    return rows


def _write_all(
    conn: psycopg.Connection, rows: list[RunRecord], batch: int, writer=write_runs
) -> tuple[int, float]:
    started, written = time.perf_counter(), 0
    for offset in range(0, len(rows), batch):
        written += writer(conn, rows[offset : offset + batch])
    return written, time.perf_counter() - started


_PLAIN = "bench_eval_runs_plain"


def plain_copy_writer(conn: psycopg.Connection, records: list[RunRecord]) -> int:
    """The ceiling: the writer's own COPY text into an unpartitioned copy with no index, no
    key table, no conflict handling."""
    with conn.transaction(), conn.cursor() as cur:
        _copy(cur, f"copy raw.{_PLAIN} ({', '.join(COLUMNS)}) from stdin", _copy_chunks(records))
    return len(records)


def _empty(conn: psycopg.Connection) -> None:
    conn.execute(f"truncate raw.eval_runs, raw.eval_run_keys, raw.{_PLAIN} cascade")
    conn.execute("checkpoint")


def _format_cost(rows: list[RunRecord]) -> float:
    """Client CPU µs per row to format the rows' COPY text, best of three (GIL-bound Python:
    the writer and the plain COPY both pay it)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _chunk in _copy_chunks(rows):
            pass
        best = min(best, time.process_time() - started)
    return best / len(rows) * 1e6


_TICKS = os.sysconf("SC_CLK_TCK")


def _server_cpu(conns: list[psycopg.Connection]) -> float | None:
    """CPU seconds the connections' backends have used, when the server runs on this machine
    (a figure the load of other processes barely moves); None otherwise."""
    try:
        total = 0
        for conn in conns:
            with open(f"/proc/{conn.info.backend_pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / _TICKS


def _per_row(before: float | None, after: float | None, rows: int) -> str:
    return (
        ""
        if before is None or after is None
        else f", server {(after - before) / rows * 1e6:.0f} µs/row"
    )


_TOAST = """
select c.relname, coalesce(array_to_string(c.reloptions, ','), 'default')
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'raw' and c.relkind = 'r'
  and (c.relname = %s or c.oid in (select inhrelid from pg_inherits
                                   where inhparent = 'raw.eval_runs'::regclass))
order by 1
"""


def _compare_connections(rows: list[RunRecord], batch: int, counts: list[int], rounds: int) -> None:
    """Plain COPY vs write_runs over 1, 2, 4… connections, interleaved in `rounds` rounds, all
    on the same rows; each variant starts from empty tables."""
    print(f"COPY text formatting: {_format_cost(rows):.1f} µs/row client CPU", flush=True)
    print(
        f"write_runs splits batches of >= {PARALLEL_MIN_ROWS} rows over WRITE_CONNECTIONS ="
        f" {WRITE_CONNECTIONS}",
        flush=True,
    )
    with warehouse.connect(autocommit=True) as conn:
        conn.execute(
            f"create table if not exists raw.{_PLAIN} (like raw.eval_runs including defaults)"
            " with (toast_tuple_target = 8160)"
        )
        create_partitions(conn, [rows[0].started_at, rows[-1].started_at])
        for name, options in conn.execute(_TOAST, (_PLAIN,)).fetchall():
            print(f"  {name}: {options}")
        for round_ in range(rounds):
            _empty(conn)
            before = _server_cpu([conn])
            _, plain = _write_all(conn, rows, batch, plain_copy_writer)
            print(
                f"round {round_ + 1}: plain COPY (no index)      : {len(rows) / plain:9,.0f} rows/s"
                f"{_per_row(before, _server_cpu([conn]), len(rows))}"
                f"  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            for count in counts:
                _empty(conn)
                conns = [warehouse.connect(autocommit=True) for _ in range(count)]
                try:
                    before = _server_cpu(conns)
                    written, first = _write_all(conns, rows, batch, write_runs_parallel)
                    after = _server_cpu(conns)
                    again, replay = _write_all(conns, rows, batch, write_runs_parallel)
                finally:
                    for extra in conns:
                        extra.close()
                stored = conn.execute("select count(*) from raw.eval_runs").fetchone()[0]
                print(
                    f"round {round_ + 1}: write_runs, {count} connection(s): "
                    f"{written / first:9,.0f} rows/s ({written / first * plain / len(rows):.0%}"
                    f" of plain{_per_row(before, after, len(rows))}),"
                    f" replay {len(rows) / replay:,.0f} rows/s ({again} new),"
                    f" {stored} stored  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        conn.execute(f"drop table raw.{_PLAIN}")


_EXECUTEMANY = (
    f"insert into raw.eval_runs ({', '.join(COLUMNS)}) values ("
    + ", ".join("%s::jsonb" if name in _JSON_COLUMNS else "%s" for name in COLUMNS)
    + ") on conflict do nothing"
)


def _params(record: RunRecord) -> list:
    return [
        (None if value is None else _json(value)) if name in _JSON_COLUMNS else value
        for name, value in zip(COLUMNS, (getattr(record, name) for name in COLUMNS), strict=True)
    ]


def executemany_writer(conn: psycopg.Connection, records: list[RunRecord]) -> int:
    """The first writer (pipelined executemany, ON CONFLICT DO NOTHING), for comparison; it
    writes no key rows (it predates raw.eval_run_keys), so it does a little less work."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_EXECUTEMANY, [_params(record) for record in records])
        return cur.rowcount


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time the executemany writer on the same rows (new run ids)",
    )
    parser.add_argument(
        "--connections",
        default="",
        help="e.g. 1,2,4: plain COPY vs write_runs_parallel over that many connections",
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(describe(), flush=True)
    rows = realistic_rows(args.rows)
    size = sum(len(str(v)) for v in rows[0].to_dict().values())
    print(
        f"rows: {args.rows} of ~{size} B in batches of {args.batch}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    if args.connections:
        counts = [int(count) for count in args.connections.split(",")]
        with bench_warehouse():
            _compare_connections(rows, args.batch, counts, args.rounds)
        return
    with bench_warehouse(), warehouse.connect() as conn:
        conn.execute("truncate raw.eval_runs, raw.eval_run_keys cascade")
        conn.commit()
        written, first = _write_all(conn, rows, args.batch)
        again, replay = _write_all(conn, rows, args.batch)
        count = conn.execute("select count(*) from raw.eval_runs").fetchone()[0]
        conn.execute("truncate raw.eval_runs, raw.eval_run_keys cascade")
        conn.commit()
        if args.compare:
            for record in rows:
                record.run_id = uuid.uuid4()
            _, old = _write_all(conn, rows, args.batch, executemany_writer)
            conn.execute("truncate raw.eval_runs, raw.eval_run_keys cascade")
            conn.commit()
    print(f"first write : {written / first:,.0f} rows/s ({first:.2f} s, {written} new)")
    print(f"replay      : {args.rows / replay:,.0f} rows/s ({replay:.2f} s, {again} new)")
    print(f"rows stored : {count} (exactly one per run_id)")
    if args.compare:
        print(f"executemany : {args.rows / old:,.0f} rows/s ({old:.2f} s) — the previous writer")


if __name__ == "__main__":
    main()
