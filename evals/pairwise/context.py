"""What every call of one pairwise run shares: suite, judge, prompts, sides, the batch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from evals.batches import BatchSpec, lineage_of
from evals.runner.context import RunSettings

if TYPE_CHECKING:
    from evals.golden import GoldenItem
    from evals.pairwise.request import Side
    from evals.prompts import PromptTemplate


@dataclass(frozen=True, kw_only=True)
class PairContext(RunSettings):
    """One invocation of run_pairwise (the runner's RunSettings, plus the judge and sides).
    `sides` is (baseline, candidate) or None when every item carries its two responses."""

    judge: str
    judge_prompt: PromptTemplate
    sides: tuple[Side, Side] | None

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

    def reference_preference(self, item: GoldenItem) -> str | None:
        """The item's reference preference (a / b / tie): only a pairwise suite has one."""
        return item.expected_verdict if self.suite.kind == "pairwise" else None
