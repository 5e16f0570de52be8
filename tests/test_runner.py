"""The runner end to end: real Postgres, real LiteLLM, loopback HTTP or the simulator.

Each failure mode leaves the right rows, a re-run makes exactly the missing calls, a kill -9
loses only calls in flight, inputs survive byte for byte and no key reaches a row or a log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from _kill import SENT_REQUESTS_LAND_S, kill_9_when
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)

from evals.batches import STALE_AFTER_S, effective_status, fetch_batch
from evals.config import Config, MissingCredentialError, load_config
from evals.golden import load_suite
from evals.prompts import RUBRIC_GRADER, load_prompt
from evals.runlog import fetch_run, record_from_row
from evals.runner import RunnerError, RunRequest, run_suite
from evals.runner.inputs import code_version

SECRET = "sk-evalhouse-runner-9876543210abcdefXYZ"
SETTLED = "status in ('ok', 'parse_error')"


def write_suite(path: Path, items: list[dict], **header) -> Path:
    suite = {
        "name": "t-grader",
        "description": "runner tests",
        "kind": "grader",
        "verdicts": ["pass", "revise", "fail"],
        "passing_verdicts": ["pass"],
        "issue_tags": ["off_by_one", "style"],
        "default_rubric": "Meet the spec.",
        **header,
        "items": items,
    }
    path.write_text(yaml.safe_dump(suite, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def grader_items(n: int, stages: tuple[str, ...] = ("loops", "functions")) -> list[dict]:
    return [
        {
            "id": f"i{i:04d}",
            "stage": stages[i % len(stages)],
            "submission": f"submission number {i} MARK-{i:04d}-END",
            "expected_verdict": "pass" if i % 3 else "revise",
        }
        for i in range(n)
    ]


def fake_model(server: FakeOpenAI, **overrides) -> dict:
    return {
        "model": "openai/fake-grader",
        "api_base": server.api_base,
        "api_key_env": "FAKE_PROVIDER_API_KEY",
        "timeout_s": 5.0,
        "deadline_s": 12.0,
        "max_attempts": 2,
        "concurrency": 8,
        **overrides,
    }


def warm_up(config: Config) -> None:
    """Pay LiteLLM's first-use imports of the OpenAI path outside the timed calls under test
    (seconds on a loaded 2-core machine, which would otherwise eat a per-attempt timeout)."""
    from evals.llm import LLMClient

    client = LLMClient(config)
    client.complete("m", [{"role": "user", "content": "warm-up"}])
    client.close()


def rows(url: str, where: str = "true", params: tuple = ()) -> list[dict]:
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            f"select * from raw.eval_runs where {where} order by item_id, started_at", params
        ).fetchall()


def _assert_item_1_settled_with_its_whole_call(row: dict) -> None:
    """Item 1 settled after a rate limit: its row holds the grade and everything that made it."""
    assert row["verdict"] == "pass" and row["passed"] is True and row["score"] == 0.9
    assert row["expected_verdict"] == "pass" and row["role"] == "grader"
    assert row["prompt_name"] == "rubric_grader"
    assert row["prompt_version"] == load_prompt(RUBRIC_GRADER).version
    assert set(row["timings"]) == {"queued_ms", "call_ms", "backoff_ms", "parse_ms"}
    assert row["code_version"] == code_version()
    # the fake server counts a token per 4 characters of the messages, plus one
    assert row["input_tokens"] == sum(len(m["content"]) for m in row["messages"]) // 4 + 1
    assert row["params"] == {"response_format": {"type": "json_object"}}
    assert row["messages"][1]["content"].endswith("MARK-0001-END\nSUBMISSION>>>")


def test_faults_leave_honest_rows_and_a_rerun_retries_only_the_failures(
    warehouse_url: str,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", SECRET)
    fake_openai.retry_after = "0"
    fake_openai.slow_s = 15
    items = grader_items(10)
    suite = load_suite(write_suite(tmp_path / "suite.yaml", items))
    script = {
        1: ["rate_limit", "ok"],
        2: ["server_error", "server_error"],
        3: ["slow", "slow"],
        4: ["reset", "ok"],
        5: ["malformed", "malformed"],
        6: ["not_json"],
        7: ["rate_limit", "rate_limit"],
    }
    for i, behaviours in script.items():
        fake_openai.script(f"MARK-{i:04d}-END", behaviours)
    config = Config.model_validate(
        {"models": {"m": fake_model(fake_openai, timeout_s=3.0, deadline_s=6.5)}}
    )
    warm_up(config)

    with caplog.at_level(logging.INFO):
        first = run_suite(config, RunRequest(suite, "m"))
    by_item = {row["item_id"]: row for row in rows(warehouse_url)}
    outcome = {int(k[1:]): (row["status"], row["attempts"]) for k, row in by_item.items()}
    assert outcome[0] == ("ok", 1)
    assert outcome[1] == ("ok", 2)
    assert outcome[2] == ("error", 2)
    assert outcome[3][0] == "timeout"
    assert outcome[4] == ("ok", 2)
    assert outcome[5] == ("error", 2)
    assert outcome[6] == ("parse_error", 1)
    assert outcome[7] == ("error", 2)
    prose = by_item["i0006"]
    assert prose["output_text"].startswith("Sure!") and prose["verdict"] is None
    assert prose["error_class"] == "ParseError" and prose["score"] is None
    _assert_item_1_settled_with_its_whole_call(by_item["i0001"])
    assert first.statuses == {"ok": 5, "parse_error": 1, "error": 3, "timeout": 1}
    assert first.unsettled_calls == 4 and first.scored == 6

    # No key anywhere: rows (every column as text), log records, console output.
    with psycopg.connect(warehouse_url) as conn:
        dump = "\n".join(r[0] for r in conn.execute("select t::text from raw.eval_runs t"))
    assert "[REDACTED]" in by_item["i0002"]["error_message"]
    out = capfd.readouterr()
    for text in (dump, caplog.text, out.out, out.err):
        assert SECRET not in text

    fake_openai.reset_counts()
    second = run_suite(config, RunRequest(suite, "m"))
    assert fake_openai.request_count == 4  # items 2, 3, 5, 7: nothing that settled is re-asked
    assert second.skipped_calls == 6 and second.calls == 4 and second.unsettled_calls == 0
    with psycopg.connect(warehouse_url) as conn:
        per_key = conn.execute(
            f"select count(*) filter (where {SETTLED}), count(*)"
            " from raw.eval_runs group by idempotency_key"
        ).fetchall()
    assert sorted(settled for settled, _ in per_key) == [1] * 10
    assert sum(total for _, total in per_key) == 14  # failed rows stay: every call left a row
    assert second.scored == 10


def test_unicode_injection_and_a_megabyte_are_stored_verbatim(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    texts = {
        "uni": "Ünïcödé — 中文 · עברית ‮RTL‬ · emoji 🚀🧪 · zero\u200bwidth · tab\tline\r\nend",
        "sql": "'); DROP TABLE raw.eval_runs; -- \" ; select pg_sleep(10); $$ \\x00 %s %(x)s",
        "big": ("x = 1  # ünïcode ✓\n" * 60_000)[:1_048_576],
    }
    items = [
        {"id": key, "stage": "s", "submission": text, "expected_verdict": "pass"}
        for key, text in texts.items()
    ]
    suite = load_suite(
        write_suite(
            tmp_path / "suite.yaml", items, default_rubric="Rubric with 'quotes' and ünïcode"
        )
    )
    config = Config.model_validate({"models": {"m": fake_model(fake_openai)}})
    summary = run_suite(config, RunRequest(suite, "m"))
    assert summary.statuses == {"ok": 3}
    from evals import warehouse

    with warehouse.connect() as conn:
        stored = {row["item_id"]: row for row in rows(warehouse_url)}
        for key, text in texts.items():
            row = stored[key]
            assert row["submission"] == text
            assert text in row["messages"][1]["content"]
            assert row["inputs"]["submission"] == text
            again = record_from_row(fetch_run(conn, row["run_id"]))
            assert again.submission == text
            assert again.rubric == "Rubric with 'quotes' and ünïcode"
    assert len(stored["big"]["submission"].encode()) > 1_000_000
    sent = [r["json"]["messages"][1]["content"] for r in fake_openai.requests]
    assert sorted(sent) == sorted(stored[key]["messages"][1]["content"] for key in texts)


def test_kill_9_mid_run_then_the_same_command_makes_exactly_the_missing_calls(
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
    env = {
        **os.environ,
        "EVALHOUSE_CONFIG": str(config_path),
        "FAKE_PROVIDER_API_KEY": SECRET,
        "EVALHOUSE_DATABASE_URL": warehouse_url,
    }
    command = [
        sys.executable,
        "-m",
        "evals.cli",
        "run",
        "--suite",
        str(suite_path),
        "--model",
        "m",
        "--no-progress",
    ]

    def settled() -> int:
        with psycopg.connect(warehouse_url) as conn:
            return conn.execute(f"select count(*) from raw.eval_runs where {SETTLED}").fetchone()[0]

    victim = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_9_when(victim, lambda: settled() >= 40, "40 calls settled", timeout_s=120)
    time.sleep(SENT_REQUESTS_LAND_S)
    after_kill = settled()
    assert after_kill < n, "killed before the last call settled"  # (the loop saw >= 40 settle)
    with psycopg.connect(warehouse_url) as conn:
        (killed,) = conn.execute("select * from raw.eval_batches").fetchall()
        columns = [
            c.name for c in conn.execute("select * from raw.eval_batches limit 0").description
        ]
    killed = dict(zip(columns, killed, strict=True))
    assert (killed["status"], killed["ended_at"], killed["started_by"]) == ("running", None, "cli")
    # no heartbeat for longer than the threshold: readers call it stale
    later = killed["heartbeat_at"] + timedelta(seconds=STALE_AFTER_S + 1)
    assert effective_status(killed["status"], killed["heartbeat_at"], later) == "stale"

    fake_openai.reset_counts()
    done = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert fake_openai.request_count == n - after_kill
    summary = json.loads(done.stdout)
    assert summary["calls"] == n - after_kill and summary["skipped_calls"] == after_kill
    assert summary["unsettled_calls"] == 0 and summary["scored"] == n
    assert set(summary["by_stage"]) == {"loops", "functions"}
    with psycopg.connect(warehouse_url) as conn:
        per_item = conn.execute(
            f"select item_id, count(*) filter (where {SETTLED}) from raw.eval_runs group by item_id"
        ).fetchall()
    assert len(per_item) == n
    assert {count for _, count in per_item} == {1}
    assert SECRET not in done.stdout + done.stderr
    with psycopg.connect(warehouse_url) as conn:
        record = fetch_batch(conn, killed["batch_id"])
        stored = conn.execute("select count(*) from raw.eval_runs").fetchone()[0]
    assert (record["status"], record["invocations"]) == ("completed", 2)
    assert (record["calls"], record["settled"], record["parse_errors"]) == (stored, n, 0)
    assert record["models_answered"] == ["fake-grader-2024-01-01"]


SIM_CONFIG = {
    "models": {"cand": {"model": "evalhouse-sim/cand"}, "judge": {"model": "evalhouse-sim/judge"}},
    "judges": ["judge"],
    "simulator": {
        "seed": 5,
        "error_rate": 0,
        "rate_limit_rate": 0,
        "malformed_rate": 0,
        "models": {"cand": {"accuracy": 0.7}, "judge": {"accuracy": 1.0}},
    },
}


def answer_suite(tmp_path: Path) -> Path:
    items = [
        {
            "id": f"j{i}",
            "stage": "basic",
            "category": "facts",
            "question": f"Capital #{i}?",
            "expected_answer": f"City{i}",
        }
        for i in range(6)
    ] + [
        {
            "id": "n1",
            "stage": "math",
            "question": "2+2?",
            "expected_answer": "4",
            "scorer": {"type": "numeric", "tolerance": 0},
        },
        {
            "id": "e1",
            "stage": "math",
            "question": "Spell two",
            "expected_answer": "two",
            "scorer": {"type": "exact"},
        },
    ]
    return write_suite(
        tmp_path / "qa.yaml",
        items,
        name="t-qa",
        kind="answer",
        verdicts=["correct", "partial", "incorrect"],
        passing_verdicts=["correct"],
        issue_tags=["factual_error"],
        default_rubric="Same meaning as the reference.",
    )


def test_answer_suites_judge_with_a_parent_link_or_score_deterministically(
    warehouse_url: str, tmp_path: Path
) -> None:
    config = Config.model_validate(SIM_CONFIG)
    suite = load_suite(answer_suite(tmp_path))
    summary = run_suite(config, RunRequest(suite, "cand", trials=2))
    assert summary.judge == "judge"
    assert summary.planned_calls == 2 * (8 + 6) and summary.calls == 28
    all_rows = rows(warehouse_url)
    candidates = {r["run_id"]: r for r in all_rows if r["role"] == "candidate"}
    judges = [r for r in all_rows if r["role"] == "judge"]
    assert len(candidates) == 16 and len(judges) == 12
    for judge in judges:
        parent = candidates[judge["parent_run_id"]]
        assert parent["item_id"] == judge["item_id"] and parent["trial"] == judge["trial"]
        assert judge["submission"] == parent["output_text"]
        # a perfect simulated judge agrees with the reference comparison
        right = parent["output_text"] == f"City{judge['item_id'][1:]}"
        assert judge["model"] == "judge"
        assert (judge["verdict"], judge["passed"]) == (
            ("correct", True) if right else ("incorrect", False)
        )
    expected = {"n1": "4", "e1": "two"}
    for scored in (r for r in candidates.values() if r["item_id"] in expected):
        right = scored["output_text"] == expected[scored["item_id"]]
        assert (scored["verdict"], scored["passed"]) == (
            ("correct", True) if right else ("incorrect", False)
        )
    assert all(r["verdict"] is None for r in candidates.values() if r["item_id"][0] == "j")
    assert summary.scored == 16 and 0 < summary.accuracy < 1

    # A crash between a candidate and its judge: the re-run only judges, against the stored
    # candidate row.
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("delete from raw.eval_runs where role = 'judge' and item_id in ('j0', 'j1')")
    again = run_suite(config, RunRequest(suite, "cand", trials=2))
    assert again.calls == 4 and again.skipped_calls == 24
    rejudged = [r for r in rows(warehouse_url, "role = 'judge' and item_id in ('j0', 'j1')")]
    assert len(rejudged) == 4
    assert all(r["parent_run_id"] in candidates for r in rejudged)
    assert run_suite(config, RunRequest(suite, "cand", trials=2)).calls == 0


def test_the_shipped_config_runs_offline_through_the_simulator(warehouse_url: str) -> None:
    from conftest import REPO_ROOT

    config = load_config(REPO_ROOT / "evalhouse.yaml")
    summary = run_suite(config, RunRequest("intro-python", "tutor-small", limit=20))
    stored = rows(warehouse_url)
    assert summary.calls == len(stored) == 20
    assert summary.scored == sum(r["passed"] is not None for r in stored)
    assert summary.input_tokens == sum(r["input_tokens"] or 0 for r in stored)
    prices = config.simulator.input_cost_per_token, config.simulator.output_cost_per_token
    assert summary.cost_usd == pytest.approx(
        summary.input_tokens * prices[0] + summary.output_tokens * prices[1]
    )


def test_bad_requests_fail_before_any_call(warehouse_url: str, tmp_path: Path) -> None:
    config = Config.model_validate({"models": {"cand": {"model": "evalhouse-sim/cand"}}})
    with pytest.raises(RunnerError, match="needs a judge"):
        run_suite(config, RunRequest(load_suite(answer_suite(tmp_path)), "cand"))
    with pytest.raises(RunnerError, match="unknown suite"):
        run_suite(config, RunRequest("no-such-suite", "cand"))
    assert rows(warehouse_url) == []


def test_a_model_without_its_key_fails_before_any_call(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_LLM_CREDENTIAL", raising=False)
    config = Config.model_validate(
        {"models": {"m": {"model": "openai/gpt-4o-mini", "api_key_env": "MY_LLM_CREDENTIAL"}}}
    )
    suite = load_suite(answer_suite(tmp_path))
    with pytest.raises(
        MissingCredentialError, match=r"models\.m\.api_key_env: .*MY_LLM_CREDENTIAL"
    ):
        run_suite(config, RunRequest(suite, "m", judge="m"))
    assert rows(warehouse_url) == []


def test_run_log_writes_are_idempotent_in_any_transaction_state(warehouse_url: str) -> None:
    from datetime import UTC, datetime

    from evals.runlog import RunRecord, idempotency_key, write_runs

    def record(i: int, status: str = "ok") -> RunRecord:
        return RunRecord(
            idempotency_key=idempotency_key("w", i),
            source="golden",
            role="grader",
            model="m",
            started_at=datetime.now(UTC),
            status=status,
            issue_tags=["a", "b"],
            feedback={"k": ["ü"]},
            inputs={"n": i},
        )

    batch = [record(i) for i in range(5)]
    with psycopg.connect(warehouse_url) as conn:
        assert write_runs(conn, batch) == 5
        assert write_runs(conn, batch) == 0  # same run ids
        assert write_runs(conn, [record(0)]) == 0  # a second settled row for a key: skipped
        assert write_runs(conn, [record(0, "error")]) == 1  # failed attempts keep their rows
        with conn.transaction():  # inside the caller's transaction, twice
            assert write_runs(conn, [record(10)]) == 1
            assert write_runs(conn, [record(11)]) == 1
        try:
            with conn.transaction():  # the caller rolls back the stage table's creation...
                conn.execute("drop table if exists _eval_runs_incoming")
                raise RuntimeError
        except RuntimeError:
            pass
        conn.execute("drop table _eval_runs_incoming")
        conn.commit()
        assert write_runs(conn, [record(12)]) == 1  # ...and the next write recreates it
        stored = conn.execute(
            "select count(*), count(distinct run_id) from raw.eval_runs"
        ).fetchone()
        tags = conn.execute("select issue_tags, feedback from raw.eval_runs limit 1").fetchone()
    assert stored == (9, 9)
    assert tags == (["a", "b"], {"k": ["ü"]})


def test_a_bug_on_one_item_is_an_error_row_and_the_batch_goes_on(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals.runner import calls

    real = calls.render_grader

    def flaky(suite, item, prompt=None):
        if item.item_id == "i0001":
            raise ValueError("template exploded with key=abcdef123456")
        return real(suite, item, prompt)

    monkeypatch.setattr(calls, "render_grader", flaky)
    config = Config.model_validate(
        {
            "models": {"m": {"model": "evalhouse-sim/m"}},
            "simulator": {"error_rate": 0, "rate_limit_rate": 0},
        }
    )
    suite = load_suite(write_suite(tmp_path / "suite.yaml", grader_items(5)))
    summary = run_suite(config, RunRequest(suite, "m"))
    assert summary.calls == 5 and summary.unsettled_calls == 1
    failed = rows(warehouse_url, "item_id = 'i0001'")
    assert [(r["status"], r["attempts"], r["error_class"]) for r in failed] == [
        ("error", 0, "ValueError")
    ]
    assert "abcdef123456" not in failed[0]["error_message"]
    monkeypatch.setattr(calls, "render_grader", real)
    assert run_suite(config, RunRequest(suite, "m")).calls == 1


def test_concurrency_override_bounds_calls_in_flight(
    warehouse_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.latency_s = 0.1
    config = Config.model_validate({"models": {"m": fake_model(fake_openai, concurrency=32)}})
    suite = load_suite(write_suite(tmp_path / "suite.yaml", grader_items(12)))
    summary = run_suite(config, RunRequest(suite, "m", concurrency=2))
    assert summary.statuses == {"ok": 12}
    assert fake_openai.max_in_flight == 2
