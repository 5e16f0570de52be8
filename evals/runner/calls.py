"""The call-and-grade path of one unit: render, call, parse or score, one run-log row per call.

Honest by construction: provider failures are rows with status error / timeout and their
attempts, replies that do not parse are parse_error rows with the raw text, never a silent
score. A grader suite makes one `grader` call per unit. An answer suite makes a `candidate`
call, then either scores it with the item's deterministic scorer (on the candidate row) or makes
a `judge` call whose row points at the candidate row (parent_run_id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evals.judging import (
    JSON_RESPONSE_FORMAT,
    Grade,
    Rendered,
    item_truth,
    parse_grade,
    render_candidate,
    render_grader,
    render_judge,
    score_deterministic,
)
from evals.runner.context import call_record, failure_record

if TYPE_CHECKING:
    from evals.llm import CallResult, LLMClient
    from evals.runlog import RunRecord
    from evals.runner.context import RunContext
    from evals.runner.units import Unit


class UnitCaller:
    """Makes the calls of units and hands each finished row to `emit` (the writer)."""

    def __init__(
        self, run: RunContext, client: LLMClient, emit: Callable[[RunRecord], None]
    ) -> None:
        self.run, self.client, self.emit = run, client, emit

    def _record(
        self,
        unit: Unit,
        role: str,
        model_name: str,
        key: str,
        rendered: Rendered,
        json_reply: bool,
        result: CallResult,
        grade: Grade | None,
        **fields: Any,
    ) -> RunRecord:
        item = unit.item
        parse_failed = grade is not None and grade.status == "parse_error" and result.ok
        return call_record(
            self.run,
            item,
            unit.trial,
            key,
            role,
            model_name,
            rendered,
            result,
            json_reply=json_reply,
            status=result.status if grade is None or not result.ok else grade.status,
            attributes=self._attributes(unit, model_name, grade),
            problem=grade.problem if parse_failed else None,
            parse_ms=grade.parse_ms if grade is not None else None,
            verdict=grade.verdict if grade else None,
            passed=grade.passed if grade else None,
            score=grade.score if grade else None,
            feedback=grade.feedback if grade else None,
            issue_tags=grade.issue_tags if grade else [],
            expected_verdict=item.expected_verdict,
            **fields,
        )

    def _attributes(self, unit: Unit, model_name: str, grade: Grade | None) -> dict[str, Any]:
        """The run's attributes, the item's expected tags and the reply's tags the suite does
        not know."""
        extra: dict[str, Any] = {"expected_issue_tags": list(unit.item.expected_issue_tags)}
        if grade is not None and grade.unknown_tags:
            extra["unknown_issue_tags"] = grade.unknown_tags
        return self.run.attributes(model_name, **extra)

    async def _call(
        self,
        unit: Unit,
        role: str,
        model_name: str,
        rendered: Rendered,
        json_reply: bool,
        **tags: Any,
    ) -> CallResult:
        run, item = self.run, unit.item
        return await self.client.acomplete(
            model_name,
            rendered.messages,
            metadata=run.metadata(item, role, unit.trial, run.suite, **item_truth(item), **tags),
            response_format=JSON_RESPONSE_FORMAT if json_reply else None,
        )

    async def run_unit(self, unit: Unit) -> None:
        """The unit's remaining calls; a failed candidate leaves its judge for the next run."""
        run = self.run
        suite, item = run.suite, unit.item
        if suite.kind == "grader":
            rendered = render_grader(suite, item, run.prompts["main"])
            result = await self._call(unit, "grader", run.model, rendered, True)
            grade = parse_grade(result.text, suite) if result.ok else None
            self.emit(
                self._record(
                    unit,
                    "grader",
                    run.model,
                    unit.key,
                    rendered,
                    True,
                    result,
                    grade,
                    submission=item.submission,
                )
            )
            return
        answer, candidate_run_id = unit.candidate_answer, unit.candidate_run_id
        if unit.call_main:
            rendered = render_candidate(item, run.prompts["main"])
            result = await self._call(unit, "candidate", run.model, rendered, False)
            grade = (
                score_deterministic(suite, item, result.text or "")
                if result.ok and item.scorer is not None
                else None
            )
            record = self._record(
                unit, "candidate", run.model, unit.key, rendered, False, result, grade
            )
            self.emit(record)
            if not result.ok:
                return
            answer, candidate_run_id = result.text or "", record.run_id
            unit.call_main, unit.candidate_run_id = False, candidate_run_id
        if unit.judge_key is None or answer is None:
            return
        rendered = render_judge(suite, item, answer, run.prompts["judge"])
        result = await self._call(unit, "judge", run.judge, rendered, True, candidate_answer=answer)
        grade = parse_grade(result.text, suite) if result.ok else None
        self.emit(
            self._record(
                unit,
                "judge",
                run.judge,
                unit.judge_key,
                rendered,
                True,
                result,
                grade,
                submission=answer,
                parent_run_id=candidate_run_id,
            )
        )

    def failure(self, unit: Unit, exc: Exception) -> RunRecord:
        """An error row for a unit that raised outside the LLM call (retried next run)."""
        run = self.run
        grader = run.suite.kind == "grader"
        role = "grader" if grader else ("candidate" if unit.call_main else "judge")
        model = run.judge if role == "judge" else run.model
        return failure_record(
            run,
            unit.item,
            unit.trial,
            unit.judge_key if role == "judge" else unit.key,
            role,
            model,
            exc,
            run.attributes(model),
            parent_run_id=unit.candidate_run_id if role == "judge" else None,
        )
