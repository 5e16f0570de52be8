"""The gate's warehouse side: both sides' outcomes read from raw.eval_runs, the missing items
run through the runner, and the decision stored in raw.gate_decisions."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from evals.config import Config, ConfigError
from evals.gate.outcomes import (
    GateDecision,
    ItemOutcome,
    Judgment,
    ModelSpec,
    PairwiseJudgments,
    SideResults,
)

if TYPE_CHECKING:
    import psycopg

    from evals.golden import Suite

log = logging.getLogger(__name__)

_SIDE_SQL = """
select run_id::text, item_id, stage, category, role, status, verdict, expected_verdict, passed,
       latency_ms, cost_usd, started_at, trial, suite_version
from raw.eval_runs
where suite = %(suite)s and model = %(model)s and role = any(%(roles)s)
  and source in ('golden', 'ci') and item_id is not null
  and not attributes ? 'contestant'  -- a pairwise side's answer: nothing graded it
  and (%(prompt_version)s::text is null or prompt_version = %(prompt_version)s)
  and (%(suite_version)s::text is null or suite_version = %(suite_version)s)
"""
_OUTCOMES_SQL = """
select run_id::text, outcome, coalesce(verdict, judge_verdict) as verdict
from {view}
where suite = %(suite)s and model = %(model)s and role = any(%(roles)s)
"""


def _latest_settled(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    settled = [r for r in rows if r["status"] in ("ok", "parse_error")]
    if not settled:
        return None
    return max(settled, key=lambda r: (r["trial"] == 0, r["started_at"]))


def load_side(
    conn: psycopg.Connection,
    suite: str,
    spec: ModelSpec,
    *,
    suite_version: str | None = None,
    items: Iterable[str] | None = None,
) -> SideResults:
    """One side's outcomes: its golden and ci calls from raw.eval_runs, judged as
    int_golden_outcomes_live judges them (evals.golden.outcomes).

    A grader row is right when its verdict equals the expected verdict; an answer-suite
    candidate when its own (deterministic) verdict does, else when its judge's verdict passes;
    a parse error is wrong; an answer not yet judged is unsettled (the gate judges it first).
    Per item the newest settled row counts (trial 0 preferred); failed attempts count as calls
    for the error rate. `items` restricts the side to the suite's current items; an item with
    rows but no settled one is unsettled.
    """
    rows, judged = _side_rows(
        conn,
        {
            "suite": suite,
            "model": spec.model,
            "prompt_version": spec.prompt_version,
            "suite_version": suite_version,
        },
    )
    wanted = set(items) if items is not None else None
    by_item: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if wanted is None or row["item_id"] in wanted:
            by_item.setdefault(row["item_id"], []).append(row)
    outcomes = {
        item_id: _item_outcome(item_id, item_rows, judged) for item_id, item_rows in by_item.items()
    }
    calls = sum(len(v) for v in by_item.values())
    failed = sum(1 for v in by_item.values() for r in v if r["status"] in ("error", "timeout"))
    return SideResults(spec=spec, outcomes=outcomes, calls=calls, failed_calls=failed)


def _side_rows(
    conn: psycopg.Connection, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]]]:
    """(the side's grader rows, or its candidate rows when it has none; their judged outcomes
    by run id)."""
    from psycopg.rows import dict_row

    from evals.golden.outcomes import ensure_outcomes_view, outcomes_view

    ensure_outcomes_view(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        roles = ["grader"]
        rows = cur.execute(_SIDE_SQL, {**params, "roles": roles}).fetchall()
        if not rows:
            roles = ["candidate"]
            rows = cur.execute(_SIDE_SQL, {**params, "roles": roles}).fetchall()
        judged = {
            row["run_id"]: row
            for row in cur.execute(
                _OUTCOMES_SQL.format(view=outcomes_view()), {**params, "roles": roles}
            ).fetchall()
        }
    return rows, judged


def _item_outcome(
    item_id: str, item_rows: list[dict[str, Any]], judged: dict[Any, dict[str, Any]]
) -> ItemOutcome:
    """The item's newest settled row as judged, or an unsettled outcome when it has none."""
    from evals.golden.outcomes import CORRECTNESS

    row = _latest_settled(item_rows)
    if row is None:
        first = item_rows[0]
        return ItemOutcome(item_id, first["stage"], first["category"], None, "error")
    outcome = judged.get(row["run_id"], {})
    return ItemOutcome(
        item_id=item_id,
        stage=row["stage"],
        category=row["category"],
        correct=CORRECTNESS.get(outcome.get("outcome")),
        status=row["status"],
        run_id=row["run_id"],
        verdict=outcome.get("verdict"),
        expected=row["expected_verdict"],
        latency_ms=row["latency_ms"],
        cost_usd=row["cost_usd"],
    )


_JUDGMENTS_SQL = """
select run_id::text, item_id, stage, category, status, verdict, trial, suite_version,
       prompt_version, started_at, attributes ->> 'position' as position,
       case when attributes ->> 'contestant_a' = %(candidate)s then 'a' else 'b' end
           as candidate_side
from raw.eval_runs
where suite = %(suite)s and role = 'judge' and model = %(judge)s
  and source in ('golden', 'ci') and item_id is not null
  and (%(suite_version)s::text is null or suite_version = %(suite_version)s)
  and (%(judge_prompt_version)s::text is null or prompt_version = %(judge_prompt_version)s)
  and %(baseline)s in (attributes ->> 'contestant_a', attributes ->> 'contestant_b')
  and %(candidate)s in (attributes ->> 'contestant_a', attributes ->> 'contestant_b')
"""
_OUTCOME = {("a", "a"): "win", ("b", "b"): "win", ("a", "b"): "loss", ("b", "a"): "loss"}


def load_judgments(
    conn: psycopg.Connection,
    suite: str,
    baseline: ModelSpec,
    candidate: ModelSpec,
    judge: ModelSpec,
    *,
    suite_version: str | None = None,
) -> PairwiseJudgments:
    """The judge's golden and ci judgments between the two sides (docs/pairwise.md rows), of
    one cohort: the given suite version and judge prompt version, else the newest judged.

    A side is named as the rows name contestants: `MODEL` or `MODEL@PROMPT_VERSION`. Per item,
    position and trial the newest settled row counts (the runner settles each once); the verdict
    is in the item's labelling, so the candidate wins when the verdict names its side.
    """
    from psycopg.rows import dict_row

    params = {
        "suite": suite,
        "judge": judge.model,
        "judge_prompt_version": judge.prompt_version,
        "suite_version": suite_version,
        "baseline": str(baseline),
        "candidate": str(candidate),
    }
    rows = conn.cursor(row_factory=dict_row).execute(_JUDGMENTS_SQL, params).fetchall()
    newest = max(rows, key=lambda r: r["started_at"], default=None)
    cohort = (newest["suite_version"], newest["prompt_version"]) if newest else (None, None)
    rows = [r for r in rows if (r["suite_version"], r["prompt_version"]) == cohort]
    by_unit: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        by_unit.setdefault((row["item_id"], row["position"], row["trial"]), []).append(row)
    judgments = []
    for unit_rows in by_unit.values():
        settled = [r for r in unit_rows if r["status"] in ("ok", "parse_error")]
        if not settled:
            continue
        row = max(settled, key=lambda r: r["started_at"])
        outcome = None
        if row["status"] == "ok" and row["verdict"] in ("a", "b", "tie"):
            outcome = _OUTCOME.get((row["verdict"], row["candidate_side"]), "tie")
        judgments.append(
            Judgment(
                item_id=row["item_id"],
                stage=row["stage"],
                category=row["category"],
                position=row["position"],
                trial=row["trial"],
                outcome=outcome,
                status=row["status"] if outcome is not None else "parse_error",
                run_id=row["run_id"],
            )
        )
    return PairwiseJudgments(
        baseline=str(baseline),
        candidate=str(candidate),
        judge=judge.model,
        judge_prompt_version=cohort[1],
        suite_version=cohort[0],
        judgments=tuple(sorted(judgments, key=lambda j: (j.item_id, j.position or "", j.trial))),
        calls=len(rows),
        failed_calls=sum(1 for r in rows if r["status"] in ("error", "timeout")),
    )


_INSERT_DECISION = """
insert into raw.gate_decisions
    (decision_id, suite, suite_version, baseline, candidate, decision, criteria, summary,
     report_path, decided_at, kind, judge)
values (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s)
"""


def store_decision(conn: psycopg.Connection, decision: GateDecision) -> None:
    """Insert the decision into raw.gate_decisions (commits)."""
    with conn.transaction():
        conn.execute(
            _INSERT_DECISION,
            (
                decision.decision_id,
                decision.suite,
                decision.suite_version,
                decision.baseline,
                decision.candidate,
                decision.decision,
                json.dumps(decision.criteria_json(), default=str),
                json.dumps(
                    {
                        **decision.summary,
                        "affected_items": [asdict(a) for a in decision.affected_items],
                    },
                    default=str,
                ),
                decision.report_path,
                decision.decided_at,
                decision.kind,
                decision.judge,
            ),
        )


# --- running what is missing --------------------------------------------------------------


def configured_suite(config: Config, suite: str) -> Suite | None:
    """The suite as configured, or None when evalhouse.yaml does not list it."""
    if suite not in config.suites:
        return None
    from evals.golden import suites_from_config

    return suites_from_config(config.model_copy(update={"suites": {suite: config.suites[suite]}}))[
        suite
    ]


def _current_prompt_version(suite: Suite) -> str:
    from evals.prompts import ANSWER_CANDIDATE, RUBRIC_GRADER, load_prompt

    return load_prompt(RUBRIC_GRADER if suite.kind == "grader" else ANSWER_CANDIDATE).version


def run_missing_items(
    config: Config, suite: Suite, spec: ModelSpec, side: SideResults, judge: str | None
) -> bool:
    """Run the items this side has not settled (source `ci`); False when none were missing.

    Only the missing items are run: the runner gets the suite narrowed to them, after the full
    suite version is stored, so raw.golden_items still holds every item of that version and the
    calls carry the same item hashes and suite version as a full run.
    """
    missing = [
        item
        for item in suite.items
        if item.item_id not in side.outcomes or side.outcomes[item.item_id].correct is None
    ]
    if not missing:
        return False
    current = _current_prompt_version(suite)
    if spec.prompt_version is not None and spec.prompt_version != current:
        raise ConfigError(
            f"{spec}: {len(missing)} items have no settled run with prompt version "
            f"{spec.prompt_version}, and only the current version ({current}) can be run; "
            "run them first, or gate on the current version"
        )
    from evals import runner, warehouse
    from evals.golden import store_suite

    with warehouse.connect() as conn:
        store_suite(conn, suite)
    log.info("gate: running %d missing items of %s for %s", len(missing), suite.name, spec)
    request = runner.RunRequest(
        replace(suite, items=tuple(missing)), spec.model, judge, source="ci", kind="gate"
    )
    runner.run_suite(config, request)
    return True
