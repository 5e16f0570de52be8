"""The marts at scale: a full dbt build over N calls, one day's incremental build, the ops queries.

1. Fills raw.eval_runs with N realistic calls server-side (INSERT … SELECT over generate_series,
   in 1M-row chunks): `--days` days, 6 stages, 3 candidate and 2 judge models, 3 prompt
   versions, 2 golden-suite versions, 6 sources, errors / timeouts / parse errors, issue tags,
   trials with position swaps, sample weights; plus human reviews of ~5 % of the judged sample.
2. `dbt run` (full build) then `dbt test`, timed apart.
3. COPYs one new day of `--day-rows` calls (ingested now), then `dbt run` (incremental) and
   `dbt test`, timed apart.
4. Times the queries an ops page runs on the marts (KPI cards, 30-day trend, stage breakdown,
   issue distribution, model cost, judge agreement): median / p95 / max of `--repeat` runs.

    .venv/bin/python -m bench.dbt_scale [--rows 10000000] [--days 100] [--day-rows 100000]
    .venv/bin/python -m bench.dbt_scale --grow-to 30000000  # older days on the last run's fill
    .venv/bin/python -m bench.dbt_scale --increment   # one more day on the warehouse in use

`--grow-to` keeps the calls per day and adds days before the first, so the history grows and
one day's increment stays the same size (the reviews of the added calls are added too).

Uses EVALHOUSE_DATABASE_URL if set (the database is emptied of raw rows first), else an
embedded Postgres under artifacts/bench-dbt-home.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from evals import runlog, warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
CHUNK = 1_000_000

_FILL = """
insert into raw.eval_runs (
    run_id, idempotency_key, batch_id, trial, source, suite, suite_version, item_id, stage,
    category, role, model, prompt_name, prompt_version, verdict, passed, score, issue_tags,
    expected_verdict, sample_weight, attributes, started_at, latency_ms, input_tokens,
    output_tokens, cost_usd, status, error_class, attempts, ingested_at
)
select
    gen_random_uuid(), 'bench-' || i, 'batch-' || (i / 5000), trial, source,
    suite, case when suite is not null then case when day < %(days)s / 2 then 'sv1' else 'sv2' end end,
    case when suite is not null then 'item-' || (i %% 400) end, stage,
    'c' || (i %% 4), role, model,
    case when role = 'candidate' then 'grader' else 'judge' end,
    case when day < %(days)s * 0.5 then 'v1' when day < %(days)s * 0.8 then 'v2' else 'v3' end,
    case when status = 'ok' then verdict end,
    case when status = 'ok' then verdict = 'pass' end,
    case when status = 'ok' and i %% 3 = 0 then round((r_verdict * 10)::numeric, 1)::float8 end,
    case when status <> 'ok' or r_tags < 0.55 then '{}'::text[]
         when r_tags < 0.85 then array[(array['syntax', 'logic', 'naming', 'off_by_one', 'style', 'edge_case', 'io', 'types'])[1 + i %% 8]]
         else array[(array['syntax', 'logic', 'naming', 'off_by_one'])[1 + i %% 4], (array['style', 'edge_case', 'io', 'types'])[1 + i %% 4]] end,
    case when suite is not null then (array['pass', 'revise', 'fail'])[1 + (i / 7) %% 3] end,
    case when source = 'production_sample' then 10.0 end,
    case when trial = 1 then '{"position": "swapped"}'::jsonb
         when role = 'judge' and suite is not null then '{"position": "original"}'::jsonb
         else '{}'::jsonb end,
    started_at,
    case when status = 'timeout' then 60000 else 250 + 700 * -ln(1 - r_latency) end,
    350 + (i %% 1700), case when status in ('ok', 'parse_error') then 20 + (i %% 380) end,
    (350 + (i %% 1700)) * 0.15e-6 + (20 + (i %% 380)) * 0.6e-6,
    status,
    case when status = 'error' then 'RateLimitError' when status = 'timeout' then 'Timeout' end,
    1 + (status <> 'ok')::int,
    started_at + interval '5 minutes'
from (
    select
        i, day, r_verdict, r_tags, r_latency,
        %(origin)s::date + day::int + make_interval(secs => (i * 7919) %% 86400) as started_at,
        case when r_source < 0.70 then 'production' when r_source < 0.78 then 'production_sample'
             when r_source < 0.93 then 'golden' when r_source < 0.95 then 'ci'
             when r_source < 0.98 then 'replay' else 'import' end as source,
        case when r_source >= 0.78 and r_source < 0.95 then 'intro-python' end as suite,
        case when r_role < 0.75 then 'candidate' when r_role < 0.90 then 'judge' else 'grader' end
            as role,
        case when r_role < 0.75 then (array['tutor-small', 'tutor-large', 'tutor-xl'])[1 + i %% 3]
             else (array['judge-a', 'judge-b'])[1 + i %% 2] end as model,
        case when r_role >= 0.75 and r_role < 0.90 and i %% 4 = 1 then 1 else 0 end as trial,
        case when i %% 20 = 0 then null else 'stage-' || (i %% 6) end as stage,
        case when r_status < 0.95 then 'ok' when r_status < 0.97 then 'error'
             when r_status < 0.98 then 'timeout' else 'parse_error' end as status,
        case when r_verdict < 0.35 + 0.08 * (i %% 6) then 'pass'
             when r_verdict < 0.85 then 'revise' else 'fail' end as verdict
    from (
        select i, %(first_day)s::int + (i - %(first_i)s::bigint) %% %(span)s::int as day,
            random() as r_source, random() as r_role,
            random() as r_status, random() as r_verdict, random() as r_tags,
            random() as r_latency
        from generate_series(%(lo)s::bigint, %(hi)s::bigint) as i
    ) as draws
) as shaped
"""

_REVIEWS = """
insert into raw.human_reviews (review_id, run_id, reviewer, verdict, reviewed_at)
select gen_random_uuid(), run_id, 'reviewer-' || k,
    case when random() < 0.75 then coalesce(verdict, 'fail') else (array['pass', 'revise', 'fail'])[1 + (random() * 2)::int] end,
    started_at + interval '1 day'
from raw.eval_runs
cross join lateral generate_series(1, 1 + (hashtext(run_id::text) & 3) %% 3) as k
where source = 'production_sample' and status = 'ok' and hashtext(run_id::text) %% 20 = 0
    and started_at >= %(since)s::date and started_at < %(until)s::date
"""

_GOLDEN = """
insert into raw.golden_suites (suite, suite_version, kind, verdicts, passing_verdicts, item_count)
values ('intro-python', 'sv1', 'grader', '{pass,revise,fail}', '{pass}', 400),
       ('intro-python', 'sv2', 'grader', '{pass,revise,fail}', '{pass}', 400);
insert into raw.golden_items (suite, suite_version, item_id, item_hash, stage, category, inputs, expected)
select 'intro-python', v, 'item-' || i, md5(v || i), 'stage-' || (i % 6), 'c' || (i % 4), '{}',
    jsonb_build_object('verdict', (array['pass', 'revise', 'fail'])[1 + (i / 7) % 3])
from generate_series(0, 399) as i cross join (values ('sv1'), ('sv2')) as versions (v);
insert into raw.prompt_versions (prompt_name, prompt_version, template)
select name, version, 'template' from (values ('grader'), ('judge')) as n (name)
cross join (values ('v1'), ('v2'), ('v3')) as v (version);
"""

# What an ops page asks of the marts (the last 30 days unless said otherwise).
PAGE_QUERIES = {
    "kpi cards": """
        select sum(n_calls), sum(n_passed)::float8 / nullif(sum(n_verdicts), 0),
            sum(n_failed)::float8 / nullif(sum(n_calls), 0), sum(cost_usd), sum(total_tokens)
        from marts.fct_trend_daily
        where run_date > (select max(run_date) from marts.fct_trend_daily) - 30""",
    "30-day trend": """
        select run_date, model, sum(n_calls), sum(n_passed)::float8 / nullif(sum(n_verdicts), 0),
            sum(n_correct)::float8 / nullif(sum(n_with_expected), 0), max(latency_p95_ms),
            sum(cost_usd)
        from marts.fct_trend_daily
        where run_date > (select max(run_date) from marts.fct_trend_daily) - 30
        group by run_date, model order by run_date, model""",
    "stage breakdown": """
        select stage, model, prompt_version, sum(n_verdicts),
            sum(n_passed)::float8 / nullif(sum(n_verdicts), 0),
            count(*) filter (where too_easy or too_easy_vs_baseline),
            count(*) filter (where stalling or stalling_vs_baseline)
        from marts.fct_stage_daily
        where run_date > (select max(run_date) from marts.fct_stage_daily) - 30
        group by stage, model, prompt_version order by stage, model, prompt_version""",
    "issue distribution": """
        select stage, issue_tag, sum(n_runs_with_tag)
        from marts.fct_issue_distribution_daily
        where run_date > (select max(run_date) from marts.fct_issue_distribution_daily) - 30
        group by stage, issue_tag order by stage, 3 desc""",
    "model cost": """
        select model, role, sum(n_calls), sum(cost_usd),
            sum(cost_usd) / nullif(sum(n_passing_verdicts), 0)
        from marts.fct_model_cost_daily
        where run_date > (select max(run_date) from marts.fct_model_cost_daily) - 30
        group by model, role order by 4 desc""",
    "judge agreement": """
        select reference, model, sum(n), sum(n_agree)::float8 / nullif(sum(n), 0),
            avg(cohens_kappa)
        from marts.fct_verdict_agreement_weekly
        where week_start > (select max(week_start) from marts.fct_verdict_agreement_weekly) - 35
        group by reference, model order by reference, model""",
}


def _database_url() -> str:
    if os.environ.get(warehouse.URL_ENV):
        return os.environ[warehouse.URL_ENV]
    os.environ.setdefault(warehouse.HOME_ENV, str(REPO_ROOT / "artifacts" / "bench-dbt-home"))
    return warehouse.database_url()


def _fresh_database(url: str, name: str) -> str:
    """A new migrated database beside the one in `url` (dropped first if it exists)."""
    with psycopg.connect(warehouse.libpq_url(url), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    bench_url = urlunsplit(urlsplit(warehouse.libpq_url(url))._replace(path=f"/{name}"))
    os.environ[warehouse.URL_ENV] = bench_url
    warehouse.migrate()
    return bench_url


def _reuse_database(url: str, name: str) -> str:
    """The database of a previous run without its marts and its incremental day."""
    bench_url = urlunsplit(urlsplit(warehouse.libpq_url(url))._replace(path=f"/{name}"))
    with psycopg.connect(bench_url, autocommit=True) as conn:
        for schema in ("marts", "intermediate", "staging"):
            conn.execute(f"drop schema if exists {schema} cascade")
        conn.execute("delete from raw.eval_runs where idempotency_key like 'day-%'")
        conn.execute("vacuum analyze raw.eval_runs")
    return bench_url


def _fill(url: str, rows: int, days: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_GOLDEN)
        origin = datetime.now(UTC).date() - timedelta(days=days)
        _fill_calls(conn, origin, days, range(rows), first_day=0, span=days)


def _grow(url: str, rows: int) -> None:
    """Fills the calls a previous run's warehouse lacks up to `rows`, on the days before its
    first, as many a day: the history grows, a day's traffic (the increment) stays the same."""
    with psycopg.connect(url, autocommit=True) as conn:
        have, first, last = conn.execute(
            "select count(*), min(started_at)::date, max(started_at)::date from raw.eval_runs"
            " where idempotency_key like 'bench-%'"
        ).fetchone()
        days = (last - first).days + 1
        extra = math.ceil((rows - have) * days / have)
        print(f"  {have:,} calls over {days} days; {rows - have:,} more over {extra} days before")
        # Negative days: before the first, so the oldest suite and prompt versions.
        _fill_calls(conn, first, days, range(have, rows), first_day=-extra, span=extra)


def _fill_calls(
    conn: psycopg.Connection, origin: date, days: int, calls: range, first_day: int, span: int
) -> None:
    """Calls number `calls`, call i on day first_day + (i - calls.start) % span after `origin`
    (suite and prompt versions by that day out of `days`), then their human reviews."""
    start = datetime.combine(origin, datetime.min.time(), UTC)
    runlog.create_partitions(
        conn, [start + timedelta(days=day) for day in range(first_day - 1, first_day + span + 1)]
    )
    started = time.perf_counter()
    for lo in range(calls.start, calls.stop, CHUNK):
        hi = min(calls.stop, lo + CHUNK) - 1
        conn.execute(
            _FILL,
            {
                "lo": lo,
                "hi": hi,
                "days": days,
                "origin": origin,
                "first_day": first_day,
                "first_i": calls.start,
                "span": span,
            },
        )
        print(f"  filled {hi + 1:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
    runlog.add_missing_keys(conn)  # the reviews below reference runs by their key rows
    reviews = conn.execute(
        _REVIEWS,
        {
            "since": origin + timedelta(days=first_day),
            "until": origin + timedelta(days=first_day + span),
        },
    ).rowcount
    print(f"  {reviews:,} human reviews", flush=True)
    conn.execute("analyze raw.eval_runs")
    conn.execute("analyze raw.human_reviews")


def _one_day(n: int, seed: int = 7, new_run_id=runlog.new_run_id) -> list[tuple]:
    """n calls started today (ingested now): the rows a day of traffic adds, a fifth of them
    tonight's golden batch (`golden:<today>`, graded against expected verdicts); run ids as
    the writer makes them (`--random-run-ids`: uuid4, as before they were time-ordered)."""
    rng = random.Random(seed)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for i in range(n):
        status = rng.choices(["ok", "error", "timeout", "parse_error"], [95, 2, 1, 2])[0]
        verdict = rng.choice(["pass", "revise", "fail"]) if status == "ok" else None
        role = rng.choices(["candidate", "judge", "grader"], [75, 15, 10])[0]
        golden = rng.random() >= 0.8
        rows.append(
            (
                new_run_id(),
                f"day-{uuid.uuid4().hex}",
                f"golden:{today.date()}" if golden else None,
                "golden" if golden else "production",
                "intro-python" if golden else None,
                "bench-day" if golden else None,
                f"item-{i % 400}" if golden else None,
                rng.choice(["pass", "revise", "fail"]) if golden else None,
                role,
                rng.choice(["tutor-small", "tutor-large"]) if role == "candidate" else "judge-a",
                "grader" if role == "candidate" else "judge",
                "v3",
                f"stage-{i % 6}",
                status,
                verdict,
                None if verdict is None else verdict == "pass",
                [rng.choice(["syntax", "logic"])] if status == "ok" and rng.random() < 0.4 else [],
                today
                + timedelta(
                    seconds=rng.randrange(
                        min(86_400, 1 + int((datetime.now(UTC) - today).total_seconds()))
                    )
                ),
                rng.lognormvariate(6.5, 0.5),
                rng.randrange(300, 2000),
                rng.randrange(20, 400),
                rng.uniform(0, 0.002),
            )
        )
    return rows


def _copy_day(url: str, n: int, new_run_id=runlog.new_run_id) -> float:
    rows = _one_day(n, new_run_id=new_run_id)
    started = time.perf_counter()
    columns = (
        "run_id, idempotency_key, batch_id, source, suite, suite_version, item_id,"
        " expected_verdict, role, model, prompt_name, prompt_version, stage, status, verdict,"
        " passed, issue_tags, started_at, latency_ms, input_tokens, output_tokens, cost_usd"
    )
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(f"copy raw.eval_runs ({columns}) from stdin") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    return time.perf_counter() - started


def _dbt(env: dict[str, str], *args: str, top: int = 6) -> float:
    from evals.dbt import run_dbt

    started = time.perf_counter()
    result = run_dbt([*args, "--quiet"], env=env)
    elapsed = time.perf_counter() - started
    if not result.success:
        failed = [
            r.node.name for r in (result.result or []) if str(r.status) not in ("success", "pass")
        ]
        raise SystemExit(f"dbt {' '.join(args)} failed: {failed or result.exception}")
    slowest = sorted(result.result, key=lambda r: r.execution_time, reverse=True)[:top]
    print(
        f"  dbt {' '.join(args)} {elapsed:.1f} s (load average {os.getloadavg()[0]:.1f});"
        " slowest: " + ", ".join(f"{r.node.name} {r.execution_time:.1f}" for r in slowest),
        flush=True,
    )
    return elapsed


def _time_queries(url: str, repeat: int) -> dict[str, tuple[float, float, float]]:
    timings = {}
    with psycopg.connect(url) as conn:
        for name, sql in PAGE_QUERIES.items():
            conn.execute(sql).fetchall()  # warm the cache once, as a live page would be
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                conn.execute(sql).fetchall()
                samples.append((time.perf_counter() - started) * 1000)
            ordered = sorted(samples)
            timings[name] = (
                statistics.median(ordered),
                ordered[round(0.95 * (len(ordered) - 1))],
                ordered[-1],
            )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--day-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database", default="evalhouse_bench_dbt")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the filled raw tables of a previous run; rebuild the marts",
    )
    parser.add_argument(
        "--grow-to",
        type=int,
        metavar="ROWS",
        help="keep a previous run's raw tables and add calls on older days up to ROWS; rebuild"
        " the marts",
    )
    parser.add_argument("--fill-only", action="store_true", help="stop after filling raw")
    parser.add_argument(
        "--skip-tests", action="store_true", help="time the dbt runs only, not `dbt test`"
    )
    parser.add_argument(
        "--increment",
        action="store_true",
        help="only COPY one more day into the warehouse in use (marts built, e.g. by"
        " bench.web_latency) and time its incremental dbt run, every model",
    )
    parser.add_argument(
        "--random-run-ids",
        action="store_true",
        help="--increment's calls get uuid4 run ids (the A/B against time-ordered ones)",
    )
    args = parser.parse_args()

    from evals.config import load_config
    from evals.dbt import dbt_env

    if args.increment:
        url = warehouse.libpq_url(_database_url())
        env = dbt_env(
            url,
            load_config(REPO_ROOT / "evalhouse.yaml"),
            target_path=REPO_ROOT / "artifacts" / "bench-dbt-target",
        )
        copied = _copy_day(
            url, args.day_rows, uuid.uuid4 if args.random_run_ids else runlog.new_run_id
        )
        print(f"COPY one day ({args.day_rows:,} rows): {copied:.1f} s", flush=True)
        _dbt(env, "run", top=100)
        return
    if args.reuse or args.grow_to:
        url = _reuse_database(_database_url(), args.database)
        if args.grow_to:
            print(f"growing raw.eval_runs to {args.grow_to:,} calls …", flush=True)
            started = time.perf_counter()
            _grow(url, args.grow_to)
            print(f"  grow: {time.perf_counter() - started:.0f} s", flush=True)
            if args.fill_only:
                return
    else:
        url = _fresh_database(_database_url(), args.database)
        print(f"filling raw.eval_runs with {args.rows:,} calls over {args.days} days …", flush=True)
        started = time.perf_counter()
        _fill(url, args.rows, args.days)
        print(f"  fill: {time.perf_counter() - started:.0f} s", flush=True)
        if args.fill_only:
            return
    env = dbt_env(
        url,
        load_config(REPO_ROOT / "evalhouse.yaml"),
        target_path=REPO_ROOT / "artifacts" / "bench-dbt-target",
    )

    def test() -> str:
        return "not run" if args.skip_tests else f"{_dbt(env, 'test'):.1f} s"

    print(f"full build: run {_dbt(env, 'run'):.1f} s, test {test()}", flush=True)
    copied = _copy_day(url, args.day_rows)
    print(
        f"one day ({args.day_rows:,} rows, COPY {copied:.1f} s): "
        f"run {_dbt(env, 'run'):.1f} s, test {test()}",
        flush=True,
    )

    with psycopg.connect(url) as conn:
        sizes = conn.execute(
            "select relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid))"
            " from pg_stat_user_tables where schemaname in ('raw', 'intermediate', 'marts')"
            " and relname in ('eval_runs', 'int_eval_runs', 'fct_trend_daily', 'fct_stage_daily',"
            " 'fct_issue_distribution_daily')"
        ).fetchall()
        partitioned = conn.execute(
            "select count(*) filter (where isleaf), pg_size_pretty(sum(pg_total_relation_size("
            "relid))), pg_size_pretty(pg_total_relation_size('raw.eval_run_keys'))"
            " from pg_partition_tree('raw.eval_runs')"
        ).fetchone()
    for name, live, size in sizes:
        print(f"  {name}: ~{live:,} rows, {size}")
    print(
        f"  raw.eval_runs: {partitioned[0]} monthly partitions, {partitioned[1]};"
        f" raw.eval_run_keys {partitioned[2]}"
    )
    print(f"ops page queries ({args.repeat} runs each, warm): median / p95 / max ms")
    for name, (median, p95, worst) in _time_queries(url, args.repeat).items():
        print(f"  {name:<20} {median:7.1f} {p95:7.1f} {worst:7.1f}")


if __name__ == "__main__":
    main()
