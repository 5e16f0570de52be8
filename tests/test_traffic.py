"""`evalhouse simulate traffic`: simulated production through the real capture path."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import psycopg
import pytest
from conftest import REPO_ROOT
from psycopg.rows import dict_row
from typer.testing import CliRunner

from evals.cli import app
from evals.config import load_config
from evals.traffic import ROLLOUT_NOTE, Drift, TrafficError, simulate_traffic

START = date(2026, 10, 1)


@pytest.fixture(scope="module")
def config():
    return load_config(REPO_ROOT / "evalhouse.yaml")


def _rows(url: str, sql: str, args: tuple = ()) -> list[dict]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def test_simulated_days_land_once_with_learners_rollout_drift_and_reviews(config, warehouse_url):
    summary = simulate_traffic(
        config,
        days=4,
        per_day=100,
        start=START,
        seed=5,
        drift=[Drift.parse("loops:+0.6@3")],
        review_share=0.2,
        canary_day=2,
    )
    runs = _rows(warehouse_url, "select * from raw.eval_runs")
    assert len(runs) == summary.calls and summary.calls >= 4 * 80
    assert {r["source"] for r in runs} == {"production"} and {r["touchpoint"] for r in runs} == {
        "exercise-feedback"
    }
    assert {r["started_at"].date() for r in runs} == {date(2026, 10, day) for day in (1, 2, 3, 4)}
    assert {r["model"] for r in runs} == {"tutor-small"} and {r["role"] for r in runs} == {"grader"}
    assert all(r["subject_id"].startswith("learner-") and len(r["subject_id"]) == 20 for r in runs)
    assert len({r["subject_id"] for r in runs}) > 20
    statuses = Counter(r["status"] for r in runs)
    assert statuses["ok"] > 0.9 * len(runs)
    ok = [r for r in runs if r["status"] == "ok"]
    assert all(
        (r["verdict"], r["passed"])
        == (json.loads(r["output_text"])["verdict"], r["verdict"] == "pass")
        for r in ok
    )
    assert all(
        r["messages"][1]["content"].count(r["submission"].strip()) == 1
        for r in ok
        if r["submission"]
    )
    assert all(r["latency_ms"] > 50 for r in runs)  # drawn, not slept

    # The revised prompt appears from the canary day on, and both versions are stored for diffs.
    revised = {r["prompt_version"] for r in runs if ROLLOUT_NOTE in r["messages"][0]["content"]}
    assert len(revised) == 1 and len({r["prompt_version"] for r in runs}) == 2
    assert min(r["started_at"].date() for r in runs if r["prompt_version"] in revised) >= date(
        2026, 10, 2
    )
    stored = _rows(warehouse_url, "select prompt_version from raw.prompt_versions")
    assert {r["prompt_version"] for r in runs} == {s["prompt_version"] for s in stored}

    # Drift: from day 3, 60 % of loops' failing verdicts turn passing (~+0.3 on a ~0.45 rate).
    def loops_pass_rate(days):
        chosen = [r["passed"] for r in ok if r["stage"] == "loops" and r["started_at"].day in days]
        return sum(chosen) / len(chosen)

    assert loops_pass_rate({3, 4}) - loops_pass_rate({1, 2}) > 0.15

    # Human reviews: several reviewers on some runs, and they do not always agree.
    reviews = _rows(warehouse_url, "select run_id, reviewer, verdict from raw.human_reviews")
    assert len(reviews) == summary.reviews > 20
    per_run = Counter(r["run_id"] for r in reviews)
    assert max(per_run.values()) >= 2
    labels: dict = {}
    for review in reviews:
        labels.setdefault(review["run_id"], set()).add(review["verdict"])
    assert any(len(v) > 1 for v in labels.values())

    # Same seed, same days: nothing new (run ids are drawn from the seeded generator).
    again = simulate_traffic(
        config,
        days=4,
        per_day=100,
        start=START,
        seed=5,
        drift=[Drift.parse("loops:+0.6@3")],
        review_share=0.2,
        canary_day=2,
    )
    assert again.calls == summary.calls
    assert len(_rows(warehouse_url, "select run_id from raw.eval_runs")) == len(runs)


def test_a_simulated_production_row_replays_from_its_stored_messages(config, warehouse_url):
    from evals.replay import replay_run

    simulate_traffic(config, days=1, per_day=20, start=START, seed=9, review_share=0)
    (original,) = _rows(
        warehouse_url, "select run_id from raw.eval_runs where status = 'ok' limit 1"
    )
    old, new = replay_run(config, original["run_id"])
    assert new["messages"] == old["messages"] and new["parent_run_id"] == old["run_id"]
    reply = json.loads(new["output_text"])
    assert (new["source"], new["status"]) == ("replay", "ok")
    assert (new["verdict"], new["passed"]) == (reply["verdict"], reply["verdict"] == "pass")


def test_drift_specs_are_parsed_strictly():
    assert Drift.parse("loops:+0.15@11") == Drift("loops", 0.15, 11)
    assert Drift.parse("files-errors:-0.2@3") == Drift("files-errors", -0.2, 3)
    for bad in ("loops+0.15@11", "loops:+2@3", "loops:0.1@0", "loops:abc@3"):
        with pytest.raises(TrafficError):
            Drift.parse(bad)


def test_the_cli_simulates_and_rejects_unknown_stages(warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(REPO_ROOT / "evalhouse.yaml"))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "simulate",
            "traffic",
            "--days",
            "1",
            "--per-day",
            "15",
            "--start",
            "2026-09-01",
            "--drift",
            "loops:+0.1@1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "over 1 days from 2026-09-01" in result.output
        and "drift: loops +0.10 from day 1" in result.output
    )
    bad = runner.invoke(app, ["simulate", "traffic", "--days", "1", "--drift", "recursion:+0.1@1"])
    assert bad.exit_code == 2 and "does not have" in bad.output
