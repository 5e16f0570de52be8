"""The pairwise marts calibrated: 200 simulated suites with known Bradley–Terry strengths and a
known position bias (tests/pairwise_simulation.py), each suite one replicate, go through ONE
`dbt build`, so the SQL itself is what is calibrated (docs/pairwise-ratings.md, "Calibration").

Measured: how often the ratings' order is the true order, how often the bootstrap interval of a
rating difference covers the true difference, how often the position-bias interval covers the
injected bias. Minutes: `-m calibration` runs it.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import psycopg
import pytest
from pairwise_simulation import Design, run_records, simulate, true_position_bias, true_ratings

from evals.config import Config
from evals.dbt import dbt_env, run_dbt
from evals.runlog import write_runs

SUITES = 200
DESIGN = Design(
    ratings={"m1": 150.0, "m2": 50.0, "m3": -50.0, "m4": -150.0},
    items=120,
    pairs_per_item=2,
    trials=2,
    biases=(0.05, 0.35),
    tie=0.1,
)


@pytest.mark.calibration
def test_ratings_and_position_bias_are_calibrated(warehouse_url, tmp_path):
    rng = np.random.default_rng(2026)
    with psycopg.connect(warehouse_url) as conn:
        for suite in range(SUITES):
            write_runs(conn, run_records(simulate(rng, DESIGN), suite=f"cal-{suite:03d}"))
    env = dbt_env(url=warehouse_url, config=Config(), target_path=tmp_path / "target")
    result = run_dbt(
        [
            "run",
            "--select",
            "+fct_pairwise_ratings",
            "+fct_pairwise_matrix",
            "+fct_pairwise_judge_bias",
        ],
        env=env,
    )
    assert result.success
    with psycopg.connect(warehouse_url) as conn:
        ratings = pd.DataFrame(
            conn.execute(
                "select suite, contestant, rating from marts.fct_pairwise_ratings"
            ).fetchall(),
            columns=["suite", "contestant", "rating"],
        )
        matrix = pd.DataFrame(
            conn.execute(
                "select suite, contestant, opponent, rating_difference_ci_low,"
                " rating_difference_ci_high from marts.fct_pairwise_matrix"
                " where contestant < opponent"
            ).fetchall(),
            columns=["suite", "contestant", "opponent", "low", "high"],
        )
        bias = pd.DataFrame(
            conn.execute(
                "select suite, position_bias, position_bias_ci_low, position_bias_ci_high"
                " from marts.fct_pairwise_judge_bias"
            ).fetchall(),
            columns=["suite", "estimate", "low", "high"],
        )

    truth = true_ratings(DESIGN)
    true_order = sorted(truth, key=truth.get, reverse=True)
    orders = ratings.sort_values("rating", ascending=False).groupby("suite")["contestant"]
    order_matches = np.mean([list(o) == true_order for _, o in orders])
    mean_order = list(ratings.groupby("contestant")["rating"].mean().sort_values().index[::-1])

    differences = matrix.assign(
        truth=[
            truth[c] - truth[o]
            for c, o in zip(matrix["contestant"], matrix["opponent"], strict=True)
        ]
    )
    covered = (differences["low"] <= differences["truth"]) & (
        differences["truth"] <= differences["high"]
    )
    per_pair = covered.groupby([differences["contestant"], differences["opponent"]]).mean()

    injected = true_position_bias(DESIGN)
    bias_covered = (
        (bias["low"].astype(float) <= injected) & (injected <= bias["high"].astype(float))
    ).mean()
    print(
        f"true ratings { ({k: round(v, 1) for k, v in truth.items()}) }; order matched in"
        f" {order_matches:.3f} of suites; difference coverage {covered.mean():.4f} over"
        f" {len(covered)} (per pair {per_pair.round(3).to_dict()}); position bias {injected:.4f},"
        f" mean estimate {bias['estimate'].astype(float).mean():.4f}, covered {bias_covered:.3f}"
    )
    assert len(ratings) == SUITES * len(DESIGN.ratings)
    assert len(matrix) == SUITES * len(list(combinations(DESIGN.ratings, 2)))
    assert mean_order == true_order
    assert order_matches >= 0.9
    assert 0.93 <= covered.mean() <= 0.97
    assert 0.93 <= bias_covered <= 0.97
