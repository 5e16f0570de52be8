"""Evaluation runs as records: one raw.eval_batches row per model x suite x batch key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from test_runner import write_suite as write_grader_suite

from evals.batches import (
    ATTRIBUTE,
    BatchSpec,
    Lineage,
    effective_status,
    fetch_batch,
    track,
)
from evals.config import Config
from evals.golden import load_suite
from evals.runner import RunRequest, run_suite

SIM = {
    "models": {
        "cand": {
            "model": "evalhouse-sim/cand",
            "family": "tutor",
            "checkpoint": "ckpt-200",
            "step": 200,
            "owner": "ml-team",
            "tags": ["nightly"],
        },
        "other": {"model": "evalhouse-sim/other"},
    },
    "simulator": {"seed": 3, "error_rate": 0, "rate_limit_rate": 0, "malformed_rate": 0},
}


def grader_suite(tmp_path: Path, n: int = 12) -> Path:
    path = tmp_path / "suite.yaml"
    items = [
        {
            "id": f"i{i:02d}",
            "stage": "loops" if i % 2 else "functions",
            "submission": f"def f(): return {i}",
            "expected_verdict": "pass" if i % 3 else "revise",
        }
        for i in range(n)
    ]
    return write_grader_suite(path, items)


def batches(url: str) -> list[dict]:
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("select * from raw.eval_batches order by model").fetchall()


def test_a_run_is_one_record_that_a_rerun_reopens_and_its_rows_name_it(
    warehouse_url: str, tmp_path: Path
) -> None:
    config = Config.model_validate(SIM)
    suite = load_suite(grader_suite(tmp_path))
    first = run_suite(config, RunRequest(suite, "cand", limit=8))
    run_suite(config, RunRequest(suite, "cand"))  # the same batch, four items more
    run_suite(config, RunRequest(suite, "other", limit=5))
    cand, other = batches(warehouse_url)
    assert (cand["model"], cand["status"], cand["invocations"]) == ("cand", "completed", 2)
    assert (other["model"], other["status"], other["invocations"]) == ("other", "completed", 1)
    assert (
        cand["batch_key"]
        == other["batch_key"]
        == first.batch_key
        == "golden:t-grader@" + (suite.version)
    )
    assert (cand["calls"], cand["settled"], cand["errors"], cand["parse_errors"]) == (12, 12, 0, 0)
    assert (other["calls"], other["settled"]) == (5, 5)
    assert cand["planned_calls"] == 12 and cand["kind"] == "run" and cand["started_by"] == "cli"
    assert (cand["suite"], cand["suite_version"], cand["judge"]) == (
        "t-grader",
        suite.version,
        None,
    )
    assert cand["models_answered"] == ["cand-sim-v1"]
    assert first.as_dict()["batch_id"] == str(cand["batch_id"])
    assert cand["ended_at"] >= cand["started_at"] and cand["code_version"]
    lineage = [cand[f"model_{k}"] for k in ("family", "checkpoint", "step", "owner", "tags")]
    assert lineage == ["tutor", "ckpt-200", 200, "ml-team", ["nightly"]]
    assert other["model_family"] is None and other["model_tags"] == []
    with psycopg.connect(warehouse_url) as conn:
        linked = dict(
            conn.execute(
                f"select model, attributes->>'{ATTRIBUTE}' from raw.eval_runs group by 1, 2"
            ).fetchall()
        )
    assert linked == {"cand": str(cand["batch_id"]), "other": str(other["batch_id"])}


def test_a_run_that_leaves_calls_unsettled_is_failed(warehouse_url: str, tmp_path: Path) -> None:
    broken = {**SIM, "simulator": {**SIM["simulator"], "error_rate": 1.0}}
    config = Config.model_validate(broken)
    summary = run_suite(config, RunRequest(load_suite(grader_suite(tmp_path, 4)), "cand"))
    (record,) = batches(warehouse_url)
    assert summary.unsettled_calls == 4
    assert (record["status"], record["settled"], record["errors"]) == ("failed", 0, 4)
    assert record["calls"] == 4 and record["ended_at"] is not None


def _spec(**changes) -> BatchSpec:
    return BatchSpec(
        **{
            "kind": "import",
            "batch_key": "import:x.jsonl",
            "source": "import",
            "model": "m",
            "started_by": "cli",
            "lineage": Lineage(family="f", step=3),
            **changes,
        }
    )


def test_an_exception_fails_the_record_and_an_interrupt_cancels_it(warehouse_url: str) -> None:
    secret = "sk-evalhouse-batches-0123456789abcdefXYZ"
    with psycopg.connect(warehouse_url) as conn:
        with pytest.raises(RuntimeError), track(conn, _spec()):
            raise RuntimeError(f"provider said no to {secret}")
        with pytest.raises(KeyboardInterrupt), track(conn, _spec(model="n")):
            raise KeyboardInterrupt
        failed = fetch_batch(conn, _spec().batch_id)
        cancelled = fetch_batch(conn, _spec(model="n").batch_id)
    assert failed["status"] == "failed" and failed["error_message"].startswith("RuntimeError")
    assert secret not in failed["error_message"]
    assert cancelled["status"] == "cancelled" and cancelled["error_message"] is None
    assert (failed["model_family"], failed["model_step"]) == ("f", 3)


def test_only_a_running_batch_with_an_old_heartbeat_is_stale() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert effective_status("running", now - timedelta(seconds=119), now) == "running"
    assert effective_status("running", now - timedelta(seconds=121), now) == "stale"
    assert effective_status("completed", now - timedelta(days=3), now) == "completed"


def test_a_batch_id_is_its_identity_not_who_started_it() -> None:
    assert _spec().batch_id == _spec(started_by="dagster:abc", kind="run").batch_id
    assert _spec().batch_id != _spec(batch_key="import:y.jsonl").batch_id
    with pytest.raises(ValueError, match="kind"):
        _spec(kind="nightly")


def test_an_open_batch_beats_on_its_own_connection_while_the_caller_works(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr("evals.batches.HEARTBEAT_S", 0.05)
    with psycopg.connect(warehouse_url, autocommit=True) as conn, track(conn, _spec()):
        opened = fetch_batch(conn, _spec().batch_id)["heartbeat_at"]
        time.sleep(0.6)  # busy elsewhere: no call of ours touches the record
        beating = fetch_batch(conn, _spec().batch_id)
    assert beating["status"] == "running" and beating["heartbeat_at"] > opened


def test_a_batch_on_a_database_other_than_the_warehouse_in_use_beats_there(
    pg_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's connection need not be the warehouse the environment selects (an import into
    a named database, a test's own): the heartbeat goes to the batch's database, and never
    starts the embedded default warehouse."""
    import time

    from conftest import create_database, drop_database

    from evals import warehouse

    monkeypatch.setattr("evals.batches.HEARTBEAT_S", 0.05)
    name = create_database(pg_server)
    with psycopg.connect(pg_server.url(name), autocommit=True) as conn, track(conn, _spec()):
        opened = fetch_batch(conn, _spec().batch_id)["heartbeat_at"]
        time.sleep(0.6)
        beating = fetch_batch(conn, _spec().batch_id)
    drop_database(pg_server, name)
    assert beating["heartbeat_at"] > opened
    assert not (warehouse.evalhouse_home() / "pgdata").exists()
