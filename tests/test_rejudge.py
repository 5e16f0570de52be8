"""`evalhouse rejudge` on a real warehouse with the simulated provider: estimated first, new rows
linked to the graded calls, one row per call even across a kill -9, nothing at all on a dry run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from _kill import kill_9_when
from fake_openai import fake_openai  # noqa: F401  (fixture)
from typer.testing import CliRunner

from evals.cli import app
from evals.config import load_config
from evals.rejudge import RejudgeRequest, run_rejudge
from evals.runner import RunRequest, run_suite
from tests.conftest import REPO_ROOT

PAID_PRICES = (2e-6, 8e-6)


def _config_file(
    tmp_path: Path,
    *,
    time_scale: float = 0.0,
    judge_concurrency: int = 64,
    api_base: str = "http://127.0.0.1:9/v1",
    name: str = "evalhouse.yaml",
) -> Path:
    """Simulated tutor and judges without faults (every call settles: rows are countable)."""
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "tutor-small": {"model": "evalhouse-sim/tutor-small"},
                    "judge": {"model": "evalhouse-sim/judge"},
                    "judge-2": {"model": "evalhouse-sim/judge-2", "concurrency": judge_concurrency},
                    "paid": {
                        "model": "openai/paid",
                        "api_base": api_base,
                        "input_cost_per_token": PAID_PRICES[0],
                        "output_cost_per_token": PAID_PRICES[1],
                    },
                },
                "judges": ["judge", "judge-2"],
                "reference_judge": "judge",
                "suites": {
                    "intro-python": {
                        "path": str(REPO_ROOT / "golden_sets" / "intro_python_grader.yaml")
                    },
                    "general-qa": {
                        "path": str(REPO_ROOT / "golden_sets" / "general_qa.yaml"),
                        "judge": "judge",
                    },
                },
                "simulator": {
                    "seed": 7,
                    "error_rate": 0.0,
                    "rate_limit_rate": 0.0,
                    "malformed_rate": 0.0,
                    "time_scale": time_scale,
                    "models": {
                        "tutor-small": {"accuracy": 0.8},
                        "judge": {"accuracy": 0.9},
                        "judge-2": {"accuracy": 0.7},
                    },
                },
            }
        )
    )
    return path


def _graded(conn, suite: str) -> dict[str, tuple]:
    """The suite's graded calls (graders, or candidates a judge graded): id -> grading call."""
    rows = conn.execute(
        "select g.run_id::text, coalesce(j.input_tokens, g.input_tokens),"
        " coalesce(j.output_tokens, g.output_tokens), coalesce(j.messages, g.messages)"
        " from raw.eval_runs g left join raw.eval_runs j"
        "   on j.parent_run_id = g.run_id and j.role = 'judge' and j.source = g.source"
        " where g.suite = %s and g.source = 'golden'"
        "   and (g.role = 'grader' or (g.role = 'candidate' and j.run_id is not null))",
        (suite,),
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def _rejudged(conn) -> list[tuple]:
    return conn.execute(
        "select parent_run_id::text, role, model, batch_id, attributes ->> 'as_of', messages,"
        " cost_usd from raw.eval_runs where source = 'rejudge' order by parent_run_id"
    ).fetchall()


@pytest.fixture
def graded_warehouse(tmp_path: Path, warehouse_url: str):
    """Both shipped suites graded once by tutor-small (and general-qa's answers by `judge`)."""
    config = load_config(_config_file(tmp_path))
    run_suite(config, RunRequest("intro-python", "tutor-small"))
    run_suite(config, RunRequest("general-qa", "tutor-small"))
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        yield config, conn


def test_a_dry_run_prints_the_estimate_and_makes_no_call_and_writes_no_row(
    graded_warehouse,
    tmp_path: Path,
    fake_openai,
    monkeypatch,
):
    _, conn = graded_warehouse
    path = _config_file(tmp_path, api_base=fake_openai.api_base, name="paid.yaml")
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(path))
    graded = _graded(conn, "intro-python")
    before = conn.execute(
        "select (select count(*) from raw.eval_runs), (select count(*) from raw.prompt_versions)"
    ).fetchone()

    result = CliRunner().invoke(
        app, ["rejudge", "--judge", "paid", "--suite", "intro-python", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    cost = sum(i * PAID_PRICES[0] + o * PAID_PRICES[1] for i, o, _ in graded.values())
    assert f"calls to make: {len(graded)}" in result.output
    assert f"cost: ~${cost:.4f} at $2.00 / $8.00 per million tokens in / out" in result.output
    assert fake_openai.request_count == 0
    assert (
        conn.execute(
            "select (select count(*) from raw.eval_runs),"
            " (select count(*) from raw.prompt_versions)"
        ).fetchone()
        == before
    )


def test_a_rejudge_adds_one_linked_judge_row_per_graded_call_and_its_estimate_holds(
    graded_warehouse,
):
    config, conn = graded_warehouse
    graded = {**_graded(conn, "intro-python"), **_graded(conn, "general-qa")}
    lines: list[str] = []

    summary = run_rejudge(config, RejudgeRequest(judge="judge-2"), echo=lines.append)

    rows = _rejudged(conn)
    assert summary.new_rows == len(rows) == len(graded)
    assert summary.estimate.calls == len(graded) and summary.failed == 0
    assert lines[0] == "rejudge with judge-2 (evalhouse-sim/judge-2)"
    assert {parent for parent, *_ in rows} == set(graded)
    day = conn.execute(
        "select (min(started_at) at time zone 'UTC')::date from raw.eval_runs"
        " where source = 'golden'"
    ).fetchone()[0]
    for parent, role, model, batch, as_of, messages, _ in rows:
        assert (role, model, batch, as_of) == (
            "judge",
            "judge-2",
            f"rejudge:judge-2:{day}",
            day.isoformat(),
        )
        assert messages == graded[parent][2], "the grading call is sent again as stored"
    recorded = sum(cost for *_, cost in rows)
    assert recorded == pytest.approx(summary.cost_usd)
    assert abs(summary.estimate.cost_usd - recorded) <= 0.2 * recorded
    batches = conn.execute(
        "select kind, batch_key, model, status, calls, settled, source from raw.eval_batches"
        " where kind = 'rejudge'"
    ).fetchall()
    assert batches == [
        (
            "rejudge",
            f"rejudge:judge-2:{day}",
            "judge-2",
            "completed",
            len(graded),
            len(graded),
            "rejudge",
        )
    ]

    again = run_rejudge(config, RejudgeRequest(judge="judge-2"), echo=lines.append)
    assert (again.estimate.calls, again.estimate.settled_before, again.new_rows) == (
        0,
        len(graded),
        0,
    )
    assert len(_rejudged(conn)) == len(graded)


def test_a_rejudge_killed_mid_run_and_run_again_leaves_exactly_one_row_per_graded_call(
    graded_warehouse, tmp_path: Path, warehouse_url: str
):
    config, conn = graded_warehouse
    graded = _graded(conn, "intro-python")
    slow = _config_file(tmp_path, time_scale=0.2, judge_concurrency=2, name="slow.yaml")
    env = {**os.environ, "EVALHOUSE_CONFIG": str(slow), "EVALHOUSE_DATABASE_URL": warehouse_url}
    log = tmp_path / "rejudge.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evals.cli",
                "rejudge",
                "--judge",
                "judge-2",
                "--suite",
                "intro-python",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def rejudged_rows() -> int:
        query = "select count(*) from raw.eval_runs where source = 'rejudge'"
        return conn.execute(query).fetchone()[0]

    kill_9_when(process, lambda: rejudged_rows() > 0, "a rejudged row landed", timeout_s=120)
    assert process.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    landed = rejudged_rows()
    assert 0 < landed < len(graded), "killed after some rows landed, before the last"

    summary = run_rejudge(
        config, RejudgeRequest(judge="judge-2", suite="intro-python"), echo=lambda line: None
    )

    assert summary.estimate.settled_before == landed
    assert summary.new_rows == summary.estimate.calls == len(graded) - landed
    per_call = conn.execute(
        "select parent_run_id::text, count(*) from raw.eval_runs"
        " where source = 'rejudge' group by 1"
    ).fetchall()
    assert dict(per_call) == dict.fromkeys(graded, 1)


def test_the_agreement_mart_puts_the_rejudge_beside_the_original_grading_on_the_same_items(
    graded_warehouse, tmp_path: Path, warehouse_url: str
):
    from evals.dbt import dbt_env, run_dbt

    config, conn = graded_warehouse
    run_rejudge(
        config, RejudgeRequest(judge="judge-2", suite="intro-python"), echo=lambda line: None
    )
    env = dbt_env(url=warehouse_url, config=config, target_path=tmp_path / "dbt")
    result = run_dbt(
        ["build", "--select", "+fct_verdict_agreement_weekly", "--indirect-selection", "cautious"],
        env=env,
    )
    assert result.success, [
        f"{r.node.name}: {r.message}"
        for r in result.result or []
        if str(r.status) not in ("success", "pass")
    ]

    raw = conn.execute(
        "select source, role, model, count(*), count(*) filter (where verdict = expected_verdict)"
        " from raw.eval_runs where suite = 'intro-python' and status in ('ok', 'parse_error')"
        " group by 1, 2, 3"
    ).fetchall()
    mart = conn.execute(
        "select source, role, model, sum(n), sum(n_agree) from marts.fct_verdict_agreement_weekly"
        " where reference = 'golden_expected' and suite = 'intro-python' group by 1, 2, 3"
    ).fetchall()
    graded = len(_graded(conn, "intro-python"))
    assert {(s, r, m): (n, agree) for s, r, m, n, agree in mart} == {
        (s, r, m): (n, agree) for s, r, m, n, agree in raw
    }
    assert {(s, r, m, n) for s, r, m, n, _ in mart} == {
        ("golden", "grader", "tutor-small", graded),
        ("rejudge", "judge", "judge-2", graded),
    }


def test_a_rejudge_with_another_prompt_renders_the_stored_inputs_and_keeps_its_own_rows(
    graded_warehouse, tmp_path: Path
):
    from evals.prompts import RUBRIC_GRADER, PromptTemplate, load_prompt

    config, conn = graded_warehouse
    edited = tmp_path / "rubric_grader.j2"
    edited.write_text(
        load_prompt(RUBRIC_GRADER).text.replace(
            "{% block system %}", "{% block system %}Be strict about edge cases.\n", 1
        )
    )
    template = PromptTemplate.from_file(edited, RUBRIC_GRADER)
    request = RejudgeRequest(judge="judge-2", suite="intro-python", prompt_file=edited)

    summary = run_rejudge(config, request, echo=lambda line: None)

    rows = conn.execute(
        "select r.prompt_name, r.prompt_version, r.batch_id, r.messages, g.inputs"
        " from raw.eval_runs r join raw.eval_runs g on g.run_id = r.parent_run_id"
        " where r.source = 'rejudge'"
    ).fetchall()
    graded = _graded(conn, "intro-python")
    assert summary.new_rows == len(rows) == len(graded)
    day = conn.execute(
        "select (min(started_at) at time zone 'UTC')::date from raw.eval_runs"
        " where source = 'golden'"
    ).fetchone()[0]
    for name, version, batch, messages, inputs in rows:
        assert (name, version, batch) == (
            RUBRIC_GRADER,
            template.version,
            f"rejudge:judge-2@{template.version}:{day}",
        )
        assert messages == template.render(**inputs), "the graded call's inputs, new wording"
    assert conn.execute(
        "select template from raw.prompt_versions where prompt_name = %s and prompt_version = %s",
        (RUBRIC_GRADER, template.version),
    ).fetchone() == (template.text,)
    plain = run_rejudge(
        config, RejudgeRequest(judge="judge-2", suite="intro-python"), echo=lambda line: None
    )
    assert (plain.estimate.settled_before, plain.new_rows) == (0, len(graded))
