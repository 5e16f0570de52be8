"""The data lifecycle: a forgotten subject is nowhere, retention cuts what is old, the audit
keeps counts and never content.

The forget test plants one learner everywhere evalhouse keeps data (run log with a re-grade and
a rejudge below its call, a review, the review queue and its exports, an alert's examples and
evidence, the capture spool and its rejected rows, the marts), forgets them, and then dumps the
whole database with pg_dump and reads every file under EVALHOUSE_HOME: not one byte of the
learner's id, texts or run ids may be left, while another learner's rows stay whole.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from evals import warehouse
from evals.alerts import AlertDraft, record_alerts
from evals.capture import spool_dir
from evals.capture.spool import Spool
from evals.cli import app
from evals.config import Config
from evals.dbt import dbt_env, run_dbt
from evals.lifecycle import audit
from evals.lifecycle.forget import forget_subject, rebuild_marts
from evals.lifecycle.retention import apply_retention
from evals.reviews import Review, enqueue, export_queue, write_reviews
from evals.runlog import RunRecord, write_runs
from evals.warehouse.embedded import _bin

SUBJECT = "learner-7f3a9c1e"
OTHER = "learner-0b2d4e6a"
SUBMISSION = "def mean(xs): return sum(xs) / len(xs)  # Zoë Quill, week 3"
ANSWER = "Correct, but an empty list divides by zero (Zoë's edge case)."
OTHER_SUBMISSION = "def mean(values): return statistics.fmean(values)"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


CALL, REGRADE, REJUDGE, OTHER_CALL, SPOOLED, OTHER_SPOOLED, REJECTED, SPOOLED_CHILD = map(
    _id, range(1, 9)
)
ERASED_RUNS = (CALL, REGRADE, REJUDGE, SPOOLED, REJECTED, SPOOLED_CHILD)


def _run(run_id: uuid.UUID, *, started_at: datetime = NOW, **fields) -> RunRecord:
    defaults = {
        "source": "production",
        "role": "grader",
        "model": "simulated/grader",
        "stage": "loops",
        "status": "ok",
        "verdict": "pass",
        "passed": True,
    }
    return RunRecord(
        run_id=run_id, idempotency_key=f"key-{run_id}", started_at=started_at, **defaults | fields
    )


def _subject_runs() -> list[RunRecord]:
    texts = {"submission": SUBMISSION, "output_text": ANSWER}
    return [
        _run(CALL, subject_id=SUBJECT, **texts),
        # A re-grade and a rejudge copy the submission but not the subject id.
        _run(REGRADE, source="production_sample", role="judge", parent_run_id=CALL, **texts),
        _run(REJUDGE, source="rejudge", role="judge", parent_run_id=REGRADE, **texts),
        _run(OTHER_CALL, subject_id=OTHER, submission=OTHER_SUBMISSION, output_text="Fine."),
    ]


def _plant_everything(conn: psycopg.Connection, home: Path) -> None:
    write_runs(conn, _subject_runs())
    with conn.transaction():
        enqueue(conn, [(CALL, "loops", "review_queue"), (OTHER_CALL, "loops", "review_queue")])
    assert export_queue(conn, home / "exports" / "queue.csv") == 2
    write_reviews(
        conn,
        [
            Review(CALL, "ana", "pass", notes="nice work"),
            Review(OTHER_CALL, "ana", "pass", notes="fine"),
        ],
    )
    with conn.transaction():
        record_alerts(
            conn,
            [
                AlertDraft(
                    kind="stage_pass_rate_drift",
                    severity="warning",
                    subject="loops",
                    message="loops pass rate fell",
                    evidence={"examples": [str(CALL), str(OTHER_CALL)], "learner": SUBJECT},
                    example_run_ids=(CALL, OTHER_CALL),
                )
            ],
        )
    spool = Spool(home / "spool")
    spool.append(
        [
            _run(SPOOLED, subject_id=SUBJECT, submission=SUBMISSION),
            _run(OTHER_SPOOLED, subject_id=OTHER, submission=OTHER_SUBMISSION),
            # A re-grade still waiting in the spool whose graded call is in the warehouse.
            _run(SPOOLED_CHILD, source="production_sample", parent_run_id=CALL, output_text=ANSWER),
        ]
    )
    spool.seal()
    spool.reject([_run(REJECTED, subject_id=SUBJECT, output_text=ANSWER)], "DataError: test")
    # A human review of the spooled call, held until the call reaches the warehouse.
    spool.hold_reviews([Review(SPOOLED, "ta-1", "fail", notes=f"{ANSWER}: see Zoë's draft")])


def _needles() -> list[str]:
    return [SUBJECT, SUBMISSION, ANSWER, "Zoë", *(str(run_id) for run_id in ERASED_RUNS)]


def _dump(url: str) -> str:
    """The whole database as SQL text, schema, comments and data."""
    return subprocess.run(
        [str(_bin("pg_dump")), "--dbname", warehouse.libpq_url(url)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _unescaped(text: str) -> str:
    """`text` with JSON's \\uXXXX escapes resolved: spool lines are ASCII-escaped JSON, where
    "Zoë" is stored as "Zo\\u00eb" and a plain grep would miss it."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def _home_text(home: Path) -> str:
    return "".join(
        _unescaped(path.read_text(encoding="utf-8", errors="replace"))
        for path in sorted(home.rglob("*"))
        if path.is_file()
    )


@pytest.fixture
def dbt_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """dbt's artifacts for this test, away from dbt_project/target (forget's rebuild too)."""
    target = tmp_path / "dbt_target"
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    monkeypatch.setenv("DBT_LOG_PATH", str(target))
    return target


def test_forget_leaves_nothing_of_the_subject_in_the_database_the_spool_or_the_exports(
    warehouse_url: str, dbt_target: Path, tmp_path: Path
):
    home = warehouse.evalhouse_home()
    config = Config()
    with warehouse.connect(autocommit=True) as conn:
        _plant_everything(conn, home)
    # The models that keep run ids (call-level, consensus, alerts), built before the erasure.
    kept = ["+int_eval_runs", "+int_human_consensus", "+fct_alerts"]
    assert run_dbt(
        ["run", "--quiet", "--select", *kept], env=dbt_env(warehouse_url, config)
    ).success
    before = _dump(warehouse_url) + _home_text(home)
    assert all(needle in before for needle in _needles()), "the fixture planted every trace"

    with warehouse.connect(autocommit=True) as conn:
        done = forget_subject(conn, config, SUBJECT, requested_by="dpo@school.example")
        assert audit.pending_rebuilds(conn) == [done.erasure_id]
        assert rebuild_marts(conn, config) == 1
        (row,) = audit.erasures(conn)

    assert done.rows == {"eval_runs": 3, "human_reviews": 1, "review_queue": 1, "alerts": 2}
    assert done.files == {
        "spool_rows": 4,  # the spooled call, its child, the rejected row, the held review
        "busy_spool_segments": 0,
        "export_files": 1,
        "export_rows": 1,
    }
    after = _dump(warehouse_url) + _home_text(home)
    assert [needle for needle in _needles() if needle in after] == []
    # The other learner is untouched, in the warehouse, the marts, the spool and the export.
    assert OTHER_SUBMISSION in after and str(OTHER_CALL) in after and str(OTHER_SPOOLED) in after
    with warehouse.connect() as conn:
        marts_runs = conn.execute(
            'select run_id from "intermediate"."int_eval_runs" order by run_id'
        ).fetchall()
        examples = conn.execute("select example_run_ids from raw.alerts").fetchone()[0]
    assert [run_id for (run_id,) in marts_runs] == [OTHER_CALL]
    assert examples == [OTHER_CALL]
    assert (row["action"], row["requested_by"]) == ("forget", "dpo@school.example")
    assert row["rows_erased"] == done.rows and row["files"] == done.files
    assert row["marts_rebuilt_at"] is not None


def test_forgetting_an_unknown_subject_is_audited_and_needs_no_rebuild(warehouse_url: str):
    with warehouse.connect(autocommit=True) as conn:
        write_runs(conn, [_run(OTHER_CALL, subject_id=OTHER)])
        done = forget_subject(conn, Config(), "nobody", requested_by="dpo")
        assert audit.pending_rebuilds(conn) == []
        assert conn.execute("select count(*) from raw.eval_runs").fetchone()[0] == 1
    assert done.rows == {"eval_runs": 0, "human_reviews": 0, "review_queue": 0, "alerts": 0}


def test_forget_skips_a_spool_segment_a_live_writer_holds_and_says_so(warehouse_url: str):
    config = Config()
    spool = Spool(spool_dir(config))
    held = spool.append([_run(SPOOLED, subject_id=SUBJECT, submission=SUBMISSION)])
    with warehouse.connect(autocommit=True) as conn:
        done = forget_subject(conn, config, SUBJECT, requested_by="dpo")
    assert (done.files["busy_spool_segments"], done.complete) == (1, False)
    assert SUBMISSION in _unescaped(held.read_text())
    spool.seal()


def test_an_empty_subject_id_is_refused(warehouse_url: str):
    with warehouse.connect(autocommit=True) as conn, pytest.raises(ValueError, match="empty"):
        forget_subject(conn, Config(), "  ", requested_by="dpo")


def _aged_runs() -> list[RunRecord]:
    """Production calls 200 and 10 days old (the old one re-graded), golden 400 days old."""
    old, recent, ancient = NOW - timedelta(days=200), NOW - timedelta(days=10), NOW - timedelta(400)
    return [
        _run(_id(11), started_at=old, subject_id=SUBJECT),
        _run(_id(12), started_at=recent, subject_id=SUBJECT),
        _run(_id(13), started_at=recent, source="production_sample", parent_run_id=_id(11)),
        _run(_id(14), started_at=ancient, source="golden", batch_id="golden:2025-10-26"),
    ]


RETENTION = Config(retention={"production": 180, "golden": "forever"})


def test_retention_cuts_old_runs_with_their_descendants_and_keeps_golden_forever(
    warehouse_url: str,
):
    with warehouse.connect(autocommit=True) as conn:
        write_runs(conn, _aged_runs())
        write_reviews(conn, [Review(_id(11), "ana", "pass")])
        dry = apply_retention(conn, RETENTION, requested_by="night", dry_run=True, now=NOW)
        assert conn.execute("select count(*) from raw.eval_runs").fetchone()[0] == 4
        assert audit.erasures(conn) == []
        cuts = apply_retention(conn, RETENTION, requested_by="night", now=NOW)
        left = conn.execute("select run_id from raw.eval_runs order by run_id").fetchall()
        (row,) = audit.erasures(conn)
    expected = {"eval_runs": 2, "human_reviews": 1, "review_queue": 0, "alerts": 0}
    assert [(cut.source, cut.days, cut.rows) for cut in dry] == [("production", 180, expected)]
    assert [(cut.source, cut.rows) for cut in cuts] == [("production", expected)]
    assert [run_id for (run_id,) in left] == [_id(12), _id(14)]
    assert (row["action"], row["requested_by"], row["rows_erased"]) == (
        "retention",
        "night",
        expected,
    )
    assert row["scope"] == {
        "source": "production",
        "days": 180,
        "started_before": (NOW - timedelta(days=180)).isoformat(),
    }


def test_retention_apply_dry_run_prints_per_source_counts_and_changes_nothing(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "evalhouse.yaml").write_text("retention:\n  production: 180\n  golden: forever\n")
    with warehouse.connect(autocommit=True) as conn:
        write_runs(conn, _aged_runs())
    result = CliRunner().invoke(app, ["retention", "apply", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "production (kept 180 days" in result.output
    assert "would go: eval_runs 2, human_reviews 0, review_queue 0, alerts 0" in result.output
    with warehouse.connect() as conn:
        assert conn.execute("select count(*) from raw.eval_runs").fetchone()[0] == 4


def test_forget_on_the_command_line_prints_counts_and_can_leave_the_rebuild_pending(
    warehouse_url: str,
):
    with warehouse.connect(autocommit=True) as conn:
        write_runs(conn, _subject_runs())
    runner = CliRunner()
    result = runner.invoke(app, ["forget", "--subject", SUBJECT, "--by", "dpo", "--no-rebuild"])
    assert result.exit_code == 0, result.output
    assert "eval_runs 3, human_reviews 0, review_queue 0, alerts 0" in result.output
    assert "marts not rebuilt" in result.output
    with warehouse.connect() as conn:
        (row,) = audit.erasures(conn)
        assert audit.pending_rebuilds(conn) == [row["erasure_id"]]
    assert row["requested_by"] == "dpo"
    listed = runner.invoke(app, ["erasures"])
    assert listed.exit_code == 0, listed.output
    assert (
        "forget by dpo: alerts 0, eval_runs 3, human_reviews 0, review_queue 0; "
        "marts rebuild PENDING"
    ) in listed.output
    assert runner.invoke(app, ["forget", "--no-rebuild"]).exit_code == 2
    refused = runner.invoke(app, ["forget", "--subject", " ", "--no-rebuild"])
    assert (refused.exit_code, "the subject id is empty" in refused.output) == (2, True)


def test_a_jsonl_export_loses_the_erased_runs_lines_even_when_a_reviewer_broke_one(
    tmp_path: Path,
):
    from evals.reviews import erase_from_export

    export = tmp_path / "queue.jsonl"
    export.write_text(
        json.dumps({"run_id": str(CALL), "submission": SUBMISSION})
        + "\n"
        + f'{{"run_id": "{REGRADE}", "verdict": broken\n'
        + json.dumps({"run_id": str(OTHER_CALL), "submission": OTHER_SUBMISSION})
        + "\n"
    )
    export.chmod(0o640)
    assert erase_from_export(export, {CALL, REGRADE}) == 2
    assert (
        export.read_text()
        == json.dumps({"run_id": str(OTHER_CALL), "submission": OTHER_SUBMISSION}) + "\n"
    )
    assert export.stat().st_mode & 0o777 == 0o640
    assert erase_from_export(tmp_path / "gone.csv", {CALL}) == 0
