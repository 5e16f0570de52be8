"""Human reviews: a stratified queue out, labels in, validated against the suite's vocabulary."""

from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import REPO_ROOT
from typer.testing import CliRunner

from evals.cli import app
from evals.golden import load_suite, store_suite
from evals.reviews import Review, export_queue, import_reviews, queue_unreviewed, write_reviews
from evals.runlog import RunRecord, write_runs

STAGE_SIZES = {"loops": 30, "functions": 6, "variables": 12}


@pytest.fixture
def conn(warehouse_url: str):
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        store_suite(connection, load_suite(REPO_ROOT / "golden_sets" / "intro_python_grader.yaml"))
        yield connection


@pytest.fixture
def runs(conn) -> dict[str, list[uuid.UUID]]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    records, by_stage = [], {}
    for stage, size in STAGE_SIZES.items():
        for i in range(size):
            record = RunRecord(
                idempotency_key=f"{stage}-{i}",
                source="production",
                role="grader",
                model="tutor-small",
                started_at=start + timedelta(minutes=i),
                status="ok",
                stage=stage,
                suite="intro-python",
                item_id=f"{stage}-{i % 4}",
                submission=f"print({i})",
                output_text='{"verdict": "pass"}',
                verdict="pass",
            )
            records.append(record)
            by_stage.setdefault(stage, []).append(record.run_id)
    write_runs(conn, records)
    return by_stage


def _queued(conn) -> dict[str, int]:
    return dict(
        conn.execute("select stratum, count(*) from raw.review_queue group by 1").fetchall()
    )


def test_the_queue_is_stratified_by_stage_skips_reviewed_runs_and_exports_once(
    conn, runs, tmp_path: Path
):
    reviewed = runs["functions"][:3]
    write_reviews(conn, [Review(run_id, "ana", "pass") for run_id in reviewed])

    assert queue_unreviewed(conn, 5) == 13
    assert _queued(conn) == {"loops": 5, "functions": 3, "variables": 5}
    queued = {row[0] for row in conn.execute("select run_id from raw.review_queue").fetchall()}
    assert not queued & set(reviewed)

    out = tmp_path / "queue.csv"
    assert export_queue(conn, out) == 13
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["stage"] for row in rows} == set(STAGE_SIZES)
    assert all(row["verdict"] == "" and row["submission"].startswith("print(") for row in rows)
    assert export_queue(conn, tmp_path / "again.jsonl") == 0  # exported entries are not re-exported

    # A second round queues other runs; a stage filter restricts it.
    assert queue_unreviewed(conn, 5, stages=["loops"]) == 5
    assert _queued(conn)["loops"] == 10


def test_labels_are_validated_by_line_and_several_reviewers_are_kept(conn, runs, tmp_path: Path):
    queue_unreviewed(conn, 2, stages=["loops"])
    out = tmp_path / "queue.csv"
    export_queue(conn, out)
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    first, second = rows[0]["run_id"], rows[1]["run_id"]
    labelled = tmp_path / "labels.csv"
    with labelled.open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["run_id", "reviewer", "verdict", "score", "issue_tags", "notes"]
        )
        writer.writeheader()
        writer.writerows(
            [
                {
                    "run_id": first,
                    "reviewer": "ana",
                    "verdict": "pass",
                    "score": "0.9",
                    "issue_tags": "",
                    "notes": "ok",
                },
                {
                    "run_id": first,
                    "reviewer": "ben",
                    "verdict": "Revise",
                    "score": "",
                    "issue_tags": "off_by_one|style",
                    "notes": "",
                },
                {
                    "run_id": second,
                    "reviewer": "ana",
                    "verdict": "maybe",
                    "score": "",
                    "issue_tags": "",
                    "notes": "",
                },
                {
                    "run_id": str(uuid.uuid4()),
                    "reviewer": "ana",
                    "verdict": "pass",
                    "score": "",
                    "issue_tags": "",
                    "notes": "",
                },
                {
                    "run_id": second,
                    "reviewer": "ben",
                    "verdict": "fail",
                    "score": "",
                    "issue_tags": "typo_tag",
                    "notes": "",
                },
                {
                    "run_id": second,
                    "reviewer": "cy",
                    "verdict": "",
                    "score": "",
                    "issue_tags": "",
                    "notes": "",
                },
                {
                    "run_id": "nope",
                    "reviewer": "ana",
                    "verdict": "pass",
                    "score": "",
                    "issue_tags": "",
                    "notes": "",
                },
                {
                    "run_id": second,
                    "reviewer": "dee",
                    "verdict": "fail",
                    "score": "7",
                    "issue_tags": "",
                    "notes": "",
                },
            ]
        )
    result = import_reviews(conn, None, labelled)
    issues = {issue.line: issue.message for issue in result.issues}
    assert sorted(issues) == [4, 5, 6, 8, 9]
    assert "verdict 'maybe' is not one of pass, revise, fail" in issues[4]
    assert "unknown run id" in issues[5]
    assert "typo_tag" in issues[6]
    assert "not a UUID" in issues[8]
    assert "outside [0, 1]" in issues[9]
    assert (result.stored, result.unlabelled) == (2, 1)

    stored = conn.execute(
        "select reviewer, verdict, score, issue_tags from raw.human_reviews"
        " where run_id = %s order by reviewer",
        (first,),
    ).fetchall()
    assert stored == [("ana", "pass", 0.9, []), ("ben", "revise", None, ["off_by_one", "style"])]
    assert import_reviews(conn, None, labelled).stored == 0  # the same file again changes nothing

    runner = CliRunner()
    cli = runner.invoke(app, ["reviews", "import", str(labelled)], terminal_width=200)
    assert cli.exit_code == 1
    assert "labels.csv:4: verdict 'maybe' is not one of pass, revise, fail" in cli.output


def test_the_cli_queue_writes_a_file_reviewers_can_fill_in(conn, runs, tmp_path: Path):
    out = tmp_path / "queue.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["reviews", "queue", "--n", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "queued 6 new runs; exported 6" in result.output
    assert len(out.read_text().splitlines()) == 6
    assert runner.invoke(app, ["reviews", "queue", "--out", str(tmp_path / "q.txt")]).exit_code == 2


def test_a_label_with_text_postgres_cannot_store_is_reported_by_line(conn, runs, tmp_path: Path):
    run = runs["loops"][0]
    labels = tmp_path / "labels.jsonl"
    lines = [
        {"run_id": str(run), "reviewer": "ana", "verdict": "pass", "notes": "nul \u0000"},
        {"run_id": str(run), "reviewer": "ben", "verdict": "pass", "reviewed_at": 1e20},
        {"run_id": str(run), "reviewer": "chen", "verdict": "pass", "notes": "مرحبا 😀"},
    ]
    labels.write_bytes(
        "".join(json.dumps(line) + "\n" for line in lines).encode()
        + json.dumps({"run_id": str(run), "reviewer": "dee", "verdict": "pass"}).encode()[:-1]
        + b', "notes": "\xff"}\n'
    )
    result = import_reviews(conn, None, labels)
    assert {issue.line: issue.message[:30] for issue in result.issues} == {
        1: "reviewer or notes hold text Po",
        2: "bad score or reviewed_at: epoc",
        4: "reviewer or notes hold text Po",
    }
    stored = conn.execute("select reviewer, notes from raw.human_reviews").fetchall()
    assert stored == [("chen", "مرحبا 😀")]
