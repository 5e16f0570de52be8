"""Pairwise runs end to end: real Postgres, real LiteLLM, the simulated pairwise judges.

Both orders are stored in the item's own labelling, a kill -9 never makes a judgment twice,
generated responses are made once and reused, and bad pairwise items are named by file:line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from _kill import kill_9_when
from psycopg.rows import dict_row

from evals.config import Config
from evals.golden import GoldenSetError, load_suite
from evals.pairwise import PairwiseRequest, run_pairwise
from evals.runner import RunnerError

SETTLED = "status in ('ok', 'parse_error')"


def sim_config(**simulator) -> dict:
    return {
        "models": {
            "small": {"model": "evalhouse-sim/small", "concurrency": 4},
            "large": {"model": "evalhouse-sim/large", "concurrency": 4},
            "longer": {"model": "evalhouse-sim/longer", "concurrency": 4},
            "pj": {"model": "evalhouse-sim/pj", "concurrency": 4},
        },
        "judges": ["longer", "pj"],
        "simulator": {
            "seed": 3,
            "error_rate": 0,
            "rate_limit_rate": 0,
            "malformed_rate": 0,
            "models": {
                "longer": {"prefer": "longer"},
                "pj": {"accuracy": 1.0},
                "small": {"accuracy": 0.5},
                "large": {"accuracy": 0.9},
            },
            **simulator,
        },
    }


def write_pairwise(path: Path, items: list[dict], **header) -> Path:
    suite = {"name": "t-pairwise", "kind": "pairwise", **header, "items": items}
    path.write_text(yaml.safe_dump(suite, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def stored_items(n: int) -> list[dict]:
    """Items with two stored responses; B is the longer one except on every third item."""
    return [
        {
            "id": f"s{i:03d}",
            "stage": "basic",
            "question": f"Question {i}?",
            "response_a": "short" if i % 3 else f"a much longer answer to {i}",
            "response_b": f"a longer answer to {i}" if i % 3 else "brief",
            "source_a": "writer-1",
            "source_b": "writer-2",
        }
        for i in range(n)
    ]


def question_items(n: int) -> list[dict]:
    return [
        {"id": f"q{i:03d}", "question": f"What is {i} + 1?", "reference": str(i + 1)}
        for i in range(n)
    ]


def rows(url: str, where: str = "true") -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            f"select * from raw.eval_runs where {where} order by item_id, trial, started_at"
        ).fetchall()


def test_a_then_b_first_to_the_longer_answer_judge_stores_the_same_verdict_twice(
    warehouse_url: str, tmp_path: Path
) -> None:
    suite = load_suite(write_pairwise(tmp_path / "p.yaml", stored_items(6)))
    summary = run_pairwise(Config.model_validate(sim_config()), PairwiseRequest(suite, "longer"))
    assert (summary.judgments_settled, summary.calls.unsettled_calls) == (12, 0)
    judged = rows(warehouse_url, "role = 'judge'")
    assert len(judged) == 12
    for item_id in ("s000", "s001"):
        ab, ba = sorted(
            (r for r in judged if r["item_id"] == item_id),
            key=lambda r: r["attributes"]["position"],
        )
        longer = "a" if item_id == "s000" else "b"
        assert (ab["attributes"]["position"], ba["attributes"]["position"]) == ("ab", "ba")
        assert (ab["verdict"], ba["verdict"]) == (longer, longer)
        slots = ("first", "second") if longer == "a" else ("second", "first")
        assert (ab["attributes"]["slot_verdict"], ba["attributes"]["slot_verdict"]) == slots
        assert json.loads(ab["output_text"])["verdict"] == slots[0]  # the raw reply, by slot
        # the judge saw B in the first slot in the second order
        assert (
            "<<<FIRST\n" + ("brief" if item_id == "s000" else "a longer answer to 1")
            in (ba["messages"][1]["content"])
        )
    assert summary.consistency == 1.0 and summary.pairs_both_orders == 6
    assert (summary.wins["writer-2"], summary.wins["writer-1"]) == (8, 4)
    assert {r["attributes"]["contestant_a"] for r in judged} == {"writer-1"}
    assert {r["attributes"]["response_a_run_id"] for r in judged} == {None}


def test_a_judge_that_follows_the_first_slot_is_inconsistent_on_every_pair(
    warehouse_url: str, tmp_path: Path
) -> None:
    config = sim_config()
    config["simulator"]["models"]["pj"] = {"accuracy": 1.0, "position_bias": 1.0}
    suite = load_suite(write_pairwise(tmp_path / "p.yaml", stored_items(4)))
    summary = run_pairwise(Config.model_validate(config), PairwiseRequest(suite, "pj"))
    verdicts = {
        (r["item_id"], r["attributes"]["position"]): r["verdict"]
        for r in rows(warehouse_url, "role = 'judge'")
    }
    assert set(verdicts.values()) == {"a", "b"}
    assert all(verdicts[(f"s{i:03d}", "ab")] == "a" for i in range(4))
    assert all(verdicts[(f"s{i:03d}", "ba")] == "b" for i in range(4))
    assert (summary.consistency, summary.first_slot_pairs) == (0.0, 4)


def test_an_unreadable_reply_is_a_parse_error_row_kept_verbatim_and_never_counted(
    warehouse_url: str, tmp_path: Path
) -> None:
    suite = load_suite(write_pairwise(tmp_path / "p.yaml", stored_items(2)))
    config = Config.model_validate(sim_config(malformed_rate=1.0))  # every reply cut in half
    summary = run_pairwise(config, PairwiseRequest(suite, "pj"))
    judged = rows(warehouse_url, "role = 'judge'")
    assert {(r["status"], r["verdict"], r["attributes"]["slot_verdict"]) for r in judged} == {
        ("parse_error", None, None)
    }
    assert all(r["output_text"].startswith('{"verdict": ') for r in judged)
    assert {r["error_class"] for r in judged} == {"ParseError"}
    assert (summary.judgments_settled, summary.parse_errors, summary.calls.unsettled_calls) == (
        4,
        4,
        0,
    )
    assert (sum(summary.wins.values()), summary.pairs_both_orders) == (0, 0)


def test_generated_responses_are_made_once_and_reused_by_a_rerun_and_new_trials(
    warehouse_url: str, tmp_path: Path
) -> None:
    # an answer suite's questions through both sides (`evalhouse run --pairwise`)
    answer = {
        "name": "t-answer",
        "kind": "answer",
        "verdicts": ["correct", "incorrect"],
        "passing_verdicts": ["correct"],
        "default_rubric": "Right answer.",
        "items": [
            {"id": f"q{i}", "question": f"{i} + 1?", "expected_answer": str(i + 1)}
            for i in range(5)
        ],
    }
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(answer), encoding="utf-8")
    suite = load_suite(tmp_path / "a.yaml")
    config = Config.model_validate(sim_config())
    request = PairwiseRequest(suite, "pj", baseline="small", candidate="large")
    first = run_pairwise(config, request)
    assert (first.calls.calls, first.calls.planned_calls) == (10 + 10, 20)
    candidates = rows(warehouse_url, "role = 'candidate'")
    assert len(candidates) == 10
    assert {(r["model"], r["attributes"]["contestant"]) for r in candidates} == {
        ("small", "small"),
        ("large", "large"),
    }
    by_side = {(r["item_id"], r["model"]): r["run_id"] for r in candidates}
    for judged in rows(warehouse_url, "role = 'judge'"):
        attributes = judged["attributes"]
        assert (attributes["contestant_a"], attributes["contestant_b"]) == ("small", "large")
        assert attributes["response_a_run_id"] == str(by_side[(judged["item_id"], "small")])
        assert attributes["response_b_run_id"] == str(by_side[(judged["item_id"], "large")])
        assert judged["expected_verdict"] is None  # an answer suite has no reference preference

    again = run_pairwise(config, request)
    assert (again.calls.calls, again.calls.skipped_calls) == (0, 20)
    more = run_pairwise(config, PairwiseRequest(suite, "pj", "small", "large", trials=2))
    assert (more.calls.calls, more.calls.skipped_calls) == (10, 20)  # trial 1's judgments only
    assert len(rows(warehouse_url, "role = 'candidate'")) == 10
    assert len(rows(warehouse_url, "role = 'judge' and trial = 1")) == 10
    assert more.judgments_settled == 20


def test_questions_without_responses_need_two_sides(warehouse_url: str, tmp_path: Path) -> None:
    suite = load_suite(write_pairwise(tmp_path / "p.yaml", question_items(2)))
    config = Config.model_validate(sim_config())
    with pytest.raises(RunnerError, match=r"2 items .* have no stored responses"):
        run_pairwise(config, PairwiseRequest(suite, "pj"))
    with pytest.raises(RunnerError, match="the same contestant"):
        run_pairwise(config, PairwiseRequest(suite, "pj", baseline="small", candidate="small"))
    assert rows(warehouse_url) == []


def test_kill_9_mid_run_then_rerun_judges_every_pair_once_per_order_and_trial(
    warehouse_url: str, tmp_path: Path
) -> None:
    stored, asked = 40, 40
    suite_path = write_pairwise(tmp_path / "p.yaml", stored_items(stored) + question_items(asked))
    config = sim_config(time_scale=1.0, latency_ms_median=40, latency_sigma=0)
    config_path = tmp_path / "evalhouse.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "EVALHOUSE_CONFIG": str(config_path),
        "EVALHOUSE_DATABASE_URL": warehouse_url,
    }
    command = [
        sys.executable, "-m", "evals.cli", "run", "--suite", str(suite_path), "--judge", "pj",
        "--baseline", "small", "--candidate", "large", "--no-progress",
    ]  # fmt: skip
    judgments = (stored + asked) * 2

    def settled() -> int:
        with psycopg.connect(warehouse_url) as conn:
            return conn.execute(
                f"select count(*) from raw.eval_runs where role = 'judge' and {SETTLED}"
            ).fetchone()[0]

    victim = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_9_when(victim, lambda: settled() >= 30, "30 judgments settled", timeout_s=120)
    after_kill = settled()
    assert after_kill < judgments, "killed before the last judgment settled"

    done = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["unsettled_calls"] == 0 and summary["judgments_settled"] == judgments
    assert summary["calls"] == judgments - after_kill  # the generated responses were all kept
    with psycopg.connect(warehouse_url) as conn:
        per_judgment = conn.execute(
            "select item_id, attributes->>'position', trial, count(*),"
            f" count(*) filter (where {SETTLED})"
            " from raw.eval_runs where role = 'judge' group by 1, 2, 3"
        ).fetchall()
        per_response = conn.execute(
            "select item_id, model, count(*) from raw.eval_runs where role = 'candidate'"
            " group by 1, 2"
        ).fetchall()
        (batch,) = conn.execute("select status, invocations from raw.eval_batches").fetchall()
    assert len(per_judgment) == judgments
    assert {(rows_, settled_) for *_, rows_, settled_ in per_judgment} == {(1, 1)}
    assert len(per_response) == asked * 2 and {n for *_, n in per_response} == {1}
    assert batch == ("completed", 2)


# --- loading ------------------------------------------------------------------------------------


def test_pairwise_items_with_one_response_or_a_bad_verdict_are_named_by_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\n"
        "kind: pairwise\n"
        "verdict_labels: {a: baseline, b: candidate, c: other}\n"
        "items:\n"
        "  - id: one\n"
        "    question: Which?\n"
        "    response_a: only this one\n"
        "  - id: label\n"
        "    question: Which?\n"
        "    response_a: x\n"
        "    response_b: y\n"
        "    expected_verdict: baseline\n"
        "  - id: fine\n"
        "    question: Which?\n",
        encoding="utf-8",
    )
    with pytest.raises(GoldenSetError) as raised:
        load_suite(path)
    lines = str(raised.value).splitlines()
    assert lines == [
        f"{path}:3: verdict_labels.c: not a pairwise verdict (a, b, tie)",
        f"{path}:7: item one: response_b: missing: the item gives response_a; a pairwise item"
        " gives both responses or neither (then --baseline and --candidate answer it)",
        f"{path}:12: item label: expected_verdict: unknown verdict 'baseline' (the suite's"
        " verdicts: a, b, tie)",
    ]


def test_a_jsonl_pairwise_suite_loads_with_its_sources_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"name": "p", "kind": "pairwise", "verdict_labels": {"a": "old"}}) + "\n"
        + json.dumps({"id": "x", "question": "Q?", "response_a": "1", "response_b": "2",
                      "source_b": "new", "expected_verdict": "tie"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    suite = load_suite(path)
    (item,) = suite.items
    assert (suite.kind, suite.verdicts, suite.passing_verdicts) == (
        "pairwise",
        ("a", "b", "tie"),
        (),
    )
    assert (item.responses.source_a, item.responses.source_b) == ("response_a", "new")
    assert (item.expected_verdict, suite.verdict_label("a"), suite.verdict_label("b")) == (
        "tie",
        "old",
        "b",
    )


def test_a_csv_pairwise_suite_reports_a_lone_response_on_its_row(tmp_path: Path) -> None:
    (tmp_path / "p.suite.yaml").write_text("name: p\nkind: pairwise\n", encoding="utf-8")
    (tmp_path / "p.csv").write_text(
        "id,question,response_a,response_b,source_a,source_b\n"
        "x,Q?,first answer,second answer,old,new\n"
        "y,Q?,,only b,,\n",
        encoding="utf-8",
    )
    with pytest.raises(GoldenSetError) as raised:
        load_suite(tmp_path / "p.csv")
    assert str(raised.value) == (
        f"{tmp_path / 'p.csv'}:3: item y: response_a: missing: the item gives response_b; a"
        " pairwise item gives both responses or neither (then --baseline and --candidate"
        " answer it)"
    )
    (tmp_path / "p.csv").write_text(
        "id,question,response_a,response_b,source_a,source_b\nx,Q?,one,two,old,new\n",
        encoding="utf-8",
    )
    (item,) = load_suite(tmp_path / "p.csv").items
    assert (item.responses.response_a, item.responses.source_b) == ("one", "new")
