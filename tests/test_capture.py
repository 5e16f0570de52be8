"""Production capture: the LiteLLM callback, capture(), the background writer and the spool."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from fake_openai import fake_openai  # noqa: F401  (fixture)
from typer.testing import CliRunner

from evals import capture, warehouse
from evals.capture.prepare import RowPreparer
from evals.capture.spool import Spool
from evals.capture.writer import CaptureWriter
from evals.config import CaptureConfig, Config
from evals.redact import PiiRedactor
from evals.runlog import RunRecord

API_KEY = "sk-test-abcdefghijklmnopqrstuvwxyz0123"


def _rows(url: str, where: str = "true", args: tuple = ()) -> list[dict]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            f"select * from raw.eval_runs where {where} order by started_at", args
        ).fetchall()


@pytest.fixture
def started_capture(tmp_path: Path, warehouse_url: str):
    config = Config(
        capture=CaptureConfig(flush_interval_s=0.05, redact_patterns=[r"learner-secret-\d+"])
    )
    writer = capture.start(config, parse_verdict=False)
    yield writer
    capture.shutdown()


def test_the_callback_writes_one_faithful_row_per_litellm_call_including_failures(
    fake_openai,
    started_capture,
    warehouse_url,
):
    import litellm

    capture.install()
    fake_openai.script("please-fail", ["server_error"])
    tags = {
        "touchpoint": "exercise-feedback",
        "subject_id": "learner-1",
        "stage": "loops",
        "suite": "intro-python",
        "prompt_name": "rubric_grader",
        "prompt_version": "abc123",
        "expected_verdict": "fail",
    }
    messages = [
        {"role": "system", "content": "Grade it. Ünïcødé ✓ '; drop table x; --"},
        {"role": "user", "content": "print('hi')"},
    ]
    common = dict(api_base=fake_openai.api_base, api_key=API_KEY, max_retries=0)
    litellm.completion(
        model="openai/tutor",
        messages=messages,
        temperature=0.2,
        max_tokens=300,
        metadata={"evalhouse": tags},
        **common,
    )
    with pytest.raises(litellm.InternalServerError):
        litellm.completion(
            model="openai/tutor",
            messages=[{"role": "user", "content": "please-fail"}],
            metadata={"evalhouse": {**tags, "subject_id": "learner-2"}},
            **common,
        )

    async def async_calls():
        await litellm.acompletion(
            model="openai/tutor",
            messages=messages,
            metadata={"evalhouse": {**tags, "subject_id": "learner-3"}},
            **common,
        )
        fake_openai.script("async-fail", ["rate_limit"])
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(
                model="openai/tutor",
                messages=[{"role": "user", "content": "async-fail"}],
                metadata={"evalhouse": {**tags, "subject_id": "learner-4"}},
                **common,
            )
        await asyncio.sleep(0.2)  # LiteLLM logs from tasks of its own: let them run on this loop
        await litellm.close_litellm_async_clients()

    asyncio.run(async_calls())
    deadline = time.monotonic() + 10
    while len(_rows(warehouse_url)) < 4 and time.monotonic() < deadline:
        capture.flush(5)
        time.sleep(0.05)
    time.sleep(0.3)
    capture.flush(5)

    all_rows = _rows(warehouse_url)
    rows = {row["subject_id"]: row for row in all_rows}
    assert len(all_rows) == 4 and sorted(rows) == [
        "learner-1",
        "learner-2",
        "learner-3",
        "learner-4",
    ]
    ok = rows["learner-1"]
    assert ok["messages"] == messages
    assert ok["params"] == {"temperature": 0.2, "max_tokens": 300}
    assert json.loads(ok["output_text"])["verdict"] == "pass"
    assert ok["status"] == "ok" and ok["source"] == "production" and ok["role"] == "grader"
    assert ok["model"] == "openai/tutor" and ok["response_model"].startswith("tutor")
    assert ok["provider"] == "openai"
    assert (ok["stage"], ok["suite"], ok["touchpoint"]) == (
        "loops",
        "intro-python",
        "exercise-feedback",
    )
    assert (ok["prompt_name"], ok["prompt_version"]) == ("rubric_grader", "abc123")
    assert ok["expected_verdict"] is None  # truth handed to a provider is not production data
    # the fake server counts a token per 4 characters (of the messages, of the reply), plus one
    assert ok["input_tokens"] == sum(len(m["content"]) for m in messages) // 4 + 1
    assert ok["output_tokens"] == len(ok["output_text"]) // 4 + 1
    assert ok["latency_ms"] > 0
    failed = rows["learner-2"]
    assert failed["status"] == "error" and failed["error_class"] == "InternalServerError"
    assert failed["output_text"] is None
    assert rows["learner-3"]["status"] == "ok" and rows["learner-3"]["messages"] == messages
    assert (rows["learner-4"]["status"], rows["learner-4"]["error_class"]) == (
        "error",
        "RateLimitError",
    )
    for row in rows.values():
        assert API_KEY not in json.dumps(row, default=str)
        assert "authorization" not in json.dumps(row["params"]).lower()


def test_capture_and_capturing_record_explicit_calls_and_their_errors(
    started_capture, warehouse_url
):
    run_id = capture.capture(
        model="rules-v2",
        stage="loops",
        subject_id="u1",
        output_text="ok",
        verdict="pass",
        passed=True,
        latency_ms=3.5,
    )
    with capture.capturing(model="my-model", stage="functions") as call:
        call.messages = [{"role": "user", "content": "x"}]
        call.output_text = "fine"
    with (
        pytest.raises(TimeoutError),
        capture.capturing(model="my-model", stage="functions") as failing,
    ):
        raise TimeoutError("the grader took too long")
    assert capture.flush(10)
    rows = {row["run_id"]: row for row in _rows(warehouse_url)}
    assert rows[run_id]["verdict"] == "pass" and rows[run_id]["latency_ms"] == 3.5
    assert rows[call.run_id]["messages"] == [{"role": "user", "content": "x"}]
    assert rows[call.run_id]["latency_ms"] >= 0
    assert rows[failing.run_id]["status"] == "timeout"
    assert rows[failing.run_id]["error_message"] == "the grader took too long"


def test_a_forked_child_captures_through_a_writer_of_its_own(started_capture, warehouse_url):
    parent = capture.capture(model="m", stage="loops")
    pid = os.fork()
    if pid == 0:  # the child: the parent's writer thread does not exist here
        ok = False
        try:
            capture.capture(model="m", stage="forked", run_id=CHILD_RUN)
            ok = capture.flush(20) and capture.current_writer() is not started_capture
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert capture.flush(10)
    assert {row["run_id"] for row in _rows(warehouse_url)} == {parent, CHILD_RUN}


CHILD_RUN = uuid.UUID("00000000-0000-4000-8000-00000000c41d")


def test_redaction_runs_before_a_row_leaves_the_process(tmp_path: Path, warehouse_url: str):
    preparer = RowPreparer(
        PiiRedactor(patterns=[r"learner-secret-\d+"]),
        redact=lambda text: text.replace("Alice Liddell", "<name>"),
    )
    writer = CaptureWriter(Spool(tmp_path / "spool"), prepare=preparer, flush_interval_s=0.05)
    record = RunRecord(
        idempotency_key="k1",
        source="production",
        role="grader",
        model="m",
        started_at=_now(),
        status="error",
        submission="Alice Liddell, alice@example.org, +44 20 7946 0958, id learner-secret-42",
        messages=[
            {"role": "user", "content": f"my key is {API_KEY}"},
            {"role": "user", "content": "mail alice@example.org or bob@example.org"},
        ],
        params={
            "temperature": 0,
            "api_key": API_KEY,
            "extra_headers": {"Authorization": "Bearer x"},
        },
        error_message=f"401 from https://api.example.test/v1?key={API_KEY}",
    )
    writer.submit(record)
    assert writer.flush(10)
    writer.close()
    (row,) = _rows(warehouse_url)
    assert row["submission"] == "<name>, [EMAIL], [PHONE], id [REDACTED]"
    assert row["messages"][1]["content"] == "mail [EMAIL] or [EMAIL]"
    # Distinct values per kind across the whole row; never the values themselves.
    assert row["attributes"] == {"redacted": {"custom": 1, "email": 2, "phone": 1}}
    assert API_KEY not in json.dumps(row, default=str)
    assert row["params"] == {"temperature": 0}


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _record(i: int, **extra) -> RunRecord:
    return RunRecord(
        idempotency_key=f"key-{i}",
        source="production",
        role="grader",
        model="m",
        started_at=_now(),
        status="ok",
        item_id=str(i),
        **extra,
    )


def test_rows_wait_in_the_spool_while_the_warehouse_is_down_and_land_exactly_once(
    tmp_path: Path, warehouse_url: str
):
    reachable = {"now": False}

    def url() -> str:
        if reachable["now"]:
            return warehouse_url
        return f"postgresql://postgres@/nowhere?host={tmp_path}&port=1"

    writer = CaptureWriter(
        Spool(tmp_path / "spool"), url=url, flush_interval_s=0.05, retry_max_s=0.2
    )
    records = [_record(i) for i in range(120)]
    for record in records[:100]:
        writer.submit(record)
    assert writer.flush(10)
    assert writer.stats.spooled == 100 and writer.spool.pending_rows() == 100
    assert _rows(warehouse_url) == []

    reachable["now"] = True
    for record in records[100:]:
        writer.submit(record)
    deadline = time.monotonic() + 10
    while writer.spool.segments() and time.monotonic() < deadline:
        writer.flush(5)
        time.sleep(0.1)
    writer.close()
    rows = _rows(warehouse_url)
    assert sorted(row["run_id"] for row in rows) == sorted(record.run_id for record in records)
    assert writer.spool.segments() == []
    # Replaying the same rows again (a crash between commit and delete) adds nothing.
    again = Spool(tmp_path / "spool2")
    again.append(records)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        from evals.runlog import write_runs

        result = again.replay(lambda chunk: write_runs(conn, chunk))
    assert (result.rows, result.inserted) == (120, 0)


def test_rows_the_warehouse_refuses_are_set_aside_and_the_rest_commit(
    tmp_path: Path, warehouse_url: str
):
    writer = CaptureWriter(Spool(tmp_path / "spool"), flush_interval_s=0.05)
    good = [_record(i) for i in range(5)]
    bad = _record(99, latency_ms=-1.0)  # violates the latency check constraint
    for record in [*good[:2], bad, *good[2:]]:
        writer.submit(record)
    assert writer.flush(10)
    writer.close()
    assert {row["item_id"] for row in _rows(warehouse_url)} == {"0", "1", "2", "3", "4"}
    (rejected,) = writer.spool.rejected_files()
    entry = json.loads(rejected.read_text().splitlines()[0])
    assert "CheckViolation" in entry["reason"] and json.loads(entry["row"])["item_id"] == "99"


def test_a_torn_last_line_is_dropped_and_the_rest_replays(tmp_path: Path, warehouse_url: str):
    spool = Spool(tmp_path / "spool")
    path = spool.append([_record(1), _record(2)])
    spool.seal()
    with open(path, "a") as handle:
        handle.write('{"run_id": "half a row')
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        from evals.runlog import write_runs

        result = spool.replay(lambda chunk: write_runs(conn, chunk))
    assert (result.rows, result.inserted, result.segments) == (2, 2, 1)
    assert not path.exists()


def test_capture_flush_command_replays_the_spool(tmp_path: Path, warehouse_url: str, monkeypatch):
    from evals.cli import app

    spool = Spool(Path(os.environ[warehouse.HOME_ENV]) / "spool")
    spool.append([_record(i) for i in range(7)])
    spool.seal()
    runner = CliRunner()
    status = runner.invoke(app, ["capture", "status"])
    assert status.exit_code == 0, status.output
    assert "7 rows" in status.output
    result = runner.invoke(app, ["capture", "flush"])
    assert result.exit_code == 0, result.output
    assert "7" in result.output
    assert len(_rows(warehouse_url)) == 7 and spool.segments() == []


# --- crash and restart: a subprocess app against its own embedded Postgres ---------------------

_APP = textwrap.dedent(
    """
    import json, os, sys, time
    from evals import capture
    from evals.config import CaptureConfig, Config

    acked_path, limit = sys.argv[1], int(sys.argv[2])
    capture.start(Config(capture=CaptureConfig(flush_interval_s=0.05)), parse_verdict=False)
    pending = []
    for i in range(limit):
        pending.append(str(capture.capture(model="app-model", stage="loops", item_id=str(i),
                                           output_text="ok", verdict="pass")))
        if len(pending) == 10:
            assert capture.flush(30)
            with open(acked_path, "a") as out:  # acknowledged = committed or fsync'd in the spool
                out.write("".join(run_id + "\\n" for run_id in pending))
            pending = []
        time.sleep(0.002)
    capture.shutdown()
    with open(acked_path, "a") as out:
        out.write("".join(run_id + "\\n" for run_id in pending))
    """
)


def _acked(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_every_acknowledged_row_lands_exactly_once_across_outage_kill_and_restart(tmp_path: Path):
    from evals.warehouse.embedded import EmbeddedPostgres

    home = tmp_path / "apphome"
    server = EmbeddedPostgres(home)
    env = {**os.environ, warehouse.HOME_ENV: str(home)}
    env.pop(warehouse.URL_ENV, None)
    app = tmp_path / "app.py"
    app.write_text(_APP)
    acked = tmp_path / "acked.txt"
    try:
        server.ensure_running()
        subprocess.run(
            [sys.executable, "-m", "evals.cli", "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )
        first = subprocess.Popen(
            [sys.executable, str(app), str(acked), "100000"], env=env, cwd=tmp_path
        )
        _wait_for(lambda: len(_acked(acked)) >= 100)
        server.stop()  # the warehouse goes away mid-capture
        stopped_at = len(_acked(acked))
        _wait_for(lambda: len(_acked(acked)) >= stopped_at + 150)
        first.send_signal(signal.SIGKILL)  # the app dies with rows in the spool
        first.wait(10)
        server.ensure_running()
        second = subprocess.run(
            [sys.executable, str(app), str(acked), "50"],
            env=env,
            cwd=tmp_path,
            timeout=120,
            capture_output=True,
            text=True,
        )
        assert second.returncode == 0, second.stderr
        ids = _acked(acked)
        rows = _rows(server.url(), "model = %s", ("app-model",))
        stored = [str(row["run_id"]) for row in rows]
        assert len(stored) == len(set(stored))  # nothing doubled
        assert set(ids) <= set(stored)  # nothing acknowledged was lost
        # Only rows queued in the killed app's last moments may be missing; none are invented.
        assert len(set(stored) - set(ids)) <= 10
        assert not list((home / "spool").glob("capture-*.jsonl"))
    finally:
        server.stop()
