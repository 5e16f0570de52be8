"""The plan of a run: one unit per item x trial, keyed so a re-run makes only the missing calls.

Every logical call has an idempotency key (batch key, item hash, role, model, prompt version,
params, trial; a judge call also the candidate's key). Keys already settled (ok / parse_error)
are skipped, keys with only failed rows are called again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.runlog import idempotency_key, settled_keys, settled_runs

if TYPE_CHECKING:
    import psycopg

    from evals.golden import GoldenItem
    from evals.prompts import PromptTemplate
    from evals.runner.context import RunContext

# keys per settled_keys query, so a large batch asks in bounded arrays rather than one huge one
_KEY_CHUNK = 5000


@dataclass
class Unit:
    """One item x trial: the calls still to make for it."""

    item: GoldenItem
    trial: int
    key: str  # the grader or candidate call
    judge_key: str | None = None
    call_main: bool = True
    candidate_run_id: uuid.UUID | None = None  # when the candidate settled in an earlier run
    candidate_answer: str | None = None


def _key(
    run: RunContext,
    item: GoldenItem,
    role: str,
    model_name: str,
    prompt: PromptTemplate,
    params: dict[str, Any],
    trial: int,
    *extra: Any,
) -> str:
    return idempotency_key(
        run.batch_key,
        item.item_hash,
        role,
        model_name,
        run.config.model(model_name).model,
        prompt.version,
        params,
        trial,
        *extra,
    )


def plan(run: RunContext, trials: int, limit: int | None) -> list[Unit]:
    """Every unit of the batch, settled or not (resume drops what settled)."""
    suite = run.suite
    items = suite.items[:limit] if limit is not None else suite.items
    grader = suite.kind == "grader"
    main_role = "grader" if grader else "candidate"
    main_prompt = run.prompts["main"]
    main_params = run.params(run.model, json_reply=grader)
    judge_params = run.params(run.judge, True) if run.judge else {}
    units = []
    for trial in range(trials):
        for item in items:
            key = _key(run, item, main_role, run.model, main_prompt, main_params, trial)
            judge_key = None
            if not grader and item.scorer is None:
                judge_key = _key(
                    run, item, "judge", run.judge, run.prompts["judge"], judge_params, trial, key
                )
            units.append(Unit(item, trial, key, judge_key))
    return units


def settled_among(conn: psycopg.Connection, units: list[Unit]) -> set[str]:
    """The keys of these units' calls that already have a settled row."""
    keys = [u.key for u in units] + [u.judge_key for u in units if u.judge_key]
    settled: set[str] = set()
    for offset in range(0, len(keys), _KEY_CHUNK):
        settled |= settled_keys(conn, keys[offset : offset + _KEY_CHUNK])
    return settled


def resume_calls(conn: psycopg.Connection, units: list) -> tuple[list, int]:
    """The units whose call has not settled yet, and how many have: for units that are one
    call each (a pairwise run's, a regrade's), with a `key`."""
    settled: set[str] = set()
    keys = [u.key for u in units]
    for offset in range(0, len(keys), _KEY_CHUNK):
        settled |= settled_keys(conn, keys[offset : offset + _KEY_CHUNK])
    return [u for u in units if u.key not in settled], len(settled)


def resume(conn: psycopg.Connection, units: list[Unit]) -> tuple[list[Unit], int]:
    """Drop what settled before; a settled candidate whose judge is missing gets judged."""
    settled = settled_among(conn, units)
    todo, needs_answer = [], {}
    for unit in units:
        main_done = unit.key in settled
        judge_done = unit.judge_key is None or unit.judge_key in settled
        if main_done and judge_done:
            continue
        unit.call_main = not main_done
        if main_done:
            needs_answer[unit.key] = unit
        todo.append(unit)
    if needs_answer:
        answers = settled_runs(conn, needs_answer, ("run_id", "output_text"))
        for key, (run_id, output_text) in answers.items():
            needs_answer[key].candidate_run_id = run_id
            needs_answer[key].candidate_answer = output_text or ""
    return todo, len(settled)
