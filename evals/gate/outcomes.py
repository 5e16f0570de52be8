"""What the gate reads and what it decides: per-item outcomes in, criteria and a decision out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

DECISIONS = ("deploy", "no-deploy", "insufficient-data")
KINDS = ("accuracy", "pairwise")
EXIT_CODES = {"deploy": 0, "no-deploy": 1, "insufficient-data": 3}
STATUSES = ("pass", "warn", "fail", "insufficient", "skipped")


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """`MODEL[@PROMPT_VERSION]`: a configured model, optionally pinned to one prompt version."""

    model: str
    prompt_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        model, at, version = text.strip().partition("@")
        if not model or (at and not version):
            raise ValueError(f"expected MODEL or MODEL@PROMPT_VERSION, got {text!r}")
        return cls(model=model, prompt_version=version or None)

    def __str__(self) -> str:
        return f"{self.model}@{self.prompt_version}" if self.prompt_version else self.model


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One side's settled result on one golden item.

    `correct` is None when the item has no settled call (every attempt failed).
    """

    item_id: str
    stage: str | None
    category: str | None
    correct: bool | None
    status: str
    run_id: str | None = None
    verdict: str | None = None
    expected: str | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class SideResults:
    """All a side contributes: per-item outcomes and its call counts (failed attempts too)."""

    spec: ModelSpec
    outcomes: Mapping[str, ItemOutcome]
    calls: int
    failed_calls: int

    @property
    def settled(self) -> list[ItemOutcome]:
        return [o for o in self.outcomes.values() if o.correct is not None]


VERDICT_SCORES = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True, slots=True)
class Judgment:
    """One settled pairwise judgment of the candidate against the baseline on one item.

    `outcome` is the candidate's: win, tie or loss, read from the verdict in the item's own
    labelling and the side the candidate was (contestant a or b); None for a parse error.
    """

    item_id: str
    stage: str | None
    category: str | None
    position: str | None
    trial: int
    outcome: str | None
    status: str
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class PairwiseJudgments:
    """Every judgment of one cohort (suite version × judge × judge prompt version) between the
    two sides, and the judge's call counts (failed attempts too)."""

    baseline: str
    candidate: str
    judge: str
    judge_prompt_version: str | None
    suite_version: str | None
    judgments: tuple[Judgment, ...]
    calls: int
    failed_calls: int


# --- outputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criterion:
    """One criterion of the gate with its verdict, the threshold in words, and its evidence."""

    name: str
    status: str
    summary: str
    threshold: str
    observed: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")


@dataclass(frozen=True, slots=True)
class AffectedItem:
    """An item the candidate got wrong where the baseline was right (or a safety item)."""

    item_id: str
    stage: str | None
    category: str | None
    expected: str | None
    baseline_verdict: str | None
    candidate_verdict: str | None
    baseline_run_id: str | None
    candidate_run_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class GateDecision:
    decision_id: str
    suite: str
    suite_version: str | None
    baseline: str
    candidate: str
    decision: str
    criteria: tuple[Criterion, ...]
    summary: dict[str, Any]
    affected_items: tuple[AffectedItem, ...]
    decided_at: datetime
    report_path: str | None = None
    kind: str = "accuracy"
    judge: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status == "fail"]

    def insufficient(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status == "insufficient"]

    def criteria_json(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.criteria]
