"""The calls of a pairwise run: a side answers an item, or the judge compares a pair by slot.

The judge names a slot (`first`, `second`, `tie`); the row stores the verdict in the item's own
labelling (`a`, `b`, `tie`) whatever order the pair was shown in, the slot in
`attributes.slot_verdict` and the raw reply in `output_text`. A reply that names no slot is a
`parse_error` row with a null verdict: never a guess, never scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from evals.batches import ATTRIBUTE
from evals.judging import (
    JSON_RESPONSE_FORMAT,
    Rendered,
    call_metadata,
    match_verdict,
    parse_json_reply,
    render_candidate,
)
from evals.pairwise.units import Generation, Judgment
from evals.runlog import RunRecord

if TYPE_CHECKING:
    from evals.golden import GoldenItem
    from evals.llm import CallResult, LLMClient
    from evals.pairwise.context import PairContext

SLOTS = ("first", "second", "tie")


def render_pair(run: PairContext, unit: Judgment) -> Rendered:
    """The judge's messages: the question, the reference if any, the pair in `unit`'s order."""
    item, (first, second) = unit.item, unit.shown
    inputs = {
        "question": item.question,
        "prior_context": item.prior_context,
        "reference": item.expected_answer,
        "rubric": item.rubric,
        "first": getattr(unit, first).text,
        "second": getattr(unit, second).text,
    }
    prompt = run.judge_prompt
    return Rendered(prompt.name, prompt.version, prompt.render(**inputs), inputs)


def parse_slot(text: str | None) -> tuple[str | None, str | None]:
    """(slot, problem): the slot the reply names, or None and why it could not be read."""
    data = parse_json_reply(text)
    if data is None:
        return None, "no JSON object in the reply"
    slot = match_verdict(data.get("verdict"), SLOTS)
    if slot is None:
        return None, f"verdict {str(data.get('verdict'))[:80]!r} is not one of first, second, tie"
    return slot, None


def item_verdict(slot: str, unit: Judgment) -> str:
    """The judge's slot in the item's own labelling."""
    first, second = unit.shown
    return {"first": first, "second": second, "tie": "tie"}[slot]


class PairCaller:
    """Makes the unit's call and hands its row to `emit` (the runner's writer)."""

    def __init__(
        self, run: PairContext, client: LLMClient, emit: Callable[[RunRecord], None]
    ) -> None:
        self.run, self.client, self.emit = run, client, emit

    def _metadata(self, item: GoldenItem, role: str, trial: int, **extra: Any) -> dict[str, Any]:
        run = self.run
        return call_metadata(
            None,
            role=role,
            item_id=f"{run.suite.name}/{item.item_id}",
            trial=trial,
            stage=item.stage,
            as_of=(run.as_of or date.today()).isoformat(),
            expected_answer=item.expected_answer,
            **extra,
        )

    def _attributes(self, model_name: str, **extra: Any) -> dict[str, Any]:
        run = self.run
        attributes = {
            "litellm_model": run.config.model(model_name).model,
            "invocation": run.invocation,
            ATTRIBUTE: str(run.batch.batch_id),
            **extra,
        }
        if run.as_of is not None:
            attributes["as_of"] = run.as_of.isoformat()
        return attributes

    async def run_unit(self, unit: Generation | Judgment) -> None:
        if isinstance(unit, Generation):
            await self._generate(unit)
        else:
            await self._judge(unit)

    async def _generate(self, unit: Generation) -> None:
        item, side = unit.item, unit.side
        rendered = render_candidate(item, side.prompt)
        result = await self.client.acomplete(
            side.model, rendered.messages, metadata=self._metadata(item, "candidate", 0)
        )
        self.emit(
            self._record(
                unit.key,
                item,
                0,
                "candidate",
                side.model,
                rendered,
                self.run.params(side.model, False),
                result,
                attributes=self._attributes(side.model, contestant=side.label),
            )
        )

    async def _judge(self, unit: Judgment) -> None:
        run, item = self.run, unit.item
        rendered = render_pair(run, unit)
        result = await self.client.acomplete(
            run.judge,
            rendered.messages,
            metadata=self._metadata(
                item,
                "judge",
                unit.trial,
                position=unit.position,
                response_a=unit.a.text,
                response_b=unit.b.text,
                contestant_a=unit.a.contestant,
                contestant_b=unit.b.contestant,
                expected_verdict=run.reference_preference(item),
            ),
            response_format=JSON_RESPONSE_FORMAT if run.config.model(run.judge).json_mode else None,
        )
        started = time.perf_counter()
        slot, problem = parse_slot(result.text) if result.ok else (None, None)
        parse_ms = round((time.perf_counter() - started) * 1000, 3)
        self.emit(
            self._record(
                unit.key,
                item,
                unit.trial,
                "judge",
                run.judge,
                rendered,
                run.params(run.judge, True),
                result,
                attributes=self._attributes(
                    run.judge, **self._pair_attributes(unit), slot_verdict=slot
                ),
                verdict=item_verdict(slot, unit) if slot else None,
                problem=problem,
                parse_ms=parse_ms,
                expected_verdict=run.reference_preference(item),
            )
        )

    @staticmethod
    def _pair_attributes(unit: Judgment) -> dict[str, Any]:
        return {
            "position": unit.position,
            "contestant_a": unit.a.contestant,
            "contestant_b": unit.b.contestant,
            "response_a_run_id": str(unit.a.run_id) if unit.a.run_id else None,
            "response_b_run_id": str(unit.b.run_id) if unit.b.run_id else None,
        }

    def _record(
        self,
        key: str,
        item: GoldenItem,
        trial: int,
        role: str,
        model_name: str,
        rendered: Rendered,
        params: dict[str, Any],
        result: CallResult,
        *,
        attributes: dict[str, Any],
        verdict: str | None = None,
        problem: str | None = None,
        parse_ms: float | None = None,
        expected_verdict: str | None = None,
    ) -> RunRecord:
        timings = dict(result.timings)
        if parse_ms is not None:
            timings["parse_ms"] = parse_ms
        return RunRecord(
            idempotency_key=key,
            role=role,
            model=model_name,
            started_at=result.started_at,
            status="parse_error" if problem else result.status,
            **self.run.columns(item, trial),
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
            verdict=verdict,
            expected_verdict=expected_verdict,
            latency_ms=result.latency_ms,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=result.cost_usd,
            timings=timings,
            attributes=attributes,
            error_class="ParseError" if problem else result.error_class,
            error_message=problem or result.error_message,
            attempts=result.attempts,
        )

    def failure(self, unit: Generation | Judgment, exc: Exception) -> RunRecord:
        """An error row for a unit that raised outside the LLM call (retried next run)."""
        from evals.redact import scrub

        judged = isinstance(unit, Judgment)
        model = self.run.judge if judged else unit.side.model
        return RunRecord(
            idempotency_key=unit.key,
            role="judge" if judged else "candidate",
            model=model,
            started_at=datetime.now(UTC),
            status="error",
            **self.run.columns(unit.item, unit.trial if judged else 0),
            error_class=type(exc).__name__,
            error_message=scrub(str(exc))[:2000],
            attempts=0,
            attributes=self._attributes(
                model, failed_in="runner", **(self._pair_attributes(unit) if judged else {})
            ),
        )
