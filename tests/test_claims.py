"""Concurrent runs of the same work share it: each call is made once between them.

Real Postgres (advisory locks on real sessions), real LiteLLM against the loopback fake server,
which counts every request and tells the processes apart by the API key they send. The server
holds its replies until both runs have calls in flight, so the runs really overlap.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import yaml
from _kill import kill_9_when
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)

from evals.claims import POLL_S, Claims
from evals.config import Config
from evals.rejudge import RejudgeRequest, run_rejudge
from evals.runner import RunRequest, run_suite
from tests.conftest import REPO_ROOT
from tests.test_runner import SETTLED, fake_model, grader_items, write_suite

KEYS = {"A": "sk-claims-run-A-0123456789", "B": "sk-claims-run-B-0123456789"}
CONCURRENCY = 4
# replies held until the other run starts must not time out and be retried (a second request)
PATIENT = {"concurrency": CONCURRENCY, "timeout_s": 300.0, "deadline_s": 600.0}


def _wait_until(condition, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def _marker(request: dict) -> str:
    """The item a grader request is about (its submission ends with MARK-nnnn-END)."""
    content = request["json"]["messages"][1]["content"]
    start = content.index("MARK-")
    return content[start : content.index("-END", start) + 4]


def _by_run(server: FakeOpenAI) -> dict[str, Counter]:
    """Requests per item, for each run (told apart by the key in its Authorization header)."""
    runs = {f"Bearer {key}": name for name, key in KEYS.items()}
    counts: dict[str, Counter] = {name: Counter() for name in KEYS}
    for request in server.requests:
        counts[runs[request["headers"]["authorization"]]][_marker(request)] += 1
    return counts


def _start_both(server: FakeOpenAI, tmp_path: Path, url: str, n: int) -> dict:
    """Two `evalhouse run` processes on one suite and model, both with calls in flight."""
    suite = write_suite(tmp_path / "suite.yaml", grader_items(n))
    config = tmp_path / "evalhouse.yaml"
    model = fake_model(server, **PATIENT)
    config.write_text(yaml.safe_dump({"models": {"m": model}}))
    command = [sys.executable, "-m", "evals.cli", "run", "--suite", str(suite), "--model", "m"]
    server.held = True
    processes = {}
    for name, key in KEYS.items():
        env = {
            **os.environ,
            "EVALHOUSE_CONFIG": str(config),
            "EVALHOUSE_DATABASE_URL": url,
            "FAKE_PROVIDER_API_KEY": key,
            "EVALHOUSE_CODE_VERSION": f"run-{name}",  # which process wrote a row
        }
        processes[name] = subprocess.Popen(
            [*command, "--no-progress", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        _wait_until(
            lambda: (
                server.in_flight == 2 * CONCURRENCY
                or any(p.poll() is not None for p in processes.values())
            ),
            "both runs have every worker waiting on a call",
        )
        assert all(p.poll() is None for p in processes.values()), "a run ended early"
    except BaseException:
        for process in processes.values():
            process.kill()
        raise
    finally:
        server.held = False
    return processes


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


def _settled_per_item(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"select item_id, count(*) filter (where {SETTLED}) from raw.eval_runs group by 1"
        ).fetchall()
    return dict(rows)


def test_a_claim_is_refused_to_another_session_until_its_holder_releases_or_ends(
    warehouse_url: str,
) -> None:
    first, second = (Claims(psycopg.connect(warehouse_url, autocommit=True)) for _ in range(2))
    try:
        assert first.claim(["k1", "k2", "k2"]) == {"k1", "k2"}
        assert second.claim(["k1", "k2", "k3"]) == {"k3"}
        first.release(["k1"])
        assert second.claim(["k1", "k2"]) == {"k1"}
        first.close()  # a dead claimant's session: its claims go with it
        _wait_until(lambda: second.claim(["k2"]) == {"k2"}, "the closed session's claim is free")
    finally:
        first.close()
        second.close()


def test_two_runs_of_one_batch_make_every_call_once_between_them(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    n = 120
    fake_openai.latency_s = 0.02
    processes = _start_both(fake_openai, tmp_path, warehouse_url, n)
    summaries = {name: _finish(process) for name, process in processes.items()}

    calls = _by_run(fake_openai)
    assert calls["A"] + calls["B"] == Counter({f"MARK-{i:04d}-END": 1 for i in range(n)})
    for name, summary in summaries.items():
        assert summary["calls"] == calls[name].total() >= CONCURRENCY
        assert summary["skipped_calls"] == 0  # both planned the whole batch, then shared it
        assert summary["calls_elsewhere"] == n - summary["calls"]
        assert (summary["unsettled_calls"], summary["scored"]) == (0, n)
    assert _settled_per_item(warehouse_url) == {f"i{i:04d}": 1 for i in range(n)}
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from raw.eval_runs").fetchone()[0] == n


def test_a_run_killed_mid_batch_leaves_its_claimed_units_to_the_other_at_once(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    n = 200
    fake_openai.latency_s = 0.1
    processes = _start_both(fake_openai, tmp_path, warehouse_url, n)
    victim = processes["A"]
    kill_9_when(
        victim, lambda: sum(_settled_per_item(warehouse_url).values()) >= 40, "40 settled", 120
    )
    assert victim.returncode == -signal.SIGKILL
    survivor = _finish(processes["B"])

    assert survivor["unsettled_calls"] == 0 and survivor["scored"] == n
    assert _settled_per_item(warehouse_url) == {f"i{i:04d}": 1 for i in range(n)}
    with psycopg.connect(warehouse_url) as conn:
        written_by_a = {
            row[0]
            for row in conn.execute(
                "select item_id from raw.eval_runs where code_version = 'run-A'"
            ).fetchall()
        }
    calls = _by_run(fake_openai)
    assert max(calls["A"].values()) == max(calls["B"].values()) == 1  # once per run at most
    assert set(calls["A"]) | set(calls["B"]) == {f"MARK-{i:04d}-END" for i in range(n)}
    # A's calls in flight at the kill left no row; B made those again, and only those
    in_flight = {m for m in calls["A"] if m.replace("MARK-", "i")[:-4] not in written_by_a}
    assert set(calls["A"]) & set(calls["B"]) == in_flight
    assert survivor["calls"] == calls["B"].total()


def test_two_rejudges_of_the_same_calls_make_each_call_once_between_them(
    warehouse_url: str, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config.model_validate(
        {
            "models": {
                "tutor-small": {"model": "evalhouse-sim/tutor-small"},
                "paid": fake_model(fake_openai, **PATIENT),
            },
            "suites": {
                "intro-python": {"path": str(REPO_ROOT / "golden_sets/intro_python_grader.yaml")}
            },
            "simulator": {"seed": 3, "error_rate": 0, "rate_limit_rate": 0, "malformed_rate": 0},
        }
    )
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", KEYS["A"])
    run_suite(config, RunRequest("intro-python", "tutor-small", limit=24))
    with psycopg.connect(warehouse_url) as conn:
        graded = conn.execute("select count(*) from raw.eval_runs where role = 'grader'").fetchone()
    fake_openai.held = True
    results: dict[str, object] = {}

    def rejudge(name: str) -> None:
        request = RejudgeRequest(judge="paid", suite="intro-python")
        results[name] = run_rejudge(config, request, echo=lambda line: None)

    threads = [threading.Thread(target=rejudge, args=(name,)) for name in KEYS]
    for thread in threads:
        thread.start()
    try:
        _wait_until(lambda: fake_openai.in_flight == 2 * CONCURRENCY, "both rejudges call")
    finally:
        fake_openai.held = False
        for thread in threads:
            thread.join(300)

    sent = Counter(json.dumps(r["json"]["messages"], sort_keys=True) for r in fake_openai.requests)
    assert len(sent) == graded[0] and set(sent.values()) == {1}
    new_rows = [results[name].new_rows for name in KEYS]
    assert sum(new_rows) == graded[0] and min(new_rows) >= CONCURRENCY
    with psycopg.connect(warehouse_url) as conn:
        per_call = conn.execute(
            "select count(*), count(distinct parent_run_id) from raw.eval_runs"
            " where source = 'rejudge'"
        ).fetchone()
    assert per_call == (graded[0], graded[0])


def test_a_claimed_unit_is_checked_again_so_work_another_run_settled_is_not_redone(
    warehouse_url: str, tmp_path: Path
) -> None:
    """A run planned the whole batch; meanwhile another run settled some units whole, settled
    two candidates but not their judges, and still holds one unit."""
    from evals.golden import load_suite
    from evals.runner.claiming import UnitSupply
    from evals.runner.driver import _context
    from evals.runner.units import plan, resume
    from tests.test_runner import SIM_CONFIG, answer_suite

    config = Config.model_validate(SIM_CONFIG)
    request = RunRequest(load_suite(answer_suite(tmp_path)), "cand")
    units = plan(_context(config, request), 1, None)
    by_item = {unit.item.item_id: unit for unit in units}
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        todo, _ = resume(conn, units)
        assert len(todo) == 8  # j0..j5 (candidate + judge), n1 and e1 (scored, no judge)
        run_suite(config, RunRequest(request.suite, "cand", limit=4))  # j0..j3, the other run
        conn.execute("delete from raw.eval_runs where role = 'judge' and item_id in ('j2', 'j3')")
        answers = {
            item: (run_id, text)
            for item, run_id, text in conn.execute(
                "select item_id, run_id, output_text from raw.eval_runs"
                " where role = 'candidate' and item_id in ('j2', 'j3')"
            ).fetchall()
        }
    mine, other = (Claims(psycopg.connect(warehouse_url, autocommit=True)) for _ in range(2))
    try:
        assert other.claim([by_item["j5"].key]) == {by_item["j5"].key}
        supply = UnitSupply(mine, todo, workers=2)

        async def drain() -> tuple[list, object]:
            handed = [await supply.next() for _ in range(5)]
            last = asyncio.create_task(supply.next())
            await asyncio.sleep(3 * POLL_S)
            assert not last.done(), "a unit another live run holds is not handed out"
            assert other.claim([by_item["j2"].key]) == set()  # held here until its rows land
            assert other.claim([by_item["j0"].key]) == {by_item["j0"].key}  # released: settled
            other.release([by_item["j5"].key])
            return handed, [await last, await supply.next()]

        handed, rest = asyncio.run(drain())
    finally:
        mine.close()
        other.close()

    assert [u.item.item_id for u in handed] == ["j2", "j3", "j4", "n1", "e1"]
    for unit in handed[:2]:
        run_id, answer = answers[unit.item.item_id]
        assert (unit.call_main, unit.candidate_run_id, unit.candidate_answer) == (
            False,
            run_id,
            answer,
        )
    assert all(unit.call_main for unit in handed[2:])
    assert rest[0] is by_item["j5"] and rest[1] is None
    assert supply.calls_elsewhere == 2 + 2 + 1 + 1  # j0 and j1 whole, the j2 and j3 candidates
