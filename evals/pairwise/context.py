"""What every call of one pairwise run shares: suite, judge, prompts, sides, the batch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any

from evals.batches import BatchSpec, lineage_of
from evals.runner.context import call_params
from evals.runner.inputs import code_version

if TYPE_CHECKING:
    from evals.config import Config
    from evals.golden import GoldenItem, Suite
    from evals.pairwise.request import Side
    from evals.prompts import PromptTemplate


@dataclass(frozen=True)
class PairContext:
    """One invocation of run_pairwise. `sides` is (baseline, candidate) or None when every
    item carries its two responses."""

    config: Config
    suite: Suite
    judge: str
    judge_prompt: PromptTemplate
    sides: tuple[Side, Side] | None
    source: str
    batch_key: str
    as_of: date | None
    orchestrator_run_id: str | None
    kind: str = "run"
    started_by: str = "cli"
    code_version: str = field(default_factory=code_version)
    invocation: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @cached_property
    def batch(self) -> BatchSpec:
        """The batch record: the judge's work on this suite (the sides are in the batch key)."""
        return BatchSpec(
            kind=self.kind,
            batch_key=self.batch_key,
            source=self.source,
            model=self.judge,
            started_by=self.started_by,
            suite=self.suite.name,
            suite_version=self.suite.version,
            prompt_version=self.judge_prompt.version,
            judge=self.judge,
            judge_prompt_version=self.judge_prompt.version,
            code_version=self.code_version,
            lineage=lineage_of(self.config, self.judge),
        )

    def params(self, model_name: str, json_reply: bool) -> dict[str, Any]:
        return call_params(self.config, model_name, json_reply)

    def reference_preference(self, item: GoldenItem) -> str | None:
        """The item's reference preference (a / b / tie): only a pairwise suite has one."""
        return item.expected_verdict if self.suite.kind == "pairwise" else None

    def columns(self, item: GoldenItem, trial: int) -> dict[str, Any]:
        """The columns every row of the item shares: where it ran and which item it is."""
        return {
            "source": self.source,
            "batch_id": self.batch_key,
            "trial": trial,
            "suite": self.suite.name,
            "suite_version": self.suite.version,
            "item_id": item.item_id,
            "item_hash": item.item_hash,
            "stage": item.stage,
            "category": item.category,
            "orchestrator_run_id": self.orchestrator_run_id,
            "code_version": self.code_version,
        }
