"""Evaluation runs through dbt: real batches on the simulator, the batch marts built by dbt,
every figure recomputed independently with pandas / statsmodels from the raw tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import yaml
from conftest import create_database, drop_database
from statsmodels.stats.proportion import proportion_confint

from evals import warehouse
from evals.batches import BatchSpec, open_batch
from evals.config import Config
from evals.dbt import dbt_env, run_dbt
from evals.golden import load_suite
from evals.runner import RunRequest, run_suite

TOL = 1e-9
DAY_1, DAY_2 = date(2026, 11, 1), date(2026, 11, 2)
STAGES = ("loops", "functions", "classes")
MODELS = {
    "ck-100": {"family": "tutor", "checkpoint": "ck-100", "step": 100, "accuracy": 0.55},
    "ck-200": {"family": "tutor", "checkpoint": "ck-200", "step": 200, "accuracy": 0.9},
    "ck-300": {"family": "tutor", "checkpoint": "ck-300", "step": 300, "accuracy": 0.2},
    "base": {"accuracy": 0.7},
}
BATCH_MARTS = (
    "+fct_eval_batches",
    "+fct_eval_batch_breakdown",
    "+fct_eval_batch_items",
    "+fct_model_checkpoints",
)


def sim_config(seed: int) -> Config:
    models = {}
    for name, spec in MODELS.items():
        lineage = {k: v for k, v in spec.items() if k != "accuracy"}
        models[name] = {"model": f"evalhouse-sim/{name}", "tags": ["t"], **lineage}
    return Config.model_validate(
        {
            "models": models,
            "simulator": {
                "seed": seed,
                "error_rate": 0,
                "rate_limit_rate": 0,
                "malformed_rate": 0.08,
                "models": {n: {"accuracy": s["accuracy"]} for n, s in MODELS.items()},
            },
        }
    )


def write_suite(path: Path, n: int = 40) -> Path:
    items = [
        {
            "id": f"i{i:02d}",
            "stage": STAGES[i % 3],
            "category": "syntax" if i % 2 else "logic",
            "submission": f"def f(): return {i}",
            "expected_verdict": "pass" if i % 3 else "revise",
        }
        for i in range(n)
    ]
    suite = {
        "name": "t-grader",
        "kind": "grader",
        "verdicts": ["pass", "revise", "fail"],
        "passing_verdicts": ["pass"],
        "default_rubric": "Meet the spec.",
        "items": items,
    }
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def evaluate(url: str, suite_path: Path) -> None:
    """Every checkpoint and the base model on night 1; the base model again on night 2 under
    another simulator seed (so items flip); one batch killed mid-run (left running)."""
    suite = load_suite(suite_path)
    first, second = sim_config(3), sim_config(4)
    for model in MODELS:
        run_suite(first, RunRequest(suite, model, batch_key=f"golden:{DAY_1}", as_of=DAY_1))
    run_suite(second, RunRequest(suite, "base", batch_key=f"golden:{DAY_2}", as_of=DAY_2))
    with psycopg.connect(url) as conn:
        open_batch(conn, killed_spec(suite.version), planned_calls=40)


def killed_spec(suite_version: str) -> BatchSpec:
    return BatchSpec(
        kind="run",
        batch_key="golden:killed",
        source="golden",
        model="base",
        started_by="cli",
        suite="t-grader",
        suite_version=suite_version,
        prompt_version="p",
    )


@pytest.fixture(scope="module")
def evaluated(pg_server, tmp_path_factory):
    """A warehouse with the batches above and the batch marts built (dbt build: models+tests)."""
    name = create_database(pg_server)
    url = pg_server.url(name)
    home = tmp_path_factory.mktemp("batches")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warehouse.URL_ENV, url)
        evaluate(url, write_suite(home / "suite.yaml"))
    env = dbt_env(url=url, config=sim_config(3), target_path=home / "dbt_target")
    result = run_dbt(
        ["build", "--quiet", "--indirect-selection", "cautious", "--select", *BATCH_MARTS], env=env
    )
    try:
        yield {"url": url, "build": result}
    finally:
        warehouse._engine_for(url).dispose()
        drop_database(pg_server, name)


def frame(url: str, sql: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def wilson(k: int, n: int) -> tuple[float, float]:
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def reference_batches(url: str) -> pd.DataFrame:
    """fct_eval_batches' figures from raw rows, by pandas: outcomes, cost, latency, deltas."""
    batches = frame(url, "select * from raw.eval_batches").set_index("batch_id")
    runs = frame(url, "select * from raw.eval_runs")
    runs["eval_batch"] = runs["attributes"].map(lambda a: a.get("eval_batch_id"))
    out = []
    for batch_id, b in batches.iterrows():
        rows = runs[runs["eval_batch"] == str(batch_id)]
        graded = rows[rows["status"].isin(["ok", "parse_error"]) & (rows["role"] == "grader")]
        correct = (graded["status"] == "ok") & (graded["verdict"] == graded["expected_verdict"])
        n, k = len(graded), int(correct.sum())
        low, high = wilson(k, n) if n else (None, None)
        latency = graded["latency_ms"].astype(float)
        out.append(
            {
                "batch_id": batch_id,
                "model": b["model"],
                "status": b["status"],
                "started_at": b["started_at"],
                "n_graded": n,
                "n_correct": k,
                "n_parse_error_outcomes": int((graded["status"] == "parse_error").sum()),
                "accuracy": k / n if n else None,
                "accuracy_ci_low": low,
                "accuracy_ci_high": high,
                "coverage": graded["item_id"].nunique() / 40,
                "cost_usd": rows["cost_usd"].sum() if len(rows) else None,
                "input_tokens": int(rows["input_tokens"].sum()),
                "latency_p50_ms": np.percentile(latency, 50) if n else None,
                "latency_p95_ms": np.percentile(latency, 95) if n else None,
            }
        )
    ref = pd.DataFrame(out).set_index("batch_id")
    done = ref[(ref["status"] == "completed") & (ref["n_graded"] > 0)]
    ref["previous_batch_id"] = [
        (
            earlier.sort_values("started_at").index[-1]
            if len(
                earlier := done[
                    (done["model"] == r["model"]) & (done["started_at"] < r["started_at"])
                ]
            )
            else None
        )
        for _, r in ref.iterrows()
    ]
    best = done.sort_values(["accuracy", "started_at"], ascending=[False, True]).index[0]
    ref["best_batch_id"] = best
    return ref


def test_the_batch_marts_build_and_pass_their_tests(evaluated):
    assert evaluated["build"].success, evaluated["build"].exception


def test_fct_eval_batches_matches_pandas(evaluated):
    url = evaluated["url"]
    ref = reference_batches(url)
    mart = frame(url, "select * from marts.fct_eval_batches").set_index("batch_id")
    assert sorted(mart.index) == sorted(ref.index) and len(mart) == 6
    for batch_id, expected in ref.iterrows():
        got = mart.loc[batch_id]
        for column in ("n_graded", "n_correct", "n_parse_error_outcomes", "input_tokens"):
            assert got[column] == expected[column], (batch_id, column)
        for column in (
            "accuracy",
            "accuracy_ci_low",
            "accuracy_ci_high",
            "coverage",
            "cost_usd",
            "latency_p50_ms",
            "latency_p95_ms",
        ):
            if expected[column] is None or pd.isna(expected[column]):
                assert pd.isna(got[column]), (batch_id, column)
            else:
                assert got[column] == pytest.approx(expected[column], abs=TOL), (batch_id, column)
        for column in ("previous_batch_id", "best_batch_id"):
            if expected[column] is None or expected["n_graded"] == 0:
                assert pd.isna(got[column]) or expected[column] is not None, (batch_id, column)
            assert (None if pd.isna(got[column]) else got[column]) == expected[column], column
        if expected["previous_batch_id"] is not None:
            previous = ref.loc[expected["previous_batch_id"], "accuracy"]
            assert got["accuracy_delta_previous"] == pytest.approx(expected["accuracy"] - previous)
    killed = mart[mart["batch_key"] == "golden:killed"].iloc[0]
    assert (killed["status"], killed["n_graded"], killed["calls"]) == ("running", 0, 0)
    # the fixture has what the comparisons need: a previous run, and the best checkpoint
    base_2 = mart[(mart["model"] == "base") & (mart["batch_key"] == f"golden:{DAY_2}")].iloc[0]
    base_1 = mart[(mart["model"] == "base") & (mart["batch_key"] == f"golden:{DAY_1}")].iloc[0]
    assert base_2["previous_batch_id"] == base_1.name
    assert mart.loc[ref["best_batch_id"].iloc[0], "model"] == "ck-200"


def test_fct_eval_batch_breakdown_matches_pandas(evaluated):
    url = evaluated["url"]
    items = frame(url, "select * from marts.fct_eval_batch_items")
    runs = frame(
        url,
        "select run_id, status, verdict, expected_verdict, stage, category, item_id"
        " from raw.eval_runs where role = 'grader' and status in ('ok', 'parse_error')",
    )
    joined = items.merge(runs, on="run_id", suffixes=("", "_raw"))
    assert len(joined) == len(items) == 40 * 5
    correct = (joined["status"] == "ok") & (joined["verdict"] == joined["expected_verdict"])
    assert (joined["is_correct"] == correct).all()
    mart = frame(url, "select * from marts.fct_eval_batch_breakdown").set_index(
        ["batch_id", "dimension", "value"]
    )
    joined["correct"] = correct
    for dimension in ("stage", "category"):
        for (batch_id, value), group in joined.groupby(["batch_id", dimension]):
            got = mart.loc[(batch_id, dimension, value)]
            k, n = int(group["correct"].sum()), len(group)
            assert (got["n_correct"], got["n_graded"]) == (k, n)
            assert (got["accuracy_ci_low"], got["accuracy_ci_high"]) == pytest.approx(wilson(k, n))
    assert len(mart) == 5 * (3 + 2)
