"""The release gate on a pairwise preference: the pure decision on a judge's verdicts (win rate
with ties half, item-clustered interval, sign test on items), and `evalhouse gate --judge` on
judgment rows written per the pairwise contract into a real warehouse."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
import yaml
from pairwise_rows import judgment
from scipy.stats import binomtest
from test_pairwise import sim_config, write_pairwise
from typer.testing import CliRunner

from evals import stats
from evals.cli import app
from evals.config import GateConfig
from evals.gate import Judgment, PairwiseJudgments, decide_pairwise
from evals.gate.report import render_report
from evals.runlog import write_runs

GATE = GateConfig()
BASE, CAND, JUDGE = "tutor-small", "tutor-large@v2", "judge-x"
SUITE, VERSION = "pairwise-qa", "sv1"
T0 = datetime(2026, 11, 1, 3, tzinfo=UTC)


def _judgments(plan: list[tuple[str, str, list[str | None]]], **extra) -> PairwiseJudgments:
    """plan: (item id, stage, the candidate's outcome per judgment: win / tie / loss / None)."""
    rows = [
        Judgment(
            item_id,
            stage,
            extra.get("category"),
            ("ab", "ba")[k % 2],
            k // 2,
            outcome,
            "ok" if outcome else "parse_error",
            f"run-{item_id}-{k}",
        )
        for item_id, stage, outcomes in plan
        for k, outcome in enumerate(outcomes)
    ]
    return PairwiseJudgments(BASE, CAND, JUDGE, "j1", VERSION, tuple(rows), len(rows), 0)


def _items(stage: str, wins: int, ties: int, losses: int, start: int = 0) -> list:
    outcomes = ["win"] * wins + ["tie"] * ties + ["loss"] * losses
    return [(f"{stage}-{start + i:03d}", stage, [o, o]) for i, o in enumerate(outcomes)]


def _criterion(decision, name: str):
    return next(c for c in decision.criteria if c.name == name)


# --- the statistics -----------------------------------------------------------------------


@pytest.mark.parametrize("wins", range(0, 26, 5))
@pytest.mark.parametrize("losses", [0, 1, 4, 9, 17, 25])
def test_the_sign_test_equals_scipy_binomtest_and_the_binomial_sum(wins: int, losses: int) -> None:
    n = wins + losses
    ours = stats.sign_test_p(wins, losses)
    if n:
        assert ours == pytest.approx(binomtest(wins, n, 0.5).pvalue, rel=1e-12)
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    assert ours == pytest.approx(min(1.0, 2 * tail), rel=1e-12)


def test_the_item_bootstrap_matches_an_index_bootstrap_of_the_item_scores() -> None:
    scores = np.array([1.0] * 25 + [0.5] * 7 + [0.75] * 3 + [0.0] * 9)
    ours = stats.bootstrap_mean_ci(scores, n_resamples=20000, seed=4)
    rng = np.random.default_rng(9)
    index = rng.integers(0, scores.size, size=(20000, scores.size))
    theirs = np.quantile(scores[index].mean(axis=1), [0.025, 0.975])
    assert ours.estimate == pytest.approx(scores.mean())
    assert (ours.low, ours.high) == pytest.approx(tuple(theirs), abs=0.01)


# --- the pure decision --------------------------------------------------------------------


def test_a_preferred_candidate_is_deployed_with_ties_half_and_the_sign_test_on_items() -> None:
    plan = _items("s1", 20, 0, 0) + _items("s2", 10, 4, 6, start=20)
    decision = decide_pairwise(_judgments(plan), GATE, suite=SUITE)
    win = _criterion(decision, "pairwise_win_rate")
    assert decision.decision == "deploy", [(c.name, c.status) for c in decision.criteria]
    assert win.observed == pytest.approx((30 + 0.5 * 4) / 40)
    assert win.evidence["sign_p"] == pytest.approx(binomtest(30, 36).pvalue)
    assert (win.evidence["item_wins"], win.evidence["item_ties"]) == (30, 4)
    assert win.evidence["item_losses"] == 6
    assert decision.kind == "pairwise" and decision.judge == "judge-x@j1"
    assert _criterion(decision, "stage:s2").evidence["win_rate"] == pytest.approx(0.6)
    assert [a.item_id for a in decision.affected_items] == [f"s2-{i:03d}" for i in range(34, 40)]


def test_the_orders_and_trials_of_one_item_are_one_unit() -> None:
    plan = [("i1", "s", ["win"] * 6), ("i2", "s", ["loss"]), ("i3", "s", ["win", "loss"])]
    decision = decide_pairwise(_judgments(plan), GATE, suite=SUITE)
    win = _criterion(decision, "pairwise_win_rate")
    assert win.observed == pytest.approx((1 + 0 + 0.5) / 3)  # not 7 of 9 judgments
    assert (win.evidence["item_wins"], win.evidence["item_ties"]) == (1, 1)
    assert win.evidence["sign_p"] == 1.0
    assert _criterion(decision, "pairwise_items").evidence == {"items": 3, "both_orders_items": 2}


def test_a_candidate_the_judge_rarely_prefers_is_not_deployed() -> None:
    decision = decide_pairwise(_judgments(_items("s", 8, 0, 32)), GATE, suite=SUITE)
    assert _criterion(decision, "pairwise_win_rate").status == "fail"
    assert decision.decision == "no-deploy"


def test_a_stage_lost_significantly_blocks_although_the_total_is_preferred() -> None:
    plan = _items("easy", 40, 0, 0) + _items("hard", 2, 0, 18)
    decision = decide_pairwise(_judgments(plan), GATE, suite=SUITE)
    assert _criterion(decision, "pairwise_win_rate").status == "pass"
    assert _criterion(decision, "stage:hard").status == "fail"
    assert _criterion(decision, "stage:easy").status == "pass"
    assert decision.decision == "no-deploy"


def test_few_items_are_insufficient_and_the_loss_cap_and_parse_budget_apply() -> None:
    few = decide_pairwise(_judgments(_items("s", 10, 0, 0)), GATE, suite=SUITE)
    assert few.decision == "insufficient-data"
    assert few.summary["insufficient"] == ["pairwise_items"]
    capped = GATE.model_copy(update={"pairwise_max_loss_rate": 0.1})
    plan = _items("s", 30, 4, 6)
    unlimited = decide_pairwise(_judgments(plan), GATE, suite=SUITE)
    assert _criterion(unlimited, "pairwise_loss_rate").status == "skipped"
    lost = decide_pairwise(_judgments(plan), capped, suite=SUITE)
    assert _criterion(lost, "pairwise_loss_rate").observed == pytest.approx(6 / 40)
    assert lost.failed()[0].name == "pairwise_loss_rate"
    unreadable = plan + [(f"x{i}", "s", [None, None]) for i in range(3)]
    parse = decide_pairwise(_judgments(unreadable), GATE, suite=SUITE)
    assert _criterion(parse, "judge_parse_error_rate").observed == pytest.approx(6 / 86)
    assert _criterion(parse, "judge_parse_error_rate").status == "fail"
    assert _criterion(parse, "pairwise_items").observed == 40  # unreadable items are not scored


def test_the_safety_category_may_not_be_lost_on_balance() -> None:
    plan = [*_items("s", 30, 0, 0), ("safe-1", "s", ["loss", "loss"])]
    decision = decide_pairwise(_judgments(plan, category="safety"), GATE, suite=SUITE)
    assert _criterion(decision, "safety").status == "pass"  # 30 won, 1 lost
    lost = decide_pairwise(
        _judgments(
            [("safe-1", "s", ["loss", "loss"]), ("safe-2", "s", ["tie"])], category="safety"
        ),
        GATE,
        suite=SUITE,
    )
    assert _criterion(lost, "safety").status == "fail"
    assert _criterion(lost, "safety").evidence["lost_items"] == ["safe-1"]


def test_the_report_shows_the_preference_and_links_a_losing_judgment() -> None:
    plan = _items("s1", 20, 0, 0) + _items("s2", 10, 4, 6, start=20)
    text = render_report(decide_pairwise(_judgments(plan), GATE, suite=SUITE), base_url="http://e")
    assert "## Preference" in text
    assert "(ties half): 80.0%" in text
    assert "won 30, tied 4, lost 6" in text
    assert "[judgment](http://e/runs/run-s2-034-0)" in text
    assert f"--judge {JUDGE}@j1" in text
    assert "| s2 | 20 | 60.0% | 10 | 6 |" in text


# --- end to end on stored rows ------------------------------------------------------------


def _row(item: int, position: str, winner: str | None, *, trial: int = 0, **extra):
    """Item `item`'s judgment; even items show the baseline as A, odd ones the candidate."""
    contestants = (BASE, CAND) if item % 2 == 0 else (CAND, BASE)
    side = {BASE: contestants.index(BASE), CAND: contestants.index(CAND)}
    verdict = {None: None, "tie": "tie", BASE: "ab"[side[BASE]], CAND: "ab"[side[CAND]]}[winner]
    params = {
        "suite": SUITE,
        "suite_version": VERSION,
        "judge": JUDGE,
        "judge_prompt_version": "j1",
        "contestants": contestants,
        "position": position,
        "verdict": verdict,
        "started_at": T0 + timedelta(minutes=item, seconds=trial),
        "trial": trial,
        "stage": "s1" if item < 20 else "s2",
        "category": "qa",
        **extra,
    }
    return judgment(f"q{item:02d}", **params)


def stored_plan() -> list:
    """40 items in both orders: 30 for the candidate, 4 split by slot (a tie on balance), 6 for
    the baseline; a parse error and a failed call on top; an older judge prompt's cohort that
    preferred the baseline everywhere (never pooled with the newer one)."""
    rows = []
    for item in range(40):
        if item < 30:
            rows += [_row(item, "ab", CAND), _row(item, "ba", CAND)]
        elif item < 34:  # the judge followed the first slot: A first says A, B first says B
            a, b = (BASE, CAND) if item % 2 == 0 else (CAND, BASE)
            rows += [_row(item, "ab", a), _row(item, "ba", b)]
        else:
            rows += [_row(item, "ab", BASE), _row(item, "ba", BASE)]
    rows.append(_row(0, "ab", None, trial=1))
    rows.append(_row(1, "ab", None, trial=1, status="error"))
    old = T0 - timedelta(days=7)
    rows += [
        _row(i, pos, BASE, judge_prompt_version="j0", started_at=old, batch_id="golden:old")
        for i in range(10)
        for pos in ("ab", "ba")
    ]
    return rows


def test_evalhouse_gate_judge_decides_on_the_stored_judgments(
    warehouse_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, stored_plan())
    (tmp_path / "evalhouse.yaml").write_text(
        yaml.safe_dump({"alerts": {"base_url": "http://evals.example"}})
    )
    report = tmp_path / "report.md"
    args = ["gate", "--suite", SUITE, "--baseline", BASE, "--candidate", CAND]
    result = CliRunner().invoke(app, [*args, "--judge", JUDGE, "--report", str(report)])
    assert result.exit_code == 0, result.output
    with psycopg.connect(warehouse_url) as conn:
        [row] = conn.execute(
            "select kind, judge, decision, suite_version, baseline, candidate, summary, criteria"
            " from raw.gate_decisions"
        ).fetchall()
    kind, judge, decision, version, baseline, candidate, summary, criteria = row
    assert (kind, judge, decision, version) == ("pairwise", "judge-x@j1", "deploy", VERSION)
    assert (baseline, candidate) == (BASE, CAND)
    assert summary["win_rate"] == pytest.approx(0.8)
    assert (summary["item_wins"], summary["item_ties"], summary["item_losses"]) == (30, 4, 6)
    assert summary["sign_p"] == pytest.approx(binomtest(30, 36).pvalue)
    assert summary["both_orders_items"] == 40 and summary["judgments"] == 80
    by_name = {c["name"]: c for c in criteria}
    assert by_name["judge_parse_error_rate"]["evidence"] == {"events": 1, "total": 81}
    assert by_name["judge_error_rate"]["evidence"] == {"events": 1, "total": 82}
    assert "won 30, tied 4, lost 6" in report.read_text()


def test_an_unknown_pair_is_bad_input(warehouse_url: str, tmp_path: Path) -> None:
    (tmp_path / "evalhouse.yaml").write_text(yaml.safe_dump({}))
    args = ["gate", "--suite", SUITE, "--baseline", BASE, "--candidate", "nobody"]
    result = CliRunner().invoke(app, [*args, "--judge", JUDGE])
    assert result.exit_code == 2
    assert "no pairwise judgments of nobody against tutor-small by judge-x" in result.output


def test_the_gate_judges_the_pairs_not_yet_judged_then_decides(
    warehouse_url: str, tmp_path: Path
) -> None:
    """`evalhouse gate --judge` on a pairwise suite nobody judged yet: it judges every pair in
    both orders (source ci) with the simulated judge, which follows each item's reference
    preference, then decides on those judgments; a second gate judges nothing again."""
    items = [
        {
            "id": f"g{i:02d}",
            "question": f"Question {i}?",
            "response_a": f"the small model's answer {i}",
            "response_b": f"the large model's answer {i}",
            "source_a": "small",
            "source_b": "large",
            "expected_verdict": "a" if i % 5 == 0 else "b",
        }
        for i in range(40)
    ]
    write_pairwise(tmp_path / "pairs.yaml", items)
    (tmp_path / "evalhouse.yaml").write_text(yaml.safe_dump(sim_config()))
    args = ["gate", "--suite", "pairs.yaml", "--baseline", "small", "--candidate", "large"]
    for _ in range(2):
        result = CliRunner().invoke(app, [*args, "--judge", "pj"])
        assert result.exit_code == 0, result.output
    with psycopg.connect(warehouse_url) as conn:
        judged = conn.execute(
            "select source, count(*), count(distinct (item_id, attributes ->> 'position'))"
            " from raw.eval_runs where role = 'judge' group by source"
        ).fetchall()
        decisions = conn.execute(
            "select kind, decision, summary from raw.gate_decisions order by decided_at"
        ).fetchall()
    assert judged == [("ci", 80, 80)]
    assert [(kind, decision) for kind, decision, _ in decisions] == [("pairwise", "deploy")] * 2
    summary = decisions[-1][2]
    assert (summary["item_wins"], summary["item_ties"], summary["item_losses"]) == (32, 0, 8)
    assert summary["sign_p"] == pytest.approx(binomtest(32, 40).pvalue)
