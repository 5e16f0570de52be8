"""The pairwise rating marts at scale: 20 models × 5,000 items, Bradley–Terry with its bootstrap.

Design: one suite, one judge; each item is judged on `--pairs` (3) random pairs of distinct
models, each pair in both orders (ab, ba), one trial: 5,000 × 3 × 2 = 30,000 judgments. The
models' true ratings are evenly spaced, 40 Elo apart; the judge picks the first slot 10 % of the
time, says tie 10 % of the rest, else prefers A with the Bradley–Terry probability; 2 % of
replies are parse errors. Rows are filled server-side (INSERT … SELECT), per the pairwise
contract (verdict a / b / tie, attributes.position / contestant_a / contestant_b).

Timed: `dbt run` of the pairwise models only (int_pairwise_judgments and everything downstream:
the fit and its 200 bootstrap replicates, fct_pairwise_ratings, fct_pairwise_matrix,
fct_pairwise_judge_bias), after the staging and call-level models were built once; the whole
invocation (dbt start-up included) and each model.

    .venv/bin/python -m bench.pairwise_ratings [--models 20] [--items 5000] [--pairs 3]

Uses EVALHOUSE_DATABASE_URL if set, else a throwaway embedded Postgres.
"""

from __future__ import annotations

import argparse
import os
import time

import psycopg

from bench._warehouse import bench_warehouse
from evals import warehouse

_FILL = """
insert into raw.eval_runs (
    run_id, idempotency_key, batch_id, trial, source, suite, suite_version, item_id, role, model,
    prompt_name, prompt_version, status, verdict, attributes, started_at, ingested_at
)
with pairs as (
    select
        item,
        pair,
        first_model,
        (first_model + 1 + floor(random() * (%(models)s - 1))::int) %% %(models)s as second_model
    from (
        select item, pair, floor(random() * %(models)s)::int as first_model
        from generate_series(1, %(items)s) as item
        cross join generate_series(1, %(pairs)s) as pair
    ) as drawn
),
judged as (
    select
        pairs.*,
        orders.position,
        random() as r_slot,
        random() as r_tie,
        random() as r_win,
        random() as r_parse,
        -- Bradley–Terry P(A wins), ratings 40 Elo apart
        1.0 / (1.0 + power(10.0, (second_model - first_model) * 40.0 / 400.0)) as p_a
    from pairs
    cross join (values ('ab'), ('ba')) as orders (position)
)
select
    gen_random_uuid(),
    'bench-pairwise-' || item || '-' || pair || '-' || position,
    'golden:2026-11-02',
    0,
    'golden',
    'bench-pairs',
    'v1',
    'item-' || item,
    'judge',
    'bench-judge',
    'pairwise-judge',
    'jp1',
    case when r_parse < 0.02 then 'parse_error' else 'ok' end,
    case
        when r_parse < 0.02 then null
        when r_slot < 0.1 then case when position = 'ab' then 'a' else 'b' end
        when r_tie < 0.1 then 'tie'
        when r_win < p_a then 'a'
        else 'b'
    end,
    jsonb_build_object(
        'position', position,
        'contestant_a', 'model-' || lpad(first_model::text, 2, '0'),
        'contestant_b', 'model-' || lpad(second_model::text, 2, '0')
    ),
    timestamptz '2026-11-02 00:00:00+00' + item * interval '1 second',
    now()
from judged
"""

PAIRWISE_MODELS = "int_pairwise_judgments+"


def _dbt(env: dict[str, str], *args: str) -> tuple[float, list]:
    from evals.dbt import run_dbt

    started = time.perf_counter()
    result = run_dbt([*args, "--quiet"], env=env)
    elapsed = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"dbt {' '.join(args)} failed: {result.exception or result.result}")
    return elapsed, [(r.node.name, r.execution_time) for r in result.result]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()

    from evals.config import Config
    from evals.dbt import dbt_env

    with bench_warehouse():
        url = warehouse.libpq_url(warehouse.database_url())
        with psycopg.connect(url) as conn:
            conn.execute("delete from raw.eval_runs where suite = 'bench-pairs'")
            started = time.perf_counter()
            conn.execute(_FILL, {"models": args.models, "items": args.items, "pairs": args.pairs})
            filled = time.perf_counter() - started
            rows = conn.execute(
                "select count(*) from raw.eval_runs where suite = 'bench-pairs'"
            ).fetchone()[0]
        print(f"{rows:,} judgments filled in {filled:.1f} s", flush=True)
        env = dbt_env(url=url, config=Config())
        upstream, _ = _dbt(
            env, "run", "--select", f"+{PAIRWISE_MODELS}", "--exclude", PAIRWISE_MODELS
        )
        print(f"staging and call-level models: {upstream:.1f} s", flush=True)
        elapsed, models = _dbt(env, "run", "--select", PAIRWISE_MODELS)
        load = os.getloadavg()
        print(
            f"{args.models} models × {args.items:,} items × {args.pairs} pairs × 2 orders:"
            f" dbt run of the pairwise models {elapsed:.1f} s wall"
            f" (models {sum(t for _, t in models):.1f} s: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in models)
            + f"); load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
            f" on {os.cpu_count()} cores",
            flush=True,
        )
        with psycopg.connect(url) as conn:
            top = conn.execute(
                "select contestant, round(rating::numeric, 1), round(rating_ci_low::numeric, 1),"
                " round(rating_ci_high::numeric, 1), fit_max_step"
                " from marts.fct_pairwise_ratings where suite = 'bench-pairs' order by rank limit 3"
            ).fetchall()
        print(f"top three: {top}", flush=True)


if __name__ == "__main__":
    main()
