"""The calls of a pairwise run: a side answers an item, or the judge compares a pair by slot.

The judge names a slot (`first`, `second`, `tie`); the row stores the verdict in the item's own
labelling (`a`, `b`, `tie`) whatever order the pair was shown in, the slot in
`attributes.slot_verdict` and the raw reply in `output_text`. A reply that names no slot is a
`parse_error` row with a null verdict: never a guess, never scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evals.judging import (
    JSON_RESPONSE_FORMAT,
    Rendered,
    match_verdict,
    parse_json_reply,
    render_candidate,
)
from evals.pairwise.units import Generation, Judgment
from evals.runner.context import call_record, failure_record

if TYPE_CHECKING:
    from evals.golden import GoldenItem
    from evals.llm import LLMClient
    from evals.pairwise.context import PairContext
    from evals.runlog import RunRecord

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
        return self.run.metadata(
            item, role, trial, None, expected_answer=item.expected_answer, **extra
        )

    async def run_unit(self, unit: Generation | Judgment) -> None:
        if isinstance(unit, Generation):
            await self._generate(unit)
        else:
            await self._judge(unit)

    async def _generate(self, unit: Generation) -> None:
        run, item, side = self.run, unit.item, unit.side
        rendered = render_candidate(item, side.prompt)
        result = await self.client.acomplete(
            side.model, rendered.messages, metadata=self._metadata(item, "candidate", 0)
        )
        self.emit(
            call_record(
                run,
                item,
                0,
                unit.key,
                "candidate",
                side.model,
                rendered,
                result,
                json_reply=False,
                status=result.status,
                attributes=run.attributes(side.model, contestant=side.label),
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
            call_record(
                run,
                item,
                unit.trial,
                unit.key,
                "judge",
                run.judge,
                rendered,
                result,
                json_reply=True,
                status="parse_error" if problem else result.status,
                attributes=run.attributes(
                    run.judge, **self._pair_attributes(unit), slot_verdict=slot
                ),
                problem=problem,
                parse_ms=parse_ms,
                verdict=item_verdict(slot, unit) if slot else None,
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

    def failure(self, unit: Generation | Judgment, exc: Exception) -> RunRecord:
        """An error row for a unit that raised outside the LLM call (retried next run)."""
        judged = isinstance(unit, Judgment)
        model = self.run.judge if judged else unit.side.model
        return failure_record(
            self.run,
            unit.item,
            unit.trial if judged else 0,
            unit.key,
            "judge" if judged else "candidate",
            model,
            exc,
            self.run.attributes(model, **(self._pair_attributes(unit) if judged else {})),
        )
