"""The nightly golden runs on a real distributed executor: a dask scheduler and two worker
processes started here, the steps of one Dagster run executed by them against one warehouse
(and one Dagster storage) by URL. One worker is killed (SIGKILL) in the middle of its slice;
dask runs the step again on the other worker, and the night's rows are complete and unique."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from evals.config import load_config
from evals.dbt import ensure_manifest
from evals.golden import suites_from_config
from tests.conftest import REPO_ROOT, drop_database

pytest.importorskip("dagster_dask")

DAY = "2026-11-12"
ITEMS = 60
SLICES = 2
BIN = Path(sys.executable).parent


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The shipped models at low concurrency with slow (simulated) calls and no faults, one
    judged suite of ITEMS items, two slices: each slice takes seconds, long enough to kill."""
    suite = tmp_path / "arithmetic.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "arithmetic",
                "kind": "answer",
                "verdicts": ["correct", "incorrect"],
                "passing_verdicts": ["correct"],
                "issue_tags": [],
                "default_rubric": "correct: the expected answer.",
                "items": [
                    {
                        "id": f"a-{i}",
                        "question": f"What is {i} + {i}?",
                        "expected_answer": str(2 * i),
                    }
                    for i in range(ITEMS)
                ],
            }
        )
    )
    shipped = yaml.safe_load((REPO_ROOT / "evalhouse.yaml").read_text())
    for model in shipped["models"].values():
        model["concurrency"] = 2
    shipped["suites"] = {"arithmetic": {"path": str(suite), "judge": "judge"}}
    shipped["golden_slices"] = SLICES
    shipped["simulator"].update(
        time_scale=0.25, error_rate=0, rate_limit_rate=0, timeout_rate=0, malformed_rate=0
    )
    path = tmp_path / "evalhouse.yaml"
    path.write_text(yaml.safe_dump(shipped))
    return path


@pytest.fixture
def dagster_home(warehouse_url, pg_server, monkeypatch) -> Iterator[Path]:
    """DAGSTER_HOME as `evalhouse dev` writes it: Dagster's storage in a database of its own on
    the warehouse's Postgres (by URL, as workers on other machines would reach it)."""
    from evals.cli.dev import prepare_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", "")  # restored after the test; set below
    home, storage = prepare_dagster_home()
    assert storage == "Postgres"
    yield home
    drop_database(pg_server, f"{conninfo_to_dict(warehouse_url)['dbname']}_dagster")


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_for(what: str, predicate, seconds: float, processes: list[subprocess.Popen]):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        for process in processes:
            assert process.poll() is None, f"{process.args[:3]} exited while waiting for {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_a_worker_killed_mid_slice_is_replaced_and_the_night_is_complete_and_unique(
    warehouse_url, dagster_home, config_path, tmp_path
):
    from dask.distributed import Client

    config = load_config(config_path)
    ensure_manifest(config)  # parsed once here, not raced by three processes importing the code
    scheduler_file = tmp_path / "scheduler.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "EVALHOUSE_CONFIG": str(config_path),
        "EVALHOUSE_DAGSTER_EXECUTOR": "dask",
        "DAGSTER_HOME": str(dagster_home),
    }
    dask = str(BIN / "dask")
    processes = [
        _start(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            env,
            tmp_path / "scheduler.log",
        )
    ]
    try:
        address = _wait_for(
            "the scheduler",
            lambda: (
                scheduler_file.exists()
                and json.loads(scheduler_file.read_text() or "{}").get("address")
            ),
            60,
            processes,
        )
        env["EVALHOUSE_DASK_SCHEDULER"] = address
        workers = [
            _start(
                [
                    dask,
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--name",
                    f"w{n}",
                    "--preload",  # the code location imported before the worker registers
                    "orchestration.definitions",
                ],
                env,
                tmp_path / f"worker{n}.log",
            )
            for n in range(2)
        ]
        processes += workers
        # the run starts while the workers import the code location: its steps wait in the
        # scheduler's queue until a worker has a free thread
        run = _start(
            [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "orchestration.definitions",
                "--select",
                "golden_runs/tutor_small",
                "--partition",
                DAY,
            ],
            env,
            tmp_path / "run.log",
        )
        processes.append(run)
        client = Client(address, timeout=60)
        _wait_for("two workers", lambda: len(client.scheduler_info()["workers"]) == 2, 240, [])
        pids = client.run(os.getpid)  # worker address -> pid

        suite = suites_from_config(config)["arithmetic"]
        victim_items = [item.item_id for item in suite.shard(0, SLICES).items]
        victim_key = "__ASSET_JOB.golden_runs__tutor_small.tutor_small_slice_0"

        def slice_0_half_done() -> bool:
            with psycopg.connect(warehouse_url) as conn:
                written = conn.execute(
                    "select count(*) from raw.eval_runs where batch_id = %s and item_id = any(%s)",
                    (f"golden:{DAY}", victim_items),
                ).fetchone()[0]
            return 4 <= written < len(victim_items)  # two calls per item: far from done

        _wait_for("slice 0 to write rows", slice_0_half_done, 240, processes)
        [victim] = [address for address, keys in client.processing().items() if victim_key in keys]
        killed = pids[victim]
        os.kill(killed, signal.SIGKILL)
        [survivor] = [pid for pid in pids.values() if pid != killed]
        client.close()
        assert run.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-4000:]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [dagster_run] = instance.get_runs()
        assert dagster_run.status == dg.DagsterRunStatus.SUCCESS
        starts = [
            (record.event_log_entry.step_key, record.event_log_entry.dagster_event.pid)
            for record in instance.get_records_for_run(
                dagster_run.run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
        ]
    slice_0 = "golden_runs__tutor_small.tutor_small_slice_0"
    assert [pid for step, pid in starts if step == slice_0] == [killed, survivor]
    assert {pid for _, pid in starts} == {killed, survivor}, "every step ran on a dask worker"

    # complete and unique, recomputed from the rows: one settled candidate and one settled judge
    # row per item of the night, whatever was written before the kill
    with psycopg.connect(warehouse_url) as conn:
        settled = conn.execute(
            "select item_id, role, count(*) from raw.eval_runs where batch_id = %s"
            " and status in ('ok', 'parse_error') group by item_id, role",
            (f"golden:{DAY}",),
        ).fetchall()
        record = conn.execute(
            "select status, planned_calls, settled from raw.eval_batches where batch_key = %s",
            (f"golden:{DAY}",),
        ).fetchall()
        run_ids = conn.execute(
            "select array_agg(distinct orchestrator_run_id) from raw.eval_runs where batch_id = %s",
            (f"golden:{DAY}",),
        ).fetchone()[0]
    expected = {(f"a-{i}", role) for i in range(ITEMS) for role in ("candidate", "judge")}
    assert {(item, role) for item, role, _ in settled} == expected
    assert {n for _, _, n in settled} == {1}
    assert record == [("completed", 2 * ITEMS, 2 * ITEMS)]
    assert run_ids == [dagster_run.run_id]
