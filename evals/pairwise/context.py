"""What every call of one pairwise run shares: suite, judge, prompts, sides, the batch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from evals.runner.context import RunSettings

if TYPE_CHECKING:
    from evals.batches import BatchSpec
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
        version = self.judge_prompt.version
        return self.batch_spec(self.judge, version, self.judge, version)

    def reference_preference(self, item: GoldenItem) -> str | None:
        """The item's reference preference (a / b / tie): only a pairwise suite has one."""
        return item.expected_verdict if self.suite.kind == "pairwise" else None
