"""Capture and spool replay under bad input: text Postgres cannot hold, lines that are no record.

Each test replays a probe that lost data before (issue 14): every row ends stored or set aside
with its reason, and the rest of its batch or segment always lands.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from conftest import REPO_ROOT
from typer.testing import CliRunner

from evals import warehouse
from evals.capture.spool import Spool, encode_record
from evals.capture.writer import CaptureWriter
from evals.runlog import NON_FINITE_FLAG, UNSTORABLE_FLAG, RunRecord, _all_finite, write_runs


def _record(i: int, **extra) -> RunRecord:
    return RunRecord(
        idempotency_key=f"key-{i}",
        source="production",
        role="grader",
        model="m",
        started_at=datetime(2026, 11, 1, tzinfo=UTC),
        status="ok",
        item_id=str(i),
        **extra,
    )


def _stored(url: str) -> dict[str, dict]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return {row["item_id"]: row for row in cur.execute("select * from raw.eval_runs")}


def test_a_lone_surrogate_or_nul_costs_no_row_of_its_batch_and_is_flagged(
    tmp_path: Path, warehouse_url: str
):
    writer = CaptureWriter(Spool(tmp_path / "spool"), flush_interval_s=0.05)
    batch = [
        _record(0, submission="print('hi') 👍"),
        _record(1, submission="truncated emoji \ud83d", inputs={"code": "x\ud83d"}),
        _record(2, output_text="nul\x00byte", messages=[{"role": "user", "content": "a\x00"}]),
        _record(3, rubric="مرحبا e\u0301"),
    ]
    for record in batch:
        writer.submit(record)
    assert writer.flush(10)
    writer.close()
    rows = _stored(warehouse_url)
    assert sorted(rows) == ["0", "1", "2", "3"]
    assert (writer.stats.written, writer.stats.rejected, writer.stats.spooled) == (4, 0, 0)
    assert rows["0"]["submission"] == "print('hi') 👍"  # stored verbatim
    assert rows["3"]["rubric"] == "مرحبا e\u0301" and UNSTORABLE_FLAG not in rows["3"]["attributes"]
    assert rows["1"]["submission"] == "truncated emoji \ufffd"
    assert rows["1"]["inputs"] == {"code": "x\ufffd"}
    assert rows["1"]["attributes"][UNSTORABLE_FLAG] == ["submission", "inputs"]
    assert rows["2"]["output_text"] == "nul\ufffdbyte"
    assert rows["2"]["messages"] == [{"role": "user", "content": "a\ufffd"}]
    assert rows["2"]["attributes"][UNSTORABLE_FLAG] == ["output_text", "messages"]


def test_a_lone_surrogate_survives_the_spool_and_lands_when_the_warehouse_returns(
    tmp_path: Path, warehouse_url: str
):
    reachable = {"now": False}

    def url() -> str:
        return warehouse_url if reachable["now"] else f"postgresql://x@/no?host={tmp_path}&port=1"

    writer = CaptureWriter(
        Spool(tmp_path / "spool"), url=url, flush_interval_s=0.05, retry_max_s=0.2
    )
    writer.submit(_record(0, submission="half \ud83d"))
    writer.submit(_record(1, submission="whole 😀"))
    assert writer.flush(10)
    assert (writer.stats.spooled, writer.stats.dropped) == (2, 0)
    reachable["now"] = True
    deadline = time.monotonic() + 10
    while writer.spool.segments() and time.monotonic() < deadline:
        writer.flush(5)
        time.sleep(0.1)
    writer.close()
    rows = _stored(warehouse_url)
    assert rows["0"]["submission"] == "half \ufffd" and rows["1"]["submission"] == "whole 😀"


def test_a_row_python_cannot_format_is_set_aside_alone(tmp_path: Path, warehouse_url: str):
    writer = CaptureWriter(Spool(tmp_path / "spool"), flush_interval_s=0.05)
    for record in (_record(0), _record(1, issue_tags=5), _record(2)):
        writer.submit(record)
    assert writer.flush(10)
    writer.close()
    assert sorted(_stored(warehouse_url)) == ["0", "2"]
    assert (writer.stats.written, writer.stats.rejected) == (2, 1)
    (rejected,) = writer.spool.rejected_files()
    entry = json.loads(rejected.read_text())
    assert entry["reason"].startswith("TypeError") and json.loads(entry["row"])["item_id"] == "1"


def test_capture_flush_sets_aside_lines_that_are_no_record_and_replays_the_rest(
    tmp_path: Path, warehouse_url: str
):
    from evals.cli import app

    spool = Spool(Path(os.environ[warehouse.HOME_ENV]) / "spool")
    first = spool.append([_record(0)])
    spool.seal()
    good = first.read_text()
    bad_lines = ["[1,2,3]", '{"run_id": 5}', '"run_id"', "{}"]
    seventh = encode_record(_record(7)) + "\n"
    first.write_text(good + "".join(line + "\n" for line in bad_lines) + seventh)
    later = spool.append([_record(1), _record(2)])
    spool.seal()

    result = CliRunner().invoke(app, ["capture", "flush"])

    assert result.exit_code == 0, result.output
    assert sorted(_stored(warehouse_url)) == ["0", "1", "2", "7"]
    assert spool.segments() == [] and not later.exists()
    offset = len(good.encode())
    assert f"{first.name}@{offset}: a JSON list, not a record" in result.output
    assert f"{first.name}@{offset + 8}: missing columns idempotency_key, model" in result.output
    assert "4 unreadable lines" in result.output
    (rejected,) = spool.rejected_files()
    kept = [json.loads(line)["row"] for line in rejected.read_text().splitlines()]
    assert kept == bad_lines


def test_simulated_reviews_of_spooled_calls_are_stored_once_the_spool_replays(
    tmp_path: Path, warehouse_url: str, monkeypatch
):
    from evals.capture import writer
    from evals.cli import app
    from evals.config import load_config
    from evals.traffic import simulate_traffic

    config = load_config(REPO_ROOT / "evalhouse.yaml")
    # The app's capture writer cannot reach the warehouse: every call goes to the spool.
    reachable_url = writer.reachable_url
    monkeypatch.setattr(
        writer, "reachable_url", lambda: f"postgresql://x@/no?host={tmp_path}&port=1"
    )
    summary = simulate_traffic(
        config, days=1, per_day=40, start=date(2026, 10, 1), seed=3, review_share=0.5
    )
    assert summary.capture_stats["spooled"] == summary.calls
    assert summary.reviews == 0 and summary.reviews_waiting > 5
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from raw.human_reviews").fetchone() == (0,)

    monkeypatch.setattr(writer, "reachable_url", reachable_url)
    result = CliRunner().invoke(app, ["capture", "flush"])
    assert result.exit_code == 0, result.output
    assert f"{summary.reviews_waiting} stored, 0 still waiting" in result.output
    with psycopg.connect(warehouse_url) as conn:
        stored = conn.execute(
            "select count(*) from raw.human_reviews h join raw.eval_runs r using (run_id)"
            " where h.source = 'simulated'"
        ).fetchone()
    assert stored == (summary.reviews_waiting,)


def test_non_finite_numbers_are_stored_as_null_and_flagged_by_every_writer(warehouse_url: str):
    """A NaN cost made every sum over it NaN ($nan on the overview; bare NaN in /runs.json)."""
    nan, inf = float("nan"), float("inf")
    batch = [
        _record(0, cost_usd=nan, latency_ms=inf, timings={"call_ms": -inf, "queued_ms": 1.5}),
        _record(1, cost_usd=0.25, latency_ms=12.0, score=nan),
    ]
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        assert write_runs(conn, batch) == 2
    rows = _stored(warehouse_url)
    assert (rows["0"]["cost_usd"], rows["0"]["latency_ms"]) == (None, None)
    assert rows["0"]["timings"] == {"call_ms": None, "queued_ms": 1.5}
    assert rows["0"]["attributes"][NON_FINITE_FLAG] == ["latency_ms", "cost_usd", "timings"]
    assert (rows["1"]["cost_usd"], rows["1"]["latency_ms"], rows["1"]["score"]) == (
        0.25,
        12.0,
        None,
    )
    assert rows["1"]["attributes"][NON_FINITE_FLAG] == ["score"]


def test_only_a_batch_whose_numbers_are_all_finite_skips_the_per_record_check():
    """The writer checks a batch's float columns with one sum each; any NaN or infinity, or a
    sum it cannot take, sends it through `finite` record by record."""
    ordinary = {"cost_usd": 0.25, "latency_ms": 12.0, "timings": {"call_ms": 3.0, "x": None}}
    assert _all_finite([_record(0), _record(1, **ordinary)])
    for odd in (
        {"cost_usd": float("nan")},
        {"score": float("-inf")},
        {"timings": {"call_ms": float("inf")}},
        {"latency_ms": 10**400},  # no float holds it: the sum overflows
        {"timings": {"call_ms": "slow"}},  # not a number: the sum fails
    ):
        assert not _all_finite([_record(0, **ordinary), _record(1, **odd)]), odd
