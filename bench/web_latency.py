"""Page latency of `evalhouse serve` over a large run log: the overview, run search, one run.

Fills raw.eval_runs with N synthetic calls server-side (INSERT ... SELECT generate_series: 90
days, 6 stages, 3 models, 2 prompt versions, 2 sources, errors, parse errors, issue tags),
builds the marts with dbt, then times whole HTTP requests through the real app in-process (auth,
queries as the least-privilege role, template rendering) and, apart, the overview's mart
queries run one after another versus all at once.

    .venv/bin/python -m bench.web_latency [--rows 10000000] [--repeat 30] [--skip-fill]

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

_FILL = """
insert into raw.eval_runs (
    run_id, idempotency_key, batch_id, source, role, model, response_model, provider, suite,
    suite_version, item_id, stage, prompt_name, prompt_version, verdict, passed, score,
    issue_tags, expected_verdict, started_at, latency_ms, input_tokens, output_tokens, cost_usd,
    status, messages, params, error_class)
select
    gen_random_uuid(), 'web-bench-' || g, 'web-bench', src, 'grader', model,
    'evalhouse-sim/' || model, 'evalhouse-sim', 'intro-python', 'bench-v1', 'item-' || (g %% 600),
    stage, 'rubric_grader', case when day < 45 then 'v-0001' else 'v-0002' end,
    case when status = 'ok' then verdict end, case when status = 'ok' then verdict = 'pass' end,
    case when status = 'ok' then r2 end,
    case when status = 'ok' and r3 < 0.35
         then array[(array['off_by_one', 'missing_edge_case', 'wrong_output', 'style',
                           'runtime_error', 'inefficient'])[1 + (g %% 6)]]
         else '{}'::text[] end,
    (array['pass', 'revise', 'fail'])[1 + (g %% 3)],
    timestamptz '2026-01-01 00:00+00' + make_interval(days => day, secs => (g %% 86400)),
    400 + r2 * 1600, 300 + (g %% 600), 60 + (g %% 140), 0.0001 + r2 * 0.0005,
    status, '[{"role": "user", "content": "grade this submission"}]'::jsonb,
    '{"temperature": 0}'::jsonb, case when status = 'error' then 'RateLimitError' end
from (
    select g, r2, r3,
        floor(r4 * %(days)s)::int as day,
        (array['tutor-small', 'tutor-large', 'tutor-xl'])[1 + floor(r5 * 3)::int] as model,
        (array['variables', 'conditionals', 'loops', 'functions', 'data-structures',
               'files-errors'])[1 + floor(r6 * 6)::int] as stage,
        case when r5 * 10 - floor(r5 * 10) < 0.2 then 'production' else 'golden' end as src,
        case when r1 < 0.02 then 'error' when r1 < 0.03 then 'parse_error' else 'ok' end
            as status,
        case when r2 < 0.55 then 'pass' when r2 < 0.85 then 'revise' else 'fail' end as verdict
    from (select g, random() as r1, random() as r2, random() as r3, random() as r4,
                 random() as r5, random() as r6
          from generate_series(%(lo)s::bigint, %(hi)s::bigint) as g) as draws
) as rows_
"""


def _fill(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute(
            "select count(*) from raw.eval_runs where batch_id = 'web-bench'"
        ).fetchone()[0]
        first = datetime(2026, 1, 1, tzinfo=UTC)
        runlog.create_partitions(conn, [first + timedelta(days=day) for day in range(DAYS + 1)])
        for lo in range(have, rows, CHUNK):
            hi = min(rows, lo + CHUNK) - 1
            started = time.perf_counter()
            conn.execute(_FILL, {"lo": lo, "hi": hi, "days": DAYS})
            print(f"  filled {hi + 1:,} rows ({time.perf_counter() - started:.1f} s)", flush=True)
        runlog.add_missing_keys(conn)
        conn.execute("analyze raw.eval_runs")


def _build_marts(url: str) -> float:
    from evals.config import load_config
    from evals.dbt import dbt_env, run_dbt

    started = time.perf_counter()
    env = dbt_env(
        url,
        load_config(REPO_ROOT / "evalhouse.yaml"),
        target_path=REPO_ROOT / "artifacts" / "bench-web-dbt-target",
    )
    result = run_dbt(["run", "--quiet"], env=env)
    if not result.success:
        raise SystemExit(f"dbt run failed: {result.exception}")
    return time.perf_counter() - started


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, max(ordered)


def _time_pages(url: str, repeat: int) -> list[tuple[str, float, float, float]]:
    from fastapi.testclient import TestClient

    from evals.config import load_config
    from evals.web.app import create_app
    from evals.web.db import WebDatabase, web_conninfo

    config = load_config(REPO_ROOT / "evalhouse.yaml")
    app = create_app(config, TOKEN, database=WebDatabase(web_conninfo(config)))
    headers = {"authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client, psycopg.connect(url) as conn:
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
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-fill", action="store_true", help="use the rows already there")
    parser.add_argument("--skip-build", action="store_true", help="use the marts already built")
    args = parser.parse_args()
    if not os.environ.get(warehouse.URL_ENV):
        os.environ.setdefault(warehouse.HOME_ENV, str(REPO_ROOT / "artifacts" / "bench-web-home"))
    url = warehouse.libpq_url(warehouse.database_url())
    warehouse.migrate()
    if not args.skip_fill:
        print(f"filling raw.eval_runs to {args.rows:,} rows …", flush=True)
        _fill(url, args.rows)
    with psycopg.connect(url) as conn:
        total = conn.execute("select count(*) from raw.eval_runs").fetchone()[0]
        trend_rows = (
            conn.execute("select count(*) from marts.fct_trend_daily").fetchone()[0]
            if args.skip_build
            else None
        )
    if not args.skip_build:
        print("building the marts (dbt run) …", flush=True)
        print(f"  dbt run: {_build_marts(url):.1f} s", flush=True)
    print(
        f"\nraw.eval_runs: {total:,} rows; repeat = {args.repeat}"
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
