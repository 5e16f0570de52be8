"""Evaluation runs through dbt and the pages: real batches on the simulator, the batch marts
built by dbt, every figure recomputed independently with pandas / statsmodels / scipy from the
raw tables, then each page (/batches, /batches/{id}, /compare, /leaderboard, /models/{family})
asked over HTTP and held to those figures. One warehouse and one dbt build serve the module."""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import scipy.stats as sp
from conftest import create_database, drop_database, role_url
from fastapi.testclient import TestClient
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint
from test_runner import write_suite as write_grader_suite

from evals import warehouse
from evals.batches import BatchSpec, open_batch
from evals.config import Config
from evals.dbt import dbt_env, run_dbt
from evals.golden import load_suite
from evals.runner import RunRequest, run_suite
from evals.stats import paired_bootstrap_delta_ci
from evals.warehouse.roles import WEB_ROLE
from evals.web.app import create_app
from evals.web.db import WebDatabase

TOKEN = "test-batches-token-8d1e0c2b"
BEARER = {"authorization": f"Bearer {TOKEN}"}

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
    return write_grader_suite(path, items)


def evaluate_night_1(suite_path: Path) -> None:
    """Every checkpoint and the base model on night 1."""
    suite = load_suite(suite_path)
    for model in MODELS:
        run_suite(sim_config(3), RunRequest(suite, model, batch_key=f"golden:{DAY_1}", as_of=DAY_1))


def evaluate_night_2(url: str, suite_path: Path) -> None:
    """The base model again on night 2 under another simulator seed (so items flip); one batch
    killed mid-run (left running)."""
    suite = load_suite(suite_path)
    run_suite(sim_config(4), RunRequest(suite, "base", batch_key=f"golden:{DAY_2}", as_of=DAY_2))
    with psycopg.connect(url) as conn:
        open_batch(conn, killed_spec(suite.version), planned_calls=40)
        # its process died an hour ago: no heartbeat since
        conn.execute(
            "update raw.eval_batches set started_at = now() - interval '1 hour',"
            " heartbeat_at = now() - interval '1 hour' where batch_key = 'golden:killed'"
        )


def evaluate(url: str, suite_path: Path) -> None:
    """Both nights at once (for a module that builds once)."""
    evaluate_night_1(suite_path)
    evaluate_night_2(url, suite_path)


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
    """A warehouse with the batches above and the batch marts built (dbt build: models+tests)
    after night 1, then incrementally after night 2."""
    name = create_database(pg_server)
    url = pg_server.url(name)
    home = tmp_path_factory.mktemp("batches")
    suite_path = write_suite(home / "suite.yaml")
    env = dbt_env(url=url, config=sim_config(3), target_path=home / "dbt_target")
    build = ["build", "--quiet", "--indirect-selection", "cautious", "--select", *BATCH_MARTS]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warehouse.URL_ENV, url)
        evaluate_night_1(suite_path)
        first = run_dbt(build, env=env)
        night_1 = frame(url, "select batch_id, loaded_at from intermediate.int_eval_batches")
        evaluate_night_2(url, suite_path)
    result = run_dbt(build, env=env)
    try:
        yield {"url": url, "env": env, "first": first, "build": result, "night_1": night_1}
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
    assert evaluated["first"].success, evaluated["first"].exception
    assert evaluated["build"].success, evaluated["build"].exception


def test_the_incremental_build_rewrote_only_night_2s_runs_and_equals_a_full_refresh(evaluated):
    """Night 2's build left night 1's four runs as built; the killed run's record changed too
    (a heartbeat), and a full refresh of the batch marts gives back exactly the same rows."""
    url = evaluated["url"]
    night_1 = evaluated["night_1"].set_index("batch_id")["loaded_at"]
    built = frame(
        url, "select batch_id, batch_key, loaded_at from intermediate.int_eval_batches"
    ).set_index("batch_id")
    assert len(night_1) == len(MODELS) == 4
    assert (built.loc[night_1.index, "loaded_at"] == night_1).all()
    rewritten = built.drop(night_1.index)
    assert sorted(rewritten["batch_key"]) == [f"golden:{DAY_2}", "golden:killed"]
    assert (rewritten["loaded_at"] > night_1.max()).all()

    marts = {
        "intermediate.int_eval_batches": ["batch_id"],
        "marts.fct_eval_batches": ["batch_id"],
        "marts.fct_eval_batch_items": ["batch_id", "item_id", "trial"],
        "marts.fct_eval_batch_breakdown": ["batch_id", "dimension", "dimension_value"],
        "marts.fct_model_checkpoints": ["curve_key", "model"],
    }

    def snapshot() -> dict[str, pd.DataFrame]:
        return {
            table: frame(url, f"select * from {table}")
            .drop(columns=["loaded_at"], errors="ignore")
            .sort_values(key)
            .reset_index(drop=True)
            for table, key in marts.items()
        }

    incremental = snapshot()
    refresh = run_dbt(
        ["run", "--quiet", "--full-refresh", "--select", *(t.split(".")[1] for t in marts)],
        env=evaluated["env"],
    )
    assert refresh.success, refresh.exception
    for table, rows in snapshot().items():
        assert len(rows) > 0, table
        pd.testing.assert_frame_equal(rows, incremental[table], obj=table)


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
        ["batch_id", "dimension", "dimension_value"]
    )
    joined["correct"] = correct
    for dimension in ("stage", "category"):
        for (batch_id, value), group in joined.groupby(["batch_id", dimension]):
            got = mart.loc[(batch_id, dimension, value)]
            k, n = int(group["correct"].sum()), len(group)
            assert (got["n_correct"], got["n_graded"]) == (k, n)
            assert (got["accuracy_ci_low"], got["accuracy_ci_high"]) == pytest.approx(wilson(k, n))
    assert len(mart) == 5 * (3 + 2)


# --- the pages ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(pg_server, evaluated):
    config = sim_config(3)
    database = WebDatabase(role_url(pg_server, evaluated["url"], WEB_ROLE))
    app = create_app(config, TOKEN, database=database)
    with TestClient(app, follow_redirects=False, headers=BEARER) as http:
        yield http


def mart(evaluated) -> pd.DataFrame:
    return frame(evaluated["url"], "select * from marts.fct_eval_batches").set_index("batch_id")


def batch_of(evaluated, model: str, key: str) -> str:
    batches = mart(evaluated)
    return str(batches[(batches["model"] == model) & (batches["batch_key"] == key)].index[0])


def pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def row_of(page: str, attribute: str, value: str) -> str:
    """The <tr> of a table row carrying data-<attribute>="value"."""
    start = page.index(f'data-{attribute}="{value}"')
    return page[start : page.index("</tr>", start)]


def paired(url: str, a: str, b: str) -> pd.DataFrame:
    """Both runs' graded rows from raw.eval_runs, paired by pandas on item and trial."""
    runs = frame(
        url,
        "select attributes->>'eval_batch_id' as batch, item_id, trial, stage, run_id, status,"
        " verdict = expected_verdict and status = 'ok' as correct from raw.eval_runs"
        " where role = 'grader' and status in ('ok', 'parse_error')",
    )
    first, second = runs[runs["batch"] == a], runs[runs["batch"] == b]
    return first.merge(second, on=["item_id", "trial"], suffixes=("_a", "_b"))


@pytest.mark.parametrize(
    "path",
    ["/batches", f"/batches/{uuid.uuid4()}", "/compare?a=x&b=y", "/leaderboard", "/models/tutor"],
)
def test_every_batch_page_refuses_a_caller_without_credentials(client, path):
    assert client.get(path, headers={"authorization": ""}).status_code == 401


def test_the_batch_list_shows_every_run_and_filters_by_suite_model_family_and_status(
    client, evaluated
):
    batches = mart(evaluated)
    page = client.get("/batches").text
    for batch_id, b in batches.iterrows():
        row = row_of(page, "batch", str(batch_id))
        assert b["model"] in row
        if b["n_graded"]:
            assert pct(b["accuracy"]) in row and pct(b["accuracy_ci_low"]) in row
    killed = str(batches[batches["batch_key"] == "golden:killed"].index[0])
    assert 'class="badge stale">stale' in row_of(page, "batch", killed)

    def listed(query: str) -> set[str]:
        return set(re.findall(r'data-batch="([^"]+)"', client.get(f"/batches?{query}").text))

    assert listed("status=stale") == {killed}
    assert listed("status=running") == set()
    assert len(listed("status=completed")) == 5
    assert listed("family=tutor") == {
        str(i) for i in batches[batches["model_family"] == "tutor"].index
    }
    assert listed("model=base") == {str(i) for i in batches[batches["model"] == "base"].index}
    assert listed("suite=t-grader") == {str(i) for i in batches.index}
    assert client.get("/batches?status=exploded").status_code == 400


def test_a_batch_page_shows_its_figures_stages_failures_and_flips(client, evaluated):
    url = evaluated["url"]
    latest = batch_of(evaluated, "base", f"golden:{DAY_2}")
    previous = batch_of(evaluated, "base", f"golden:{DAY_1}")
    b = mart(evaluated).loc[uuid.UUID(latest)]
    page = client.get(f"/batches/{latest}").text
    accuracy = page[page.index('id="accuracy"') :]
    assert f"{pct(b['accuracy'])}</strong>" in accuracy
    assert f"({b['n_correct']} / 40 graded" in accuracy

    pairs = paired(url, previous, latest)
    for stage, group in pairs.groupby("stage_b"):
        k, n = int(group["correct_b"].sum()), len(group)
        row = row_of(page, "value", stage)
        assert f'<td>{stage}</td><td class="num">{n}</td><td class="num">{k}</td>' in row
        assert pct(wilson(k, n)[0]) in row
    flips = pairs[pairs["correct_a"] != pairs["correct_b"]]
    assert len(flips) > 0, "the second night's seed flips some items"
    shown = set(re.findall(r'<tr data-item="([^"]+)">', page))
    assert shown == set(flips["item_id"])
    for _, f in flips.iterrows():
        assert f'href="/runs/{f["run_id_a"]}"' in page and f'href="/runs/{f["run_id_b"]}"' in page
    failures = frame(
        url,
        f"select run_id from raw.eval_runs where attributes->>'eval_batch_id' = '{latest}'"
        " and status <> 'ok'",
    )
    assert len(failures) > 0, "the simulator's malformed replies are parse errors"
    failure_table = page[page.index('class="failures"') :]
    assert set(re.findall(r'href="/runs/([^"]+)"', failure_table)) == {
        str(r) for r in failures["run_id"]
    }
    assert client.get(f"/batches/{uuid.uuid4()}").status_code == 404
    assert client.get("/batches/not-a-uuid").status_code == 404


def test_compare_gives_mcnemar_and_a_bootstrap_interval_equal_to_statsmodels_and_scipy(
    client, evaluated
):
    a = batch_of(evaluated, "ck-100", f"golden:{DAY_1}")
    b = batch_of(evaluated, "ck-200", f"golden:{DAY_1}")
    pairs = paired(evaluated["url"], a, b)
    assert len(pairs) == 40
    base = pairs["correct_a"].astype(bool).to_numpy()
    cand = pairs["correct_b"].astype(bool).to_numpy()
    table = [
        [int((base & cand).sum()), int((base & ~cand).sum())],
        [int((~base & cand).sum()), int((~base & ~cand).sum())],
    ]
    expected_p = mcnemar(table, exact=True).pvalue
    page = client.get(f"/compare?a={a}&b={b}").text

    def shown(element: str) -> float:
        return float(re.search(f'id="{element}">([^<]+)<', page).group(1))

    assert shown("n-pairs") == 40
    assert shown("mcnemar-p") == pytest.approx(expected_p, rel=1e-5)
    ours = paired_bootstrap_delta_ci(base, cand)
    assert (shown("boot-low"), shown("boot-high")) == pytest.approx((ours.low, ours.high), abs=1e-4)
    theirs = sp.bootstrap(
        (base.astype(float), cand.astype(float)),
        lambda x, y, axis=-1: np.mean(y - x, axis=axis),
        paired=True,
        n_resamples=20000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval
    step = 1.01 / 40 + 0.01  # the lattice of 40 pairs, plus 2,000 resamples' noise
    assert shown("boot-low") == pytest.approx(theirs.low, abs=step)
    assert shown("boot-high") == pytest.approx(theirs.high, abs=step)
    flips = pairs[pairs["correct_a"] != pairs["correct_b"]]
    assert set(re.findall(r'<tr data-item="([^"]+)">', page)) == set(flips["item_id"])
    for stage, group in pairs.groupby("stage_a"):
        delta = group["correct_b"].mean() - group["correct_a"].mean()
        assert f"{100 * delta:+.1f} pp" in row_of(page, "stage", stage)
    assert client.get(f"/compare?a={a}").status_code == 400
    assert 'id="not-comparable"' not in page
    by_models = client.get("/compare?suite=t-grader&a=ck-100&b=ck-200").text
    assert re.search(r'id="mcnemar-p">([^<]+)<', by_models).group(1) == (
        re.search(r'id="mcnemar-p">([^<]+)<', page).group(1)
    )
    assert client.get("/compare?suite=t-grader&a=ck-100&b=nobody").status_code == 404


def test_the_leaderboard_shows_latest_runs_coverage_best_and_the_stage_heatmap(client, evaluated):
    batches = mart(evaluated)
    page = client.get("/leaderboard").text
    done = batches[(batches["status"] == "completed")]
    for model, runs in done.groupby("model"):
        latest = runs.sort_values("started_at").iloc[-1]
        row = row_of(page, "model", model)
        assert str(latest.name)[:8] in row and pct(latest["accuracy"]) in row
        assert "100.0 % <small>(40/40)" in row
        assert pct(runs["accuracy"].max()) in row  # its best run on the same yardstick
    latest = done.sort_values("started_at").groupby("model").tail(1)
    leader = latest.sort_values("accuracy").iloc[-1]
    assert leader["model"] == "ck-200"
    assert f'href="/compare?a={leader.name}&amp;b=' in row_of(page, "model", "base")
    items = frame(evaluated["url"], "select * from marts.fct_eval_batch_items")
    latest_ids = {
        str(runs.sort_values("started_at").index[-1]) for _, runs in done.groupby("model")
    }
    items = items[items["batch_id"].astype(str).isin(latest_ids)]
    items["model"] = items["batch_id"].map(lambda i: batches.loc[i, "model"])
    heat = page[page.index('class="heatmap"') :]
    for (model, stage), group in items.groupby(["model", "stage"]):
        cell = row_of(heat, "model", model)
        rate = group["is_correct"].mean()
        assert f'heat-{round(rate * 10)}" data-stage="{stage}"' in cell
        assert f">{pct(rate, 0)}</td>" in cell[cell.index(f'data-stage="{stage}"') :]
    assert page.count("<circle") == 4  # one point per model in the cost/accuracy scatter


def test_a_family_page_draws_its_curve_best_checkpoint_and_regressions(client, evaluated):
    batches = mart(evaluated)
    page = client.get("/models/tutor").text
    accuracy = {
        m: batches[batches["model"] == m]["accuracy"].iloc[0]
        for m in ("ck-100", "ck-200", "ck-300")
    }
    assert max(accuracy, key=accuracy.get) == "ck-200"
    assert re.search(r'id="best-overall">ck-200<', page)
    start = page.index('class="regressions"')
    regressions = page[start : page.index("</table>", start)]
    assert 'data-model="ck-300" data-stage="(all)"' in regressions
    assert "ck-200 → ck-300" in regressions
    assert 'data-model="ck-200"' not in regressions  # it improved on ck-100
    curve = page[page.index('class="curve"') :]
    assert len(re.findall(r"<tr data-model=", curve)) == 3 * 4  # 3 checkpoints × (3 stages + all)
    for model, value in accuracy.items():
        assert pct(value) in row_of(curve, "model", f'{model}" data-stage="(all)')
    assert page.count("<circle") == 3
    assert client.get("/models/nobody").status_code == 404


def test_a_run_page_draws_the_calls_timeline_from_its_stored_timings(client, evaluated):
    (run_id, latency, timings), *_ = frame(
        evaluated["url"],
        "select run_id, latency_ms, timings from raw.eval_runs where role = 'grader'"
        " and status = 'ok' order by run_id limit 1",
    ).itertuples(index=False)
    page = client.get(f"/runs/{run_id}").text
    timeline = page[page.index('class="chart timeline"') :]
    queued = timings["queued_ms"]
    start = queued + timings["call_ms"] - latency
    assert f"<title>queued: {queued:.1f} ms from 0.0 ms</title>" in timeline
    assert f"<title>provider call: {latency:.1f} ms from {start:.1f} ms</title>" in timeline
    assert f"<title>parse: {timings['parse_ms']:.1f} ms from" in timeline
