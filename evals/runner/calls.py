"""The call-and-grade path of one unit: render, call, parse or score, one run-log row per call.

Honest by construction: provider failures are rows with status error / timeout and their
attempts, replies that do not parse are parse_error rows with the raw text, never a silent
score. A grader suite makes one `grader` call per unit. An answer suite makes a `candidate`
call, then either scores it with the item's deterministic scorer (on the candidate row) or makes
a `judge` call whose row points at the candidate row (parent_run_id).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from evals.batches import ATTRIBUTE
from evals.judging import (
    JSON_RESPONSE_FORMAT,
    Grade,
    Rendered,
    call_metadata,
    item_truth,
    parse_grade,
    render_candidate,
    render_grader,
    render_judge,
    score_deterministic,
)
from evals.runlog import RunRecord

if TYPE_CHECKING:
    from evals.llm import CallResult, LLMClient
    from evals.runner.context import RunContext
    from evals.runner.units import Unit


class UnitCaller:
    """Makes the calls of units and hands each finished row to `emit` (the writer)."""

    def __init__(
        self, run: RunContext, client: LLMClient, emit: Callable[[RunRecord], None]
    ) -> None:
        self.run, self.client, self.emit = run, client, emit

    def _metadata(self, role: str, unit: Unit, **extra: Any) -> dict[str, Any]:
        run, item = self.run, unit.item
        return call_metadata(
            run.suite,
            role=role,
            item_id=f"{run.suite.name}/{item.item_id}",
            trial=unit.trial,
            stage=item.stage,
            as_of=(run.as_of or date.today()).isoformat(),
            **item_truth(item),
            **extra,
        )

    def _record(
        self,
        unit: Unit,
        role: str,
        model_name: str,
        key: str,
        rendered: Rendered,
        params: dict[str, Any],
        result: CallResult,
        grade: Grade | None,
        **fields: Any,
    ) -> RunRecord:
        item = unit.item
        status = result.status if grade is None or not result.ok else grade.status
        timings = dict(result.timings)
        if grade is not None:
            timings["parse_ms"] = grade.parse_ms
        parse_failed = grade is not None and grade.status == "parse_error" and result.ok
        return RunRecord(
            idempotency_key=key,
            role=role,
            model=model_name,
            started_at=result.started_at,
            status=status,
            **self._unit_columns(unit),
            rubric=item.rubric,
            prior_context=item.prior_context,
            inputs=rendered.inputs,
            messages=rendered.messages,
            params=params,
            response_model=result.response_model,
            provider=result.provider,
            prompt_name=rendered.prompt_name,
            prompt_version=rendered.prompt_version,
            output_text=result.text,
            verdict=grade.verdict if grade else None,
            passed=grade.passed if grade else None,
            score=grade.score if grade else None,
            feedback=grade.feedback if grade else None,
            issue_tags=grade.issue_tags if grade else [],
            expected_verdict=item.expected_verdict,
            latency_ms=result.latency_ms,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=result.cost_usd,
            timings=timings,
            attributes=self._attributes(unit, model_name, grade),
            error_class="ParseError" if parse_failed else result.error_class,
            error_message=grade.problem if parse_failed else result.error_message,
            attempts=result.attempts,
            **fields,
        )

    def _unit_columns(self, unit: Unit) -> dict[str, Any]:
        """The columns every row of the unit shares: where it ran and which item it is."""
        run, item = self.run, unit.item
        return {
            "source": run.source,
            "batch_id": run.batch_key,
            "trial": unit.trial,
            "suite": run.suite.name,
            "suite_version": run.suite.version,
            "item_id": item.item_id,
            "item_hash": item.item_hash,
            "stage": item.stage,
            "category": item.category,
            "orchestrator_run_id": run.orchestrator_run_id,
            "code_version": run.code_version,
        }

    def _attributes(self, unit: Unit, model_name: str, grade: Grade | None) -> dict[str, Any]:
        """What the columns do not hold: the LiteLLM model behind the name, how the run was
        started, the item's expected tags and the reply's tags the suite does not know."""
        run = self.run
        attributes: dict[str, Any] = {
            "litellm_model": run.config.model(model_name).model,
            "invocation": run.invocation,
            ATTRIBUTE: str(run.batch.batch_id),
            "expected_issue_tags": list(unit.item.expected_issue_tags),
        }
        if run.as_of is not None:
            attributes["as_of"] = run.as_of.isoformat()
        if grade is not None and grade.unknown_tags:
            attributes["unknown_issue_tags"] = grade.unknown_tags
        return attributes

    async def _call(
        self,
        unit: Unit,
        role: str,
        model_name: str,
        rendered: Rendered,
        json_reply: bool,
        **tags: Any,
    ) -> tuple[CallResult, dict]:
        params = self.run.params(model_name, json_reply)
        result = await self.client.acomplete(
            model_name,
            rendered.messages,
            metadata=self._metadata(role, unit, **tags),
            response_format=JSON_RESPONSE_FORMAT if json_reply else None,
        )
        return result, params

    async def run_unit(self, unit: Unit) -> None:
        """The unit's remaining calls; a failed candidate leaves its judge for the next run."""
        run = self.run
        suite, item = run.suite, unit.item
        if suite.kind == "grader":
            rendered = render_grader(suite, item, run.prompts["main"])
            result, params = await self._call(unit, "grader", run.model, rendered, True)
            grade = parse_grade(result.text, suite) if result.ok else None
            self.emit(
                self._record(
                    unit,
                    "grader",
                    run.model,
                    unit.key,
                    rendered,
                    params,
                    result,
                    grade,
                    submission=item.submission,
                )
            )
            return
        answer, candidate_run_id = unit.candidate_answer, unit.candidate_run_id
        if unit.call_main:
            rendered = render_candidate(item, run.prompts["main"])
            result, params = await self._call(unit, "candidate", run.model, rendered, False)
            grade = (
                score_deterministic(suite, item, result.text or "")
                if result.ok and item.scorer is not None
                else None
            )
            record = self._record(
                unit, "candidate", run.model, unit.key, rendered, params, result, grade
            )
            self.emit(record)
            if not result.ok:
                return
            answer, candidate_run_id = result.text or "", record.run_id
            unit.call_main, unit.candidate_run_id = False, candidate_run_id
        if unit.judge_key is None or answer is None:
            return
        rendered = render_judge(suite, item, answer, run.prompts["judge"])
        result, params = await self._call(
            unit, "judge", run.judge, rendered, True, candidate_answer=answer
        )
        grade = parse_grade(result.text, suite) if result.ok else None
        self.emit(
            self._record(
                unit,
                "judge",
                run.judge,
                unit.judge_key,
                rendered,
                params,
                result,
                grade,
                submission=answer,
                parent_run_id=candidate_run_id,
            )
        )

    def failure(self, unit: Unit, exc: Exception) -> RunRecord:
        """An error row for a unit that raised outside the LLM call (retried next run)."""
        from datetime import UTC, datetime

        from evals.redact import scrub

        run = self.run
        grader = run.suite.kind == "grader"
        role = "grader" if grader else ("candidate" if unit.call_main else "judge")
        model = run.judge if role == "judge" else run.model
        return RunRecord(
            idempotency_key=unit.judge_key if role == "judge" else unit.key,
            role=role,
            model=model,
            started_at=datetime.now(UTC),
            status="error",
            **self._unit_columns(unit),
            parent_run_id=unit.candidate_run_id if role == "judge" else None,
            error_class=type(exc).__name__,
            error_message=scrub(str(exc))[:2000],
            attempts=0,
            attributes={
                "invocation": run.invocation,
                ATTRIBUTE: str(run.batch.batch_id),
                "failed_in": "runner",
            },
        )
