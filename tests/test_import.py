"""`evalhouse import`: the two worked examples of docs/import-mapping.md, bad lines, idempotency."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import REPO_ROOT
from psycopg.rows import dict_row
from typer.testing import CliRunner

from evals.cli import app
from evals.config import load_config
from evals.importers import MappingError, import_file, load_mapping

EXAMPLES = REPO_ROOT / "docs" / "examples"


@pytest.fixture
def config(tmp_path: Path):
    path = tmp_path / "evalhouse.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "suites": {
                    "general-qa": {"path": str(REPO_ROOT / "golden_sets" / "general_qa.yaml")},
                }
            }
        )
    )
    return load_config(path)


@pytest.fixture
def conn(warehouse_url: str):
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


def _runs(conn) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from raw.eval_runs order by started_at, trial, attributes::text"
        ).fetchall()


def test_the_promptfoo_example_imports_faithfully_and_only_once(conn, config):
    mapping = load_mapping(EXAMPLES / "promptfoo_mapping.yaml")
    report = import_file(conn, EXAMPLES / "promptfoo_results.jsonl", mapping, config)
    assert (report.read, report.imported, report.issues, report.parse_errors) == (8, 8, [], 0)

    rows = {(row["model"], row["item_id"]): row for row in _runs(conn)}
    good = rows[("openai:gpt-4o-mini", "reason-bat-ball")]
    assert (good["source"], good["role"], good["suite"], good["stage"]) == (
        "import",
        "candidate",
        "general-qa",
        "basic",
    )
    assert (good["verdict"], good["passed"], good["score"], good["status"]) == (
        "correct",
        True,
        1.0,
        "ok",
    )
    assert (
        good["messages"][0]["role"] == "user" and "bat and a ball" in good["messages"][0]["content"]
    )
    assert good["output_text"] == "The ball costs $0.05." and good["feedback"] == {
        "text": "Correct: 0.05 satisfies both constraints."
    }
    assert (good["input_tokens"], good["output_tokens"]) == (41, 6)
    assert (good["cost_usd"], good["latency_ms"]) == (9.75e-06, 737)
    assert good["started_at"].isoformat() == "2026-10-02T14:00:00+00:00"
    assert good["touchpoint"] == "promptfoo" and good["prompt_version"] == "9f2c0b7d51e3a8c4"
    assert good["attributes"]["promptfoo_id"] == "4b0f6c2e-9d1a-4c7e-8f3b-000000000001"
    wrong = rows[("anthropic:messages:claude-3-5-haiku-20241022", "reason-bat-ball")]
    assert (wrong["verdict"], wrong["passed"]) == ("incorrect", False)
    failed = rows[("anthropic:messages:claude-3-5-haiku-20241022", "reason-apples")]
    assert (failed["status"], failed["error_message"], failed["verdict"]) == (
        "error",
        "API error: 529 Overloaded",
        None,
    )

    again = import_file(conn, EXAMPLES / "promptfoo_results.jsonl", mapping, config)
    assert (again.imported, again.already_present) == (0, 8)
    assert len(_runs(conn)) == 8
    # one evaluation-run record per imported model, re-opened (not doubled) by the re-import
    with conn.cursor(row_factory=dict_row) as cur:
        batches = cur.execute("select * from raw.eval_batches order by model").fetchall()
    per_model = Counter(row["model"] for row in _runs(conn))
    assert [(b["model"], b["calls"]) for b in batches] == sorted(per_model.items())
    assert {(b["kind"], b["batch_key"], b["status"], b["invocations"]) for b in batches} == {
        ("import", "import:promptfoo_results.jsonl", "completed", 2)
    }
    gpt = batches[1]
    assert (gpt["model_family"], gpt["model_step"], gpt["model_tags"]) == ("gpt-4o", 1, ["vendor"])
    assert (batches[0]["model_family"], batches[0]["errors"]) == (None, 1)
    assert {row["attributes"]["eval_batch_id"] for row in _runs(conn)} == {
        str(b["batch_id"]) for b in batches
    }


def test_the_csv_example_keeps_trials_positions_raw_verdicts_and_two_reviewers(conn):
    mapping = load_mapping(EXAMPLES / "pairwise_mapping.yaml")
    report = import_file(conn, EXAMPLES / "pairwise_judgments.csv", mapping)
    assert (report.read, report.imported, report.parse_errors, report.reviews_stored) == (
        7,
        7,
        1,
        6,
    )
    assert report.issues == []

    rows = _runs(conn)
    by_key = {(r["item_id"], r["attributes"]["position"], r["trial"]): r for r in rows}
    assert len(by_key) == 7  # position swaps and trials of one item are distinct rows
    assert by_key[("reason-bat-ball", "ab", 0)]["verdict"] == "a"
    assert by_key[("reason-bat-ball", "ba", 0)]["verdict"] == "a"  # "1" and 1 alike
    retrial = by_key[("reason-bat-ball", "ab", 1)]  # the second trial of the same order
    assert (retrial["verdict"], retrial["started_at"].isoformat()) == (
        "a",
        "2026-10-03T09:40:11+00:00",
    )
    assert by_key[("reason-ordering", "ab", 0)]["verdict"] == "tie"  # Tie
    assert by_key[("reason-train-time", "ab", 0)]["verdict"] == "tie"  # TIE
    garbled = by_key[("reason-train-time", "ba", 0)]
    assert (garbled["status"], garbled["verdict"]) == ("parse_error", None)
    assert garbled["attributes"]["raw_verdict"] == "both are fine I guess"
    assert garbled["output_text"] == "both are fine I guess"
    first = by_key[("reason-bat-ball", "ab", 0)]
    assert (first["role"], first["model"], first["latency_ms"], first["passed"]) == (
        "judge",
        "judge-v2",
        1840.0,
        True,
    )
    assert first["started_at"].isoformat() == "2026-10-03T09:12:04+00:00"
    assert (first["attributes"]["contestant_a"], first["attributes"]["contestant_b"]) == (
        "tutor-large",
        "tutor-small",
    )

    with conn.cursor(row_factory=dict_row) as cur:
        reviews = cur.execute(
            "select r.reviewer, r.verdict, e.item_id from raw.human_reviews r"
            " join raw.eval_runs e using (run_id) order by 3, 1"
        ).fetchall()
    assert [(r["item_id"], r["reviewer"], r["verdict"]) for r in reviews] == [
        ("reason-bat-ball", "ana", "a"),
        ("reason-bat-ball", "ben", "a"),
        ("reason-ordering", "ana", "tie"),
        ("reason-ordering", "ben", "b"),
        ("reason-train-time", "ana", "tie"),
        ("reason-train-time", "ben", "tie"),
    ]
    again = import_file(conn, EXAMPLES / "pairwise_judgments.csv", mapping)
    assert (again.imported, again.already_present, again.reviews_stored) == (0, 7, 0)


def test_unmappable_lines_are_reported_by_line_and_the_rest_import(conn, tmp_path: Path):
    source = tmp_path / "judgments.csv"
    shutil.copy(EXAMPLES / "pairwise_judgments.csv", source)
    with source.open("a") as handle:
        handle.write(
            "reason-apples,Q,a,b,ab,0,judge-v2,1,2026-10-03 10:00:00,n/a,1,1,0.1,,\n"
        )  # line 9
        handle.write(
            "reason-apples,Q,a,b,ab,1,,1,2026-10-03 10:00:00,1.0,1,1,0.1,,\n"
        )  # line 10: no model
        handle.write("reason-apples,Q,a,b,ab,2,judge-v2,1,yesterday-ish,1.0,1,1,0.1,,\n")  # line 11
        handle.write(
            "reason-apples,Q,a,b,ab,3,judge-v2,1,2026-10-03 10:00:00,1.0,-5,1,0.1,,\n"
        )  # line 12
        handle.write(
            "reason-apples,Q,a,b,ab,4,judge-v2,2,2026-10-03 10:00:00,1.0,1,1,0.1,maybe,\n"
        )  # 13
        handle.write(
            'reason-apples,"multi\nline question",a,b,ab,5,judge-v2,2,2026-10-03 10:00:00,1.0,1,1,0.1,,\n'
        )
        handle.write(
            "reason-apples,Q,a,b,ab,6,judge-v2,2,2026-10-03 10:00:00,1.0,1,1,0.1,,\n"
        )  # line 16
    mapping = load_mapping(EXAMPLES / "pairwise_mapping.yaml")
    report = import_file(conn, source, mapping)
    issues = {issue.line: issue.message for issue in report.issues}
    assert sorted(issues) == [9, 10, 11, 12, 13]
    assert "latency_s: 'n/a' is not a number" in issues[9]
    assert "model: no value" in issues[10]
    assert "started_at" in issues[11]
    assert "input_tokens" in issues[12] and "negative" in issues[12]
    assert "review by ana: 'maybe' matches no declared value" in issues[13]
    assert report.imported == 9  # the 7 originals, the multi-line row and line 16

    runner = CliRunner()
    result = runner.invoke(
        app,
        ["import", str(source), "--mapping", str(EXAMPLES / "pairwise_mapping.yaml")],
        terminal_width=200,
    )
    assert result.exit_code == 1
    assert "0 rows imported, 9 already present" in result.output
    assert "judgments.csv:9: latency_s: 'n/a' is not a number" in result.output


def test_a_broken_mapping_names_the_key(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields:\n  verdikt: answer\nsuite: x\n")
    with pytest.raises(MappingError, match=r"fields\.verdikt: not a run-log column"):
        load_mapping(bad)
    bad.write_text("colums: {}\n")
    with pytest.raises(MappingError, match="colums: unknown key"):
        load_mapping(bad)
    bad.write_text("reviews:\n  - verdict: label\n")
    with pytest.raises(MappingError, match="exactly one of reviewer or reviewer_field"):
        load_mapping(bad)


def test_a_json_document_with_a_records_path_imports_too(conn, tmp_path: Path, config):
    import json

    lines = (EXAMPLES / "promptfoo_results.jsonl").read_text().splitlines()
    document = {
        "evalId": "eval-1",
        "results": {"version": 3, "results": [json.loads(x) for x in lines]},
    }
    source = tmp_path / "results.json"
    source.write_text(json.dumps(document))
    mapping_data = yaml.safe_load((EXAMPLES / "promptfoo_mapping.yaml").read_text())
    mapping_data.update(format="json", records="results.results")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(mapping_data))
    report = import_file(conn, source, load_mapping(mapping), config)
    assert (report.read, report.imported, report.issues) == (8, 8, [])
