"""What a pairwise run compares: the request, the two sides that answer, the contestants' labels.

A side is `MODEL[@PROMPT]`: a configured model answering with the shipped candidate prompt, or
with PROMPT — a template file, or a prompt version stored in raw.prompt_versions (any version a
run used before). Its contestant label is `<model>` with the shipped prompt, else
`<model>@<prompt version>`, so a prompt change is a new contestant in the rating marts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from evals.prompts import ANSWER_CANDIDATE, PromptTemplate, load_prompt
from evals.runner.inputs import RunnerError

if TYPE_CHECKING:
    import psycopg

    from evals.config import Config
    from evals.golden import Suite

ORDERS = ("ab", "ba")
"""Positions: `ab` shows response A in the first slot, `ba` response B first."""


@dataclass(frozen=True)
class PairwiseRequest:
    """One pairwise run: the CLI, the nightly asset and the gate build it.

    `suite` is a pairwise suite, or an answer suite whose questions both sides answer.
    `baseline` / `candidate` (`MODEL[@PROMPT]`) answer the items that have no stored responses
    (A = baseline, B = candidate). `orders` 2 judges each pair in both orders, 1 only A first.
    `batch_key` defaults to `<source>:<suite>@<version>`, plus `:<baseline>~<candidate>` when
    sides answer: the same key skips what settled and reuses generated responses.
    """

    suite: Suite | str
    judge: str
    baseline: str | None = None
    candidate: str | None = None
    orders: int = 2
    trials: int = 1
    limit: int | None = None
    source: str = "golden"
    batch_key: str | None = None
    as_of: date | None = None
    orchestrator_run_id: str | None = None
    concurrency: int | None = None
    kind: str = "run"
    started_by: str | None = None


@dataclass(frozen=True)
class Side:
    """One answering side: a model and the prompt it answers with."""

    model: str
    prompt: PromptTemplate

    @property
    def label(self) -> str:
        """Its contestant label: the model alone with the shipped prompt."""
        if self.prompt.version == load_prompt(ANSWER_CANDIDATE).version:
            return self.model
        return f"{self.model}@{self.prompt.version}"


def resolve_side(config: Config, conn: psycopg.Connection, spec: str) -> Side:
    """`MODEL[@PROMPT]` as a side; RunnerError when the model or the prompt is unknown."""
    model, at, prompt = spec.strip().partition("@")
    if not model or (at and not prompt):
        raise RunnerError(f"expected MODEL or MODEL@PROMPT, got {spec!r}")
    config.require_credentials(model)
    if not prompt:
        return Side(model, load_prompt(ANSWER_CANDIDATE))
    if Path(prompt).is_file():
        return Side(model, PromptTemplate.from_file(prompt, ANSWER_CANDIDATE))
    row = conn.execute(
        "select template from raw.prompt_versions where prompt_version = %s limit 1", (prompt,)
    ).fetchone()
    if row is None:
        raise RunnerError(
            f"{spec!r}: {prompt!r} is neither a prompt file nor a stored prompt version"
        )
    return Side(model, PromptTemplate.from_text(ANSWER_CANDIDATE, row[0]))
