"""Rejudge and replay of many over worker processes: the runner's pool and one budget for all of
them (evals.runner.processes), one row per unit, and the same after a kill -9 of the parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from _kill import SENT_REQUESTS_LAND_S, kill_9, wait_while_running, workers
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)
from test_runner import fake_model, grader_items, write_suite

from evals.config import Config
from evals.golden import load_suite
from evals.rejudge import RejudgeRequest, run_rejudge
from evals.replay_many import ReplayManyRequest, replay_many
from evals.runner import RunRequest, run_suite

N = 60


def _models(server: FakeOpenAI) -> dict:
    """`m` grades the suite first; `judge` (concurrency 3) re-grades or replays it (priced: the
    estimate needs no LiteLLM import in the parent)."""
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    return {
        "m": fake_model(server, concurrency=16),
        "judge": fake_model(server, concurrency=3, **prices),
    }


@pytest.fixture
def graded(warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path) -> Config:
    """N grader calls by `m`, settled, then the fake server's counts reset."""
    config = Config.model_validate({"models": _models(fake_openai)})
    suite = load_suite(write_suite(tmp_path / "suite.yaml", grader_items(N)))
    run_suite(config, RunRequest(suite, "m", batch_key="graded"))
    fake_openai.reset_counts()
    return config


def _per_parent(url: str, source: str) -> dict[str, int]:
    """Settled rows of `source` per parent (the graded or replayed call)."""
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "select parent_run_id::text, count(*) from raw.eval_runs"
                " where source = %s and status in ('ok', 'parse_error') group by 1",
                (source,),
            ).fetchall()
        )


def _graded_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select run_id::text from raw.eval_runs where batch_id = 'graded'")
        return {row[0] for row in rows}


def test_a_rejudge_over_two_processes_writes_one_row_per_call_within_one_budget(
    graded: Config, fake_openai: FakeOpenAI, warehouse_url: str
) -> None:
    fake_openai.latency_s = 0.1
    summary = run_rejudge(
        graded, RejudgeRequest(judge="judge", sources=("golden",)), echo=lambda _: None,
        processes=2,
    )  # fmt: skip
    assert (summary.processes, summary.lost_processes) == (2, 0)
    assert (summary.new_rows, summary.unsettled) == (N, 0)
    assert fake_openai.request_count == N
    # 2 processes x 3 workers each: the server sees the judge's one budget of 3
    assert fake_openai.max_in_flight == 3
    assert _per_parent(warehouse_url, "rejudge") == dict.fromkeys(_graded_ids(warehouse_url), 1)
    again = run_rejudge(
        graded, RejudgeRequest(judge="judge", sources=("golden",)), echo=lambda _: None,
        processes=2,
    )  # fmt: skip
    assert (again.estimate.calls, again.new_rows, fake_openai.request_count) == (0, 0, N)


def test_a_replay_of_a_batch_over_two_processes_is_one_resumable_batch_of_one_row_per_call(
    graded: Config, fake_openai: FakeOpenAI, warehouse_url: str, tmp_path: Path
) -> None:
    fake_openai.latency_s = 0.1
    request = ReplayManyRequest(batch="graded", model="judge")
    summary = replay_many(graded, request, processes=2)
    assert summary.batch_key == "replay:graded"
    assert (summary.processes, summary.selected, summary.counts.new) == (2, N, N)
    assert fake_openai.max_in_flight == 3
    assert _per_parent(warehouse_url, "replay") == dict.fromkeys(_graded_ids(warehouse_url), 1)
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select distinct role, model, batch_id from raw.eval_runs where source = 'replay'"
        ).fetchall()
        record = conn.execute(
            "select kind, status, model from raw.eval_batches where batch_key = 'replay:graded'"
        ).fetchall()
    assert rows == [("grader", "judge", "replay:graded")]
    assert record == [("replay", "completed", "judge")]
    again = replay_many(graded, request, processes=2)
    assert (again.counts.settled_before, again.counts.new, fake_openai.request_count) == (N, 0, N)
    # a runs file selects runs; the same runs in another batch are replayed once more there
    ids = sorted(_graded_ids(warehouse_url))[:5]
    (tmp_path / "runs.txt").write_text("# flagged\n" + "\n".join(ids) + "\n")
    from evals.replay_many import read_run_ids

    picked = replay_many(graded, ReplayManyRequest(run_ids=read_run_ids(tmp_path / "runs.txt")))
    assert (picked.selected, picked.counts.new, picked.processes) == (5, 5, 1)
    assert picked.batch_key.startswith("replay:runs-")


def test_kill_9_of_a_rejudge_parent_over_two_processes_then_a_rerun_settles_each_call_once(
    graded: Config, fake_openai: FakeOpenAI, warehouse_url: str, tmp_path: Path
) -> None:
    fake_openai.latency_s = 0.3
    fake_openai.record_requests = False
    config_path = tmp_path / "evalhouse.yaml"
    config_path.write_text(yaml.safe_dump({"models": _models(fake_openai)}))
    env = {**os.environ, "EVALHOUSE_CONFIG": str(config_path)}
    command = [sys.executable, "-m", "evals.cli", "rejudge", "--judge", "judge"]
    command += ["--source", "golden", "--processes", "2"]

    def settled() -> int:
        return sum(_per_parent(warehouse_url, "rejudge").values())

    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_while_running(run, lambda: settled() >= 6, "6 calls settled")
    assert len(workers(run.pid)) == 2
    kill_9(run)  # and its workers with it
    time.sleep(SENT_REQUESTS_LAND_S)
    landed = settled()
    assert 0 < landed < N, "killed before the last call settled"

    fake_openai.reset_counts()
    fake_openai.latency_s = 0.02
    again = run_rejudge(
        graded, RejudgeRequest(judge="judge", sources=("golden",)), echo=lambda _: None,
        processes=2,
    )  # fmt: skip
    assert again.estimate.settled_before == landed and again.unsettled == 0
    assert again.new_rows == N - landed == fake_openai.request_count
    assert _per_parent(warehouse_url, "rejudge") == dict.fromkeys(_graded_ids(warehouse_url), 1)
