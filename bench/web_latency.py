"""Page latency of `evalhouse serve` over a large run log: the overview, run search, one run,
and the evaluation-run pages (batches, one batch, compare, leaderboard).

Fills raw.eval_runs with N synthetic calls server-side (INSERT ... SELECT generate_series: 90
days, 6 stages, 3 models, 2 prompt versions, 2 sources, errors, parse errors, issue tags); the
golden calls belong to `--batches` evaluation runs (raw.eval_batches, one model and prompt
version each, 600 items, as many trials as the rows allow, every fifth a checkpoint of one
family). Builds the marts with dbt, then times whole HTTP requests through the real app
in-process (auth, queries as the least-privilege role, template rendering) and, apart, the
overview's mart queries run one after another versus all at once.

    .venv/bin/python -m bench.web_latency [--rows 10000000] [--batches 10000] [--repeat 30]
        [--skip-fill] [--skip-build] [--full-refresh]

Right after the build it times the overview of golden rows over 90 days: its mart queries'
first round (nothing has read the new marts yet) against their steady p50 — dbt's analyze
post-hook is what keeps the two close (issue 16) — and the page on a fresh app.

Uses EVALHOUSE_DATABASE_URL if set, else an embedded Postgres under artifacts/bench-web-home.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from evals import runlog, warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-web-token-0123456789abcdef"
CHUNK = 1_000_000
DAYS = 90
ITEMS = 600

_FILL = """
insert into raw.eval_runs (
    run_id, idempotency_key, batch_id, trial, source, role, model, response_model, provider,
    suite, suite_version, item_id, stage, prompt_name, prompt_version, verdict, passed, score,
    issue_tags, expected_verdict, attributes, started_at, latency_ms, input_tokens,
    output_tokens, cost_usd, status, messages, params, error_class)
select
    gen_random_uuid(), 'web-bench-' || g,
    case when src = 'golden' then 'web-bench-' || n else 'web-bench' end,
    case when src = 'golden' then (g / %(batches)s) / %(items)s else 0 end,
    src, 'grader', model, 'evalhouse-sim/' || model, 'evalhouse-sim', 'intro-python', 'bench-v1',
    'item-' || ((g / %(batches)s) %% %(items)s),
    stage, 'rubric_grader', case when day < 45 then 'v-0001' else 'v-0002' end,
    case when status = 'ok' then verdict end, case when status = 'ok' then verdict = 'pass' end,
    case when status = 'ok' then r2 end,
    case when status = 'ok' and r3 < 0.35
         then array[(array['off_by_one', 'missing_edge_case', 'wrong_output', 'style',
                           'runtime_error', 'inefficient'])[1 + (g %% 6)]]
         else '{}'::text[] end,
    (array['pass', 'revise', 'fail'])[1 + (g %% 3)],
    case when src = 'golden'
         then jsonb_build_object('eval_batch_id', md5('web-bench-' || n)::uuid)
         else '{}'::jsonb end,
    timestamptz '2026-01-01 00:00+00' + make_interval(days => day, secs => (g %% 86400)),
    400 + r2 * 1600, 300 + (g %% 600), 60 + (g %% 140), 0.0001 + r2 * 0.0005,
    status, '[{"role": "user", "content": "grade this submission"}]'::jsonb,
    '{"temperature": 0}'::jsonb, case when status = 'error' then 'RateLimitError' end
from (
    select g, n, r2, r3,
        (n * %(days)s / %(batches)s)::int as day,
        (array['tutor-small', 'tutor-large', 'tutor-xl'])[1 + n %% 3] as model,
        (array['variables', 'conditionals', 'loops', 'functions', 'data-structures',
               'files-errors'])[1 + ((g / %(batches)s) %% %(items)s) %% 6] as stage,
        case when r5 < 0.2 then 'production' else 'golden' end as src,
        case when r1 < 0.02 then 'error' when r1 < 0.03 then 'parse_error' else 'ok' end
            as status,
        case when r2 < 0.55 then 'pass' when r2 < 0.85 then 'revise' else 'fail' end as verdict
    from (select g, g %% %(batches)s as n, random() as r1, random() as r2, random() as r3,
                 random() as r5
          from generate_series(%(lo)s::bigint, %(hi)s::bigint) as g) as draws
) as rows_
"""

_BATCHES = """
insert into raw.eval_batches (
    batch_id, kind, batch_key, source, suite, suite_version, model, models_answered,
    prompt_version, started_by, model_family, model_checkpoint, model_step, status,
    started_at, heartbeat_at, ended_at, calls, settled, errors, parse_errors)
select
    md5('web-bench-' || n)::uuid, 'run', 'web-bench-' || n, 'golden', 'intro-python', 'bench-v1',
    model, array['evalhouse-sim/' || model], case when day < 45 then 'v-0001' else 'v-0002' end,
    'cli', case when n %% 5 = 0 then 'tutor' end,
    case when n %% 5 = 0 then 'ck-' || n end, case when n %% 5 = 0 then n end, 'completed',
    started_at, started_at + interval '10 minutes', started_at + interval '10 minutes',
    coalesce(counts.calls, 0), coalesce(counts.settled, 0), coalesce(counts.errors, 0),
    coalesce(counts.parse_errors, 0)
from (
    select n, (n * %(days)s / %(batches)s)::int as day,
        (array['tutor-small', 'tutor-large', 'tutor-xl'])[1 + n %% 3] as model,
        timestamptz '2026-01-01 00:00+00'
            + make_interval(days => (n * %(days)s / %(batches)s)::int) as started_at
    from generate_series(0, %(batches)s - 1) as n
) as batches
left join (
    select batch_id, count(*) as calls,
        count(*) filter (where status in ('ok', 'parse_error')) as settled,
        count(*) filter (where status = 'error') as errors,
        count(*) filter (where status = 'parse_error') as parse_errors
    from raw.eval_runs where batch_id like 'web-bench-%%' group by batch_id
) as counts on counts.batch_id = 'web-bench-' || n
on conflict (batch_id) do nothing
"""


def _fill(url: str, rows: int, batches: int) -> None:
    shape = {"days": DAYS, "batches": batches, "items": ITEMS}
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute(
            "select count(*) from raw.eval_runs where idempotency_key like 'web-bench-%'"
        ).fetchone()[0]
        first = datetime(2026, 1, 1, tzinfo=UTC)
        runlog.create_partitions(conn, [first + timedelta(days=day) for day in range(DAYS + 1)])
        for lo in range(have, rows, CHUNK):
            hi = min(rows, lo + CHUNK) - 1
            started = time.perf_counter()
            conn.execute(_FILL, {"lo": lo, "hi": hi, **shape})
            print(f"  filled {hi + 1:,} rows ({time.perf_counter() - started:.1f} s)", flush=True)
        runlog.add_missing_keys(conn)
        conn.execute(_BATCHES, shape)
        conn.execute("analyze raw.eval_runs")
        conn.execute("analyze raw.eval_batches")


def _build_marts(url: str, full_refresh: bool) -> float:
    from evals.config import load_config
    from evals.dbt import dbt_env, run_dbt

    started = time.perf_counter()
    env = dbt_env(
        url,
        load_config(REPO_ROOT / "evalhouse.yaml"),
        target_path=REPO_ROOT / "artifacts" / "bench-web-dbt-target",
    )
    result = run_dbt(["run", "--quiet", *(["--full-refresh"] if full_refresh else [])], env=env)
    if not result.success:
        raise SystemExit(f"dbt run failed: {result.exception}")
    return time.perf_counter() - started


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, max(ordered)


def _web_client():
    from fastapi.testclient import TestClient

    from evals.config import load_config
    from evals.web.app import create_app
    from evals.web.db import WebDatabase, web_conninfo

    config = load_config(REPO_ROOT / "evalhouse.yaml")
    app = create_app(config, TOKEN, database=WebDatabase(web_conninfo(config)))
    return TestClient(app), {"authorization": f"Bearer {TOKEN}"}


def _query_rounds(queries: dict, rounds: int, conninfo: str | None = None) -> list[float]:
    """ms of each round of the overview's mart queries, one after another on one session: as
    the web role (its pool and 15 s statement timeout), or on `conninfo` with 5 minutes."""
    from evals.config import load_config
    from evals.web.db import WebDatabase, web_conninfo

    database = WebDatabase(conninfo or web_conninfo(load_config(REPO_ROOT / "evalhouse.yaml")))
    database.open()
    try:
        times = []
        for _ in range(rounds):
            with database.connection() as conn:
                conn.execute("set statement_timeout = '5min'" if conninfo else "select 1")
                started = time.perf_counter()
                for sql, params in queries.values():
                    conn.execute(sql, params).fetchall()
                times.append((time.perf_counter() - started) * 1000)
    finally:
        database.close()
    return times


def _first_after_build(url: str, repeat: int) -> dict[str, float]:
    """The overview of golden rows over 90 days (issue 16's case) right after the build (ms).

    First its ten mart queries as the web role, before anything else has read the new marts
    (`first_sql`), against the median of later rounds (`p50_sql`): what the planner's statistics
    decide. Then, as a control, one round with the built tables' statistics cleared
    (`no_stats`: what a first query met before the analyze post-hook; as the owner, since the
    web role's timeout cancels it; statistics restored after). Then the whole page through a fresh app (`first_page`: the app's one-time costs,
    templates and its pool, on marts already read) against its steady median (`p50_page`).
    """
    from evals.web.overview_queries import OverviewFilters, overview_queries

    with psycopg.connect(url) as conn:  # the window from the raw log: the marts stay untouched
        high = conn.execute("select max(started_at)::date from raw.eval_runs").fetchone()[0]
    low = high - timedelta(89)
    queries = overview_queries(OverviewFilters(source="golden", date_from=low, date_to=high))
    rounds = _query_rounds(queries, repeat + 1)
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "select schemaname, relname from pg_stat_user_tables"
            " where schemaname in ('intermediate', 'marts')"
        ).fetchall()
        for schema, table in tables:  # PostgreSQL 18
            conn.execute("select pg_clear_relation_stats(%s, %s)", (schema, table))
            conn.execute(
                "select pg_clear_attribute_stats(%s, %s, attname, false) from pg_stats"
                " where schemaname = %s and tablename = %s",
                (schema, table, schema, table),
            )
        no_stats = _query_rounds(queries, 1, url)  # the web role's timeout cancels them
        for schema, table in tables:
            conn.execute(f'analyze "{schema}"."{table}"')
    path = f"/?source=golden&date_from={low}&date_to={high}"
    client, headers = _web_client()
    with client:
        pages = []
        for _ in range(repeat + 1):
            started = time.perf_counter()
            assert client.get(path, headers=headers).status_code == 200, path
            pages.append((time.perf_counter() - started) * 1000)
    return {
        "first_sql": rounds[0],
        "p50_sql": statistics.median(rounds[1:]),
        "no_stats": no_stats[0],
        "first_page": pages[0],
        "p50_page": statistics.median(pages[1:]),
    }


def _time_pages(url: str, repeat: int) -> list[tuple[str, float, float, float]]:
    client, headers = _web_client()
    with client, psycopg.connect(url) as conn:
        run_id = conn.execute(
            "select run_id from raw.eval_runs order by started_at desc limit 1"
        ).fetchone()[0]
        stage, model, source = conn.execute(  # the busiest cohort, whoever filled the log
            "select stage, model, source from marts.fct_stage_daily group by 1, 2, 3"
            " order by sum(n_calls) desc limit 1"
        ).fetchone()
        low, high = conn.execute(
            "select max(run_date) - 89, max(run_date) from marts.fct_trend_daily"
        ).fetchone()
        batch, previous, batch_model = conn.execute(  # the newest run with a previous one
            "select batch_id, previous_batch_id, model from marts.fct_eval_batches"
            " where previous_batch_id is not null order by started_at desc limit 1"
        ).fetchone()
        cohort = f"/runs?stage={stage}&model={model}"
        deep = cohort
        for _ in range(20):  # walk 20 pages down to time a deep keyset page
            page = client.get(deep, headers=headers).text
            deep = re.search(r'href="(/runs\?[^"]+)">Older', page).group(1).replace("&amp;", "&")
        pages = {
            "/ (overview, default 30 days)": "/",
            f"/ (source={source}, 90 days)": f"/?source={source}&date_from={low}&date_to={high}",
            "/runs (first page)": "/runs",
            "/runs?stage&model (first page)": cohort,
            "/runs?stage&model (page 21)": deep,
            "/runs?status=error&7-day range": f"/runs?status=error&date_from={high - timedelta(6)}"
            f"&date_to={high}",
            "/runs/{id}": f"/runs/{run_id}",
            "/alerts": "/alerts",
            "/batches": "/batches",
            "/batches?model": f"/batches?model={batch_model}",
            "/batches/{id}": f"/batches/{batch}",
            "/compare?a&b (a run and its previous)": f"/compare?a={previous}&b={batch}",
            "/compare?suite&a&b (two models' latest)": "/compare?suite=intro-python"
            "&a=tutor-small&b=tutor-large",
            "/leaderboard": "/leaderboard",
            "/models/{family}": "/models/tutor",
        }
        results = []
        for name, path in pages.items():
            for _ in range(3):
                assert client.get(path, headers=headers).status_code == 200, path
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                client.get(path, headers=headers)
                samples.append((time.perf_counter() - started) * 1000)
            results.append((name, *_percentiles(samples)))
    return results


def _time_overview_queries(url: str, repeat: int) -> tuple[float, float, dict[str, float]]:
    from evals.config import load_config
    from evals.web.db import WebDatabase, web_conninfo
    from evals.web.overview_queries import OverviewFilters, overview_queries

    database = WebDatabase(web_conninfo(load_config(REPO_ROOT / "evalhouse.yaml")))
    database.open()
    queries = overview_queries(OverviewFilters())
    try:
        each: dict[str, list[float]] = {name: [] for name in queries}
        serial, concurrent = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            for name, (sql, params) in queries.items():
                one = time.perf_counter()
                database.rows(sql, params)
                each[name].append((time.perf_counter() - one) * 1000)
            serial.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            database.gather(queries)
            concurrent.append((time.perf_counter() - started) * 1000)
    finally:
        database.close()
    return (
        statistics.median(serial),
        statistics.median(concurrent),
        {name: statistics.median(samples) for name, samples in each.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-fill", action="store_true", help="use the rows already there")
    parser.add_argument("--skip-build", action="store_true", help="use the marts already built")
    parser.add_argument(
        "--full-refresh", action="store_true", help="rebuild every mart (new tables) in dbt run"
    )
    args = parser.parse_args()
    if not os.environ.get(warehouse.URL_ENV):
        os.environ.setdefault(warehouse.HOME_ENV, str(REPO_ROOT / "artifacts" / "bench-web-home"))
    url = warehouse.libpq_url(warehouse.database_url())
    warehouse.migrate()
    if not args.skip_fill:
        print(f"filling raw.eval_runs to {args.rows:,} rows …", flush=True)
        _fill(url, args.rows, args.batches)
    with psycopg.connect(url) as conn:
        total = conn.execute("select count(*) from raw.eval_runs").fetchone()[0]
        trend_rows = (
            conn.execute("select count(*) from marts.fct_trend_daily").fetchone()[0]
            if args.skip_build
            else None
        )
    if not args.skip_build:
        print("building the marts (dbt run) …", flush=True)
        print(f"  dbt run: {_build_marts(url, args.full_refresh):.1f} s", flush=True)
        first = _first_after_build(url, args.repeat)
        print(
            "  overview (golden, 90 days) right after the build: mart queries first"
            f" {first['first_sql']:.0f} ms, p50 {first['p50_sql']:.1f} ms, ratio"
            f" {first['first_sql'] / first['p50_sql']:.2f}; statistics cleared (control)"
            f" {first['no_stats']:.0f} ms; page on a fresh app first"
            f" {first['first_page']:.0f} ms, p50 {first['p50_page']:.0f} ms;"
            f" load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    print(
        f"\nraw.eval_runs: {total:,} rows; repeat = {args.repeat}; load {os.getloadavg()}"
        + (f"; fct_trend_daily {trend_rows:,} rows" if trend_rows is not None else "")
    )
    print("\n| page | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|")
    for name, p50, p95, worst in _time_pages(url, args.repeat):
        print(f"| {name} | {p50:.0f} | {p95:.0f} | {worst:.0f} |")
    serial, concurrent, each = _time_overview_queries(url, args.repeat)
    print("\n| overview query (median) | ms |\n|---|---:|")
    for name, ms in each.items():
        print(f"| {name} | {ms:.1f} |")
    print(
        f"| all {len(each)} one after another | {serial:.1f} |\n| all {len(each)} at once"
        f" (gather) | {concurrent:.1f} |"
    )


if __name__ == "__main__":
    main()
