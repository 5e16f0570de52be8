"""Pairwise judgment rows exactly as the contract writes them (docs/pairwise.md), for tests that
read them before the runner exists in their branch: one `role='judge'` row per judgment, the
verdict in the item's labelling, `attributes.position` ab / ba and the slot the judge chose."""

from __future__ import annotations

import uuid
from datetime import datetime

from evals.runlog import RunRecord, idempotency_key

SLOT = {("ab", "a"): "first", ("ab", "b"): "second", ("ba", "a"): "second", ("ba", "b"): "first"}


def judgment(
    item_id: str,
    *,
    suite: str,
    suite_version: str,
    judge: str,
    judge_prompt_version: str,
    contestants: tuple[str, str],
    position: str,
    verdict: str | None,
    started_at: datetime,
    trial: int = 0,
    batch_id: str = "golden:2026-11-01",
    stage: str | None = None,
    category: str | None = None,
    source: str = "golden",
    status: str | None = None,
    responses: tuple[uuid.UUID | None, uuid.UUID | None] = (None, None),
) -> RunRecord:
    """One judgment; `verdict` None is a parse error (unless `status` says otherwise)."""
    status = status or ("ok" if verdict is not None else "parse_error")
    return RunRecord(
        idempotency_key=idempotency_key(
            batch_id, suite, item_id, judge, judge_prompt_version, *contestants, position, trial
        ),
        source=source,
        role="judge",
        model=judge,
        prompt_version=judge_prompt_version,
        started_at=started_at,
        status=status,
        batch_id=batch_id,
        trial=trial,
        suite=suite,
        suite_version=suite_version,
        item_id=item_id,
        stage=stage,
        category=category,
        verdict=verdict if status == "ok" else None,
        output_text=f"[[{verdict}]]" if verdict else "I cannot decide",
        attributes={
            "position": position,
            "contestant_a": contestants[0],
            "contestant_b": contestants[1],
            "response_a_run_id": str(responses[0]) if responses[0] else None,
            "response_b_run_id": str(responses[1]) if responses[1] else None,
            "slot_verdict": ("tie" if verdict == "tie" else SLOT.get((position, verdict or "")))
            if status == "ok"
            else None,
        },
    )
