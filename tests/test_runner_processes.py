"""A run over worker processes: one budget of concurrency and rpm for all of them, and the same
exactly-once outcome after a worker or the parent is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from _kill import SENT_REQUESTS_LAND_S, kill_9, wait_while_running, workers
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)
from test_runner import SETTLED, fake_model, grader_items, write_suite

from evals.cli import asked_processes
from evals.config import Config
from evals.golden import load_suite
from evals.runner import RunRequest, run_suite
from evals.runner.processes import default_processes


def settled_per_item(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                f"select item_id, count(*) filter (where {SETTLED}) from raw.eval_runs"
                " group by item_id"
            ).fetchall()
        )


def test_the_default_is_one_process_per_64_calls_in_flight_within_the_cores_and_the_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert default_processes(in_flight=64, calls=10_000) == 1
    assert default_processes(in_flight=65, calls=10_000) == 2
    assert default_processes(in_flight=256, calls=10_000) == 4
    assert default_processes(in_flight=1024, calls=10_000) == 4
    assert default_processes(in_flight=256, calls=100) == 2  # 64 units claimed at a time


@pytest.mark.parametrize(
    ("args", "processes"),
    [
        (["run", "--suite", "s.yaml", "--processes", "2"], 2),
        (["run", "-p", "3", "--suite", "s.yaml"], 3),
        (["run", "--processes=4"], 4),
        (["run", "-p2"], 2),
        (["rejudge", "--since", "2026-11-01", "-p", "2"], 2),
        (["replay-many", "--processes", "1"], 1),
        (["run", "--suite", "s.yaml"], None),
        (["run", "--processes"], None),
        (["run", "--processes", "two"], None),
        (["show", "--processes", "2"], None),
        ([], None),
    ],
)
def test_the_cli_reads_processes_before_its_imports_only_for_commands_with_workers(
    args: list[str], processes: int | None
) -> None:
    """What decides whether `evalhouse` starts the workers' fork server first thing."""
    assert asked_processes(args) == processes


def test_the_fork_server_is_left_with_one_thread_and_litellm_warm() -> None:
    """Workers fork from it: a thread holding a lock at the fork hangs a worker on that lock."""
    probe = (
        "import threading, evals.runner.fork_preload, evals.llm;"
        "print(threading.active_count(), evals.llm._litellm_state['warm'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["1", "True"]


def test_processes_share_one_concurrency_budget(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.latency_s = 0.2
    config = Config.model_validate({"models": {"m": fake_model(fake_openai, concurrency=6)}})
    suite = load_suite(write_suite(tmp_path / "suite.yaml", grader_items(90)))
    summary = run_suite(config, RunRequest(suite, "m", processes=3))
    assert (summary.processes, summary.lost_processes) == (3, 0)
    assert summary.statuses == {"ok": 90} and summary.calls == 90
    assert len(summary.latencies_ms) == 90 and summary.unsettled_calls == 0
    assert fake_openai.request_count == 90
    # 3 processes x 6 workers each, 18 calls ready at a time: the server sees the one budget
    assert fake_openai.max_in_flight == 6
    assert set(settled_per_item(warehouse_url).values()) == {1}


def test_processes_share_one_rpm_pacer(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # rpm 120: a start every 0.5 s between all processes (each process pacing on its own
    # would start two calls per 0.5 s)
    config = Config.model_validate(
        {"models": {"m": fake_model(fake_openai, concurrency=16, rpm=120)}}
    )
    suite = load_suite(write_suite(tmp_path / "suite.yaml", grader_items(21)))
    summary = run_suite(config, RunRequest(suite, "m", processes=2))
    assert summary.statuses == {"ok": 21} and summary.processes == 2
    starts = sorted(request["at"] for request in fake_openai.requests)
    assert len(starts) == 21
    # booked 0.5 s apart; the server sees them with the client's scheduling jitter (on a
    # 2-core machine at load 18, up to a second): any 9 starts span 4 s, less that tolerance
    # (two pacers, one per process, would start 9 calls in 2 s, and all 21 in 5 s)
    spans = [later - earlier for earlier, later in zip(starts, starts[8:], strict=False)]
    assert min(spans) > 4.0 - 1.0
    assert starts[-1] - starts[0] > 10.0 - 1.0


def test_kill_9_of_a_worker_then_of_the_parent_and_a_rerun_settles_each_unit_once(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    n = 240
    fake_openai.latency_s = 0.05
    fake_openai.record_requests = False
    suite_path = write_suite(tmp_path / "suite.yaml", grader_items(n))
    config_path = tmp_path / "evalhouse.yaml"
    config_path.write_text(
        yaml.safe_dump({"models": {"m": fake_model(fake_openai, concurrency=4)}})
    )
    env = {**os.environ, "EVALHOUSE_CONFIG": str(config_path)}
    command = [sys.executable, "-m", "evals.cli", "run", "--suite", str(suite_path)]
    command += ["--model", "m", "--no-progress", "--processes", "2", "--json"]

    def settled() -> int:
        return sum(settled_per_item(warehouse_url).values())

    def start_and_wait_for(count: int) -> subprocess.Popen:
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_while_running(run, lambda: settled() >= count, f"{count} calls settled")
        return run

    # 1. one worker killed: the other finishes the run; the dead one's units stay unsettled
    run = start_and_wait_for(40)
    pool = workers(run.pid)
    assert len(pool) == 2
    os.kill(pool[0], signal.SIGKILL)
    out, err = run.communicate(timeout=600)
    assert run.returncode == 1, err  # some calls unsettled: run again
    first = json.loads(out)
    assert (first["processes"], first["lost_processes"]) == (2, 1)
    assert 0 < first["unsettled_calls"] < n - 40
    after_first = settled()
    assert after_first == n - first["unsettled_calls"]

    # 2. the parent killed: its workers exit with it (no orphan keeps calling); slower replies
    # keep the few units left in flight long enough to kill it mid-run
    fake_openai.latency_s = 0.5
    run = start_and_wait_for(after_first + 4)
    assert len(workers(run.pid)) == 2
    kill_9(run)  # and the workers, the fork server, the resource tracker exit with it
    time.sleep(SENT_REQUESTS_LAND_S)
    after_second = settled()
    assert after_second < n, "killed before the last call settled"

    # 3. the same command again makes exactly the missing calls
    fake_openai.reset_counts()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["calls"] == n - after_second == fake_openai.request_count
    assert summary["skipped_calls"] == after_second and summary["unsettled_calls"] == 0
    per_item = settled_per_item(warehouse_url)
    assert len(per_item) == n and set(per_item.values()) == {1}
