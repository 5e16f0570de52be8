"""What every call of one invocation shares: the suite, the models, the prompts, the batch.

One frozen value instead of a class holding everything, so planning, calling, writing and the
closing accuracy query each take only this and stay separate modules. `RunSettings` is what a
golden run (`RunContext`) and a pairwise run (evals.pairwise.context) share, with the columns,
attributes and metadata of their rows, and `call_record` / `failure_record` build those rows,
so both runs write them one way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from evals.batches import ATTRIBUTE, BatchSpec, lineage_of
from evals.judging import JSON_RESPONSE_FORMAT, call_metadata
from evals.runlog import RunRecord
from evals.runner.inputs import code_version

if TYPE_CHECKING:
    from evals.config import Config
    from evals.golden import GoldenItem, Suite
    from evals.judging import Rendered
    from evals.llm import CallResult
    from evals.prompts import PromptTemplate


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """One invocation of a run over a suite: where its rows go and how they are labelled."""

    config: Config
    suite: Suite
    source: str
    batch_key: str
    as_of: date | None
    orchestrator_run_id: str | None
    kind: str = "run"
    started_by: str = "cli"
    code_version: str = field(default_factory=code_version)
    invocation: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def batch(self) -> BatchSpec:
        """The batch record this invocation opens (or reopens) and stamps on every row."""
        raise NotImplementedError

    def batch_spec(
        self,
        model: str,
        prompt_version: str,
        judge: str | None = None,
        judge_prompt_version: str | None = None,
    ) -> BatchSpec:
        """The batch record of this invocation's work by `model` (its identity, evals.batches)."""
        return BatchSpec(
            kind=self.kind,
            batch_key=self.batch_key,
            source=self.source,
            model=model,
            started_by=self.started_by,
            suite=self.suite.name,
            suite_version=self.suite.version,
            prompt_version=prompt_version,
            judge=judge,
            judge_prompt_version=judge_prompt_version,
            code_version=self.code_version,
            lineage=lineage_of(self.config, model),
        )

    def params(self, model_name: str, json_reply: bool) -> dict[str, Any]:
        """The call parameters of a model as stored on its rows (and hashed into its keys)."""
        return call_params(self.config, model_name, json_reply)

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

    def attributes(self, model_name: str, **extra: Any) -> dict[str, Any]:
        """What the columns do not hold: the LiteLLM model behind the name, how the run was
        started (invocation, batch record, as_of), and the caller's `extra`."""
        attributes = {
            "litellm_model": self.config.model(model_name).model,
            "invocation": self.invocation,
            ATTRIBUTE: str(self.batch.batch_id),
            **extra,
        }
        if self.as_of is not None:
            attributes["as_of"] = self.as_of.isoformat()
        return attributes

    def metadata(
        self, item: GoldenItem, role: str, trial: int, suite: Suite | None, **extra: Any
    ) -> dict[str, Any]:
        """The call's metadata (evals.judging.call_metadata): `suite` when its vocabulary
        applies to the reply."""
        return call_metadata(
            suite,
            role=role,
            item_id=f"{self.suite.name}/{item.item_id}",
            trial=trial,
            stage=item.stage,
            as_of=(self.as_of or date.today()).isoformat(),
            **extra,
        )


@dataclass(frozen=True, kw_only=True)
class RunContext(RunSettings):
    """One invocation of run_suite: `prompts` has "main" and, when items need one, "judge"."""

    model: str
    judge: str | None
    prompts: dict[str, PromptTemplate]

    @cached_property
    def batch(self) -> BatchSpec:
        if "judge" not in self.prompts:
            return self.batch_spec(self.model, self.prompts["main"].version)
        return self.batch_spec(
            self.model, self.prompts["main"].version, self.judge, self.prompts["judge"].version
        )


def call_params(config: Config, model_name: str, json_reply: bool) -> dict[str, Any]:
    """A model's call parameters as stored on its rows (and hashed into its keys)."""
    cfg = config.model(model_name)
    params: dict[str, Any] = dict(cfg.params)
    if json_reply and cfg.json_mode:
        params["response_format"] = JSON_RESPONSE_FORMAT
    return params


def call_record(
    run: RunSettings,
    item: GoldenItem,
    trial: int,
    key: str,
    role: str,
    model_name: str,
    rendered: Rendered,
    result: CallResult,
    *,
    json_reply: bool,
    status: str,
    attributes: dict[str, Any],
    problem: str | None = None,
    parse_ms: float | None = None,
    **fields: Any,
) -> RunRecord:
    """The row of one call: the item's columns, what was sent, what came back. `problem` is
    why a reply that arrived could not be read (a ParseError row); `fields` the verdict's."""
    timings = dict(result.timings)
    if parse_ms is not None:
        timings["parse_ms"] = parse_ms
    return RunRecord(
        idempotency_key=key,
        role=role,
        model=model_name,
        started_at=result.started_at,
        status=status,
        **run.columns(item, trial),
        rubric=item.rubric,
        prior_context=item.prior_context,
        inputs=rendered.inputs,
        messages=rendered.messages,
        params=run.params(model_name, json_reply),
        response_model=result.response_model,
        provider=result.provider,
        prompt_name=rendered.prompt_name,
        prompt_version=rendered.prompt_version,
        output_text=result.text,
        latency_ms=result.latency_ms,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=result.cost_usd,
        timings=timings,
        attributes=attributes,
        error_class="ParseError" if problem else result.error_class,
        error_message=problem or result.error_message,
        attempts=result.attempts,
        **fields,
    )


def failure_record(
    run: RunSettings,
    item: GoldenItem,
    trial: int,
    key: str,
    role: str,
    model_name: str,
    exc: Exception,
    attributes: dict[str, Any],
    **fields: Any,
) -> RunRecord:
    """An error row for a unit that raised outside the LLM call (called again next run)."""
    from evals.redact import scrub

    return RunRecord(
        idempotency_key=key,
        role=role,
        model=model_name,
        started_at=datetime.now(UTC),
        status="error",
        **run.columns(item, trial),
        error_class=type(exc).__name__,
        error_message=scrub(str(exc))[:2000],
        attempts=0,
        attributes={**attributes, "failed_in": "runner"},
        **fields,
    )
