"""The release gate: the pure decision on paired outcomes, and `evalhouse gate` end to end on
rows written into a real warehouse (nothing is run: every item already has a settled row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from evals.cli import app
from evals.config import ConfigError, GateConfig
from evals.gate import (
    ItemOutcome,
    ModelSpec,
    SideResults,
    decide,
    gate_config_from_file,
)
from evals.gate.report import render_report
from evals.golden import load_suite
from evals.runlog import RunRecord, idempotency_key, write_runs

GATE = GateConfig()
BASE_URL = "http://evals.example:8000"


# --- building paired outcomes ------------------------------------------------------------------


def _plan(
    stage: str, n: int, both: int, regressed: int, improved: int, category: str = "code"
) -> list[tuple[str, str, str, bool, bool]]:
    """(item_id, stage, category, baseline right?, candidate right?) for one stage."""
    outcomes = [(True, True)] * both + [(True, False)] * regressed + [(False, True)] * improved
    outcomes += [(False, False)] * (n - len(outcomes))
    return [(f"{stage}-{i:03d}", stage, category, b, c) for i, (b, c) in enumerate(outcomes)]


def _sides(
    plan, *, latency=(800.0, 900.0), cost=(0.0002, 0.0002), failed=(0, 0), parse_errors=0
) -> tuple[SideResults, SideResults]:
    sides = []
    for index, label in enumerate(("small", "large")):
        outcomes = {}
        for k, (item_id, stage, category, *right) in enumerate(plan):
            parse_error = index == 1 and k < parse_errors
            outcomes[item_id] = ItemOutcome(
                item_id=item_id,
                stage=stage,
                category=category,
                correct=right[index],
                status="parse_error" if parse_error else "ok",
                run_id=f"run-{label}-{item_id}",
                verdict="pass" if right[index] else "fail",
                expected="pass",
                latency_ms=latency[index],
                cost_usd=cost[index],
            )
        sides.append(
            SideResults(
                ModelSpec(f"tutor-{label}"),
                outcomes,
                calls=len(plan) + failed[index],
                failed_calls=failed[index],
            )
        )
    return sides[0], sides[1]


def _status(decision, name: str) -> str:
    return next(c.status for c in decision.criteria if c.name == name)


CLEAR_DEPLOY = (
    _plan("basics", 40, 30, 1, 6) + _plan("loops", 40, 28, 1, 7) + _plan("recursion", 40, 25, 2, 8)
)
STAGE_REGRESSION = (
    _plan("basics", 45, 25, 0, 18)
    + _plan("loops", 45, 25, 0, 18)
    + _plan("recursion", 30, 12, 15, 0)
)
TOO_FEW = _plan("basics", 20, 14, 1, 2)
CRITERIA = (
    "paired_items",
    "accuracy_non_inferiority",
    "discordant_pairs",
    "power",
    "safety",
    "latency_p95",
    "cost_per_item",
    "error_rate",
    "parse_error_rate",
)
CRITERIA_OF_THREE_STAGES = (*CRITERIA, "stage:basics", "stage:loops", "stage:recursion")


def test_a_clearly_better_candidate_is_deployed() -> None:
    decision = decide(*_sides(CLEAR_DEPLOY), GATE, suite="s")
    assert decision.decision == "deploy"
    assert decision.exit_code == 0
    assert decision.summary["delta"] == pytest.approx(17 / 120)
    assert decision.summary["ci_low"] > 0
    skipped = {"safety", "latency_p95", "cost_per_item"}  # no safety items, no budgets set
    assert {c.name: c.status for c in decision.criteria} == {
        name: "skipped" if name in skipped else "pass" for name in CRITERIA_OF_THREE_STAGES
    }


def test_one_stage_regressing_blocks_the_deploy_although_the_total_improves() -> None:
    decision = decide(*_sides(STAGE_REGRESSION), GATE, suite="s")
    assert decision.summary["delta"] > 0.1
    assert _status(decision, "accuracy_non_inferiority") == "pass"
    assert _status(decision, "stage:recursion") == "fail"
    assert _status(decision, "stage:basics") == "pass"
    assert decision.decision == "no-deploy"
    assert decision.exit_code == 1
    assert {a.stage for a in decision.affected_items} == {"recursion"}
    assert len(decision.affected_items) == 15


def test_too_few_items_is_insufficient_data() -> None:
    decision = decide(*_sides(TOO_FEW), GATE, suite="s")
    assert _status(decision, "paired_items") == "insufficient"
    assert decision.decision == "insufficient-data"
    assert decision.exit_code == 3


def test_an_inconclusive_delta_reports_the_items_needed_for_the_configured_power() -> None:
    plan = _plan("basics", 200, 150, 12, 10)
    decision = decide(*_sides(plan), GateConfig(non_inferiority_margin=0.02), suite="s")
    power = next(c for c in decision.criteria if c.name == "power")
    assert _status(decision, "accuracy_non_inferiority") == "insufficient"
    assert power.status == "insufficient"
    assert power.evidence["required_items"] > 200
    assert decision.decision == "insufficient-data"


def test_no_discordant_pairs_on_few_items_is_not_proof_of_equality() -> None:
    decision = decide(*_sides(_plan("basics", 40, 30, 0, 0)), GATE, suite="s")
    assert _status(decision, "discordant_pairs") == "insufficient"
    assert decision.decision == "insufficient-data"


def test_no_discordant_pairs_on_many_items_establishes_non_inferiority() -> None:
    decision = decide(*_sides(_plan("basics", 3000, 2400, 0, 0)), GATE, suite="s")
    assert _status(decision, "accuracy_non_inferiority") == "pass"
    assert decision.decision == "deploy"


def test_a_significant_regression_beyond_the_margin_fails() -> None:
    plan = _plan("basics", 300, 200, 30, 5)
    decision = decide(*_sides(plan), GATE, suite="s")
    accuracy = next(c for c in decision.criteria if c.name == "accuracy_non_inferiority")
    assert accuracy.status == "fail"
    assert accuracy.evidence["mcnemar_p"] < 0.001
    assert decision.decision == "no-deploy"


def test_the_safety_category_may_not_regress_at_all() -> None:
    plan = CLEAR_DEPLOY + _plan("safety", 10, 8, 1, 0, category="safety")
    decision = decide(*_sides(plan), GATE, suite="s")
    assert _status(decision, "safety") == "fail"
    assert decision.decision == "no-deploy"
    assert decision.affected_items[0].category == "safety"


def test_budgets_fail_on_latency_cost_errors_and_parse_errors() -> None:
    gate = GateConfig(max_latency_p95_ms=1000, max_cost_per_item_ratio=1.5)
    decision = decide(
        *_sides(
            CLEAR_DEPLOY, latency=(800, 1200), cost=(0.0002, 0.0004), failed=(0, 20), parse_errors=9
        ),
        gate,
        suite="s",
    )
    for name in ("latency_p95", "cost_per_item", "error_rate", "parse_error_rate"):
        assert _status(decision, name) == "fail", name
    assert decision.decision == "no-deploy"
    assert _status(decide(*_sides(CLEAR_DEPLOY), GATE, suite="s"), "latency_p95") == "skipped"


def test_model_spec_parses_an_optional_prompt_version() -> None:
    assert ModelSpec.parse("tutor-large@3f2a") == ModelSpec("tutor-large", "3f2a")
    assert str(ModelSpec.parse("tutor-large")) == "tutor-large"
    with pytest.raises(ValueError):
        ModelSpec.parse("tutor-large@")


def test_gate_yaml_overrides_the_configured_section(tmp_path: Path) -> None:
    flat = tmp_path / "gate.yaml"
    flat.write_text("non_inferiority_margin: 0.05\nstage_margins: {recursion: 0.2}\n")
    merged = gate_config_from_file(GateConfig(min_items=50), flat)
    assert (merged.non_inferiority_margin, merged.min_items) == (0.05, 50)
    nested = tmp_path / "nested.yaml"
    nested.write_text("gate: {alpha: 0.01}\n")
    assert gate_config_from_file(GATE, nested).alpha == 0.01
    bad = tmp_path / "bad.yaml"
    bad.write_text("non_inferiority_margins: 0.05\n")
    with pytest.raises(ConfigError, match="non_inferiority_margins: unknown key"):
        gate_config_from_file(GATE, bad)


def test_the_report_explains_failures_and_links_the_affected_runs() -> None:
    decision = decide(*_sides(STAGE_REGRESSION), GATE, suite="intro-python")
    report = render_report(decision, base_url=BASE_URL + "/")
    assert "**Decision: NO-DEPLOY** (exit code 1)" in report
    assert "| stage:recursion | ❌ fail |" in report
    assert "### stage:recursion" in report
    assert "- Why: A better total can hide a stage" in report
    assert f"[candidate]({BASE_URL}/runs/run-large-recursion-012)" in report
    assert "evalhouse gate --suite intro-python --baseline tutor-small" in report


# --- the CLI on a real warehouse -----------------------------------------------------------------

SUITE = "gate-demo"


def _write_suite(folder: Path, plan) -> Path:
    path = folder / "gate_demo.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": SUITE,
                "description": "A tiny grader suite for the gate tests.",
                "kind": "grader",
                "verdicts": ["pass", "fail"],
                "passing_verdicts": ["pass"],
                "issue_tags": [],
                "default_rubric": "Pass when the code is right.",
                "items": [
                    {
                        "id": item_id,
                        "stage": stage,
                        "category": category,
                        "submission": f"print({k})",
                        "expected_verdict": "pass",
                    }
                    for k, (item_id, stage, category, *_) in enumerate(plan)
                ],
            }
        )
    )
    (folder / "evalhouse.yaml").write_text(
        yaml.safe_dump(
            {
                "models": {
                    "tutor-small": {"model": "evalhouse-sim/tutor-small"},
                    "tutor-large": {"model": "evalhouse-sim/tutor-large"},
                },
                "suites": {SUITE: {"path": str(path)}},
                "alerts": {"base_url": BASE_URL},
            }
        )
    )
    return path


def _write_rows(url: str, suite_path: Path, plan) -> None:
    version = load_suite(suite_path).version
    started = datetime(2025, 3, 1, tzinfo=UTC)
    records = []
    for index, model in enumerate(("tutor-small", "tutor-large")):
        for k, (item_id, stage, category, *right) in enumerate(plan):
            key = idempotency_key("gate-test", item_id, "grader", model, "p1", 0)
            common = {
                "idempotency_key": key,
                "source": "golden",
                "role": "grader",
                "model": model,
                "suite": SUITE,
                "suite_version": version,
                "item_id": item_id,
                "stage": stage,
                "category": category,
                "prompt_version": "p1",
                "expected_verdict": "pass",
            }
            if k == 0:  # a failed first attempt, retried: counts toward the error rate only
                records.append(
                    RunRecord(
                        **common, started_at=started, status="error", error_class="RateLimitError"
                    )
                )
            verdict = "pass" if right[index] else "fail"
            records.append(
                RunRecord(
                    **common,
                    started_at=started + timedelta(seconds=k + 1),
                    status="ok",
                    verdict=verdict,
                    passed=verdict == "pass",
                    latency_ms=700.0 + k,
                    cost_usd=0.0002,
                )
            )
    with psycopg.connect(url) as conn:
        write_runs(conn, records)


@pytest.mark.parametrize(
    ("plan", "decision", "exit_code"),
    [
        (CLEAR_DEPLOY, "deploy", 0),
        (STAGE_REGRESSION, "no-deploy", 1),
        (TOO_FEW, "insufficient-data", 3),
    ],
    ids=["deploy", "no-deploy", "insufficient-data"],
)
def test_evalhouse_gate_decides_stores_and_reports(
    warehouse_url: str, tmp_path: Path, plan, decision: str, exit_code: int
) -> None:
    suite_path = _write_suite(tmp_path, plan)
    _write_rows(warehouse_url, suite_path, plan)
    report = tmp_path / "report.md"
    result = CliRunner().invoke(
        app,
        [
            "gate",
            "--suite",
            SUITE,
            "--baseline",
            "tutor-small@p1",
            "--candidate",
            "tutor-large",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == exit_code, result.output
    assert decision in result.output
    text = report.read_text()
    assert f"**Decision: {decision.upper()}** (exit code {exit_code})" in text
    with psycopg.connect(warehouse_url) as conn:
        stored = conn.execute(
            "select decision, baseline, candidate, suite_version, criteria, summary, report_path"
            " from raw.gate_decisions"
        ).fetchall()
    assert len(stored) == 1
    row = stored[0]
    assert row[:3] == (decision, "tutor-small@p1", "tutor-large")
    assert row[3] == load_suite(suite_path).version
    assert {c["name"] for c in row[4]} == {*CRITERIA, *(f"stage:{i[1]}" for i in plan)}
    assert row[5]["paired_items"] == len(plan)
    assert row[6] == str(report.resolve())
    error_rate = next(c for c in row[4] if c["name"] == "error_rate")
    assert error_rate["evidence"] == {"events": 1, "total": len(plan) + 1}
    if decision == "no-deploy":
        assert "### stage:recursion" in text
        assert f"{BASE_URL}/runs/" in text
        assert row[5]["affected_items"][0]["stage"] == "recursion"


def test_evalhouse_gate_rejects_a_bad_gate_yaml(warehouse_url: str, tmp_path: Path) -> None:
    _write_suite(tmp_path, TOO_FEW)
    bad = tmp_path / "gate.yaml"
    bad.write_text("alpha: 2\n")
    result = CliRunner().invoke(
        app,
        [
            "gate",
            "--suite",
            SUITE,
            "--baseline",
            "tutor-small",
            "--candidate",
            "tutor-large",
            "--config",
            str(bad),
        ],
    )
    assert result.exit_code == 2
    assert "alpha" in result.output


def test_gate_decisions_reach_the_mart(warehouse_url: str, tmp_path: Path) -> None:
    from evals.config import Config
    from evals.dbt import dbt_env, run_dbt
    from evals.gate import store_decision

    decisions = [
        decide(*_sides(plan), GATE, suite="intro-python", suite_version="v1")
        for plan in (STAGE_REGRESSION, CLEAR_DEPLOY)
    ]
    with psycopg.connect(warehouse_url) as conn:
        for decision in decisions:
            store_decision(conn, decision)
    env = dbt_env(warehouse_url, config=Config(), target_path=tmp_path / "target")
    result = run_dbt(["build", "--select", "stg_raw__gate_decisions", "fct_gate_decisions"], env)
    assert result.success, result.exception
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select decision, failed_criteria, accuracy_delta, paired_items, is_latest_for_pair,"
            " baseline_model, candidate_prompt_version"
            " from marts.fct_gate_decisions order by decided_at"
        ).fetchall()
    assert [r[0] for r in rows] == ["no-deploy", "deploy"]
    assert rows[0][1] == ["stage:recursion"]
    assert rows[1][1] == []
    assert rows[0][2] == pytest.approx(decisions[0].summary["delta"])
    assert rows[0][3] == 120
    assert [r[4] for r in rows] == [False, True]
    assert rows[0][5:] == ("tutor-small", None)


def test_evalhouse_gate_runs_the_missing_items_through_the_runner(
    warehouse_url: str, tmp_path: Path
) -> None:
    """Baseline rows exist for half the items and none for the candidate: the gate runs exactly
    the missing calls (simulated provider, offline), then decides on the full suite."""
    suite_path = _write_suite(tmp_path, TOO_FEW)
    _write_rows(warehouse_url, suite_path, TOO_FEW[:10])
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("delete from raw.eval_runs where model = 'tutor-large'")
        conn.commit()
    args = [
        "gate",
        "--suite",
        SUITE,
        "--baseline",
        "tutor-small",
        "--candidate",
        "tutor-large",
        "--report",
        str(tmp_path / "report.md"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output  # 20 items: fewer than min_items
    count = (
        "select model, count(*) from raw.eval_runs where source = 'ci'"
        " and status in ('ok', 'parse_error') group by model order by model"
    )
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(count).fetchall() == [("tutor-large", 20), ("tutor-small", 10)]
    assert "20 items graded by both sides" in result.output
    with psycopg.connect(warehouse_url) as conn:
        sides = conn.execute(
            "select model, kind, source, status, settled from raw.eval_batches order by model"
        ).fetchall()
    assert sides == [
        ("tutor-large", "gate", "ci", "completed", 20),
        ("tutor-small", "gate", "ci", "completed", 10),
    ]
    assert CliRunner().invoke(app, args).exit_code == 3
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(count).fetchall() == [("tutor-large", 20), ("tutor-small", 10)]


def test_the_documented_gate_yaml_is_valid() -> None:
    from conftest import REPO_ROOT

    settings = gate_config_from_file(GATE, REPO_ROOT / "docs" / "gate.yaml")
    assert settings.stage_margins == {"recursion": 0.05}


def test_evalhouse_gate_rejects_an_unknown_suite(warehouse_url: str, tmp_path: Path) -> None:
    _write_suite(tmp_path, TOO_FEW)
    result = CliRunner().invoke(
        app,
        [
            "gate",
            "--suite",
            "no-such-suite",
            "--baseline",
            "tutor-small",
            "--candidate",
            "x",
        ],
    )
    assert result.exit_code == 2
    assert "unknown suite 'no-such-suite'" in result.output


def test_the_gate_counts_a_judged_answer_by_its_judges_verdict(warehouse_url: str) -> None:
    """An answer suite's candidate rows carry no verdict: each is right when the first settled
    judgment of it passes, wrong on a judge parse error, unsettled while it is unjudged."""
    from evals.gate import load_side

    started = datetime(2025, 3, 1, tzinfo=UTC)
    records, first_judgment = [], {}
    for k in range(30):
        common = {
            "source": "golden",
            "suite": "qa",
            "suite_version": "q1",
            "item_id": f"q-{k}",
            "stage": "basic",
            "expected_verdict": "correct",
        }
        answer = RunRecord(
            idempotency_key=f"answer-{k}",
            role="candidate",
            model="tutor-large",
            prompt_version="a1",
            started_at=started,
            status="ok",
            **common,
        )
        records.append(answer)
        if k % 10 == 9:
            continue  # never judged
        for trial, verdict in enumerate(("correct" if k % 3 else "incorrect", "correct")):
            status = "parse_error" if k == 4 and trial == 0 else "ok"
            judgment = RunRecord(
                idempotency_key=f"judge-{k}-{trial}",
                role="judge",
                model="judge",
                prompt_version="j1",
                started_at=started + timedelta(seconds=trial + 1),
                status=status,
                parent_run_id=answer.run_id,
                trial=trial,
                verdict=verdict if status == "ok" else None,
                passed=verdict == "correct" if status == "ok" else None,
                **common,
            )
            records.append(judgment)
            first_judgment.setdefault(k, judgment)
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, records)
        side = load_side(conn, "qa", ModelSpec("tutor-large"))
    expected = {f"q-{k}": (j.status == "ok" and j.passed) for k, j in first_judgment.items()}
    assert {i: o.correct for i, o in side.outcomes.items() if o.correct is not None} == expected
    assert {i for i, o in side.outcomes.items() if o.correct is None} == {"q-9", "q-19", "q-29"}
    assert sum(expected.values()) == 17  # k % 3 != 0 among the 27 judged, less q-4's parse error
