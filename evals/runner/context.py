"""What every call of one invocation shares: the suite, the models, the prompts, the batch.

One frozen value instead of a class holding everything, so planning, calling, writing and the
closing accuracy query each take only this and stay separate modules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any

from evals.batches import BatchSpec, lineage_of
from evals.judging import JSON_RESPONSE_FORMAT
from evals.runner.inputs import code_version

if TYPE_CHECKING:
    from evals.config import Config
    from evals.golden import Suite
    from evals.prompts import PromptTemplate


@dataclass(frozen=True)
class RunContext:
    """One invocation of run_suite: `prompts` has "main" and, when items need one, "judge"."""

    config: Config
    suite: Suite
    model: str
    judge: str | None
    prompts: dict[str, PromptTemplate]
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
        """The batch record this invocation opens (or reopens) and stamps on every row."""
        judged = "judge" in self.prompts
        return BatchSpec(
            kind=self.kind,
            batch_key=self.batch_key,
            source=self.source,
            model=self.model,
            started_by=self.started_by,
            suite=self.suite.name,
            suite_version=self.suite.version,
            prompt_version=self.prompts["main"].version,
            judge=self.judge if judged else None,
            judge_prompt_version=self.prompts["judge"].version if judged else None,
            code_version=self.code_version,
            lineage=lineage_of(self.config, self.model),
        )

    def params(self, model_name: str, json_reply: bool) -> dict[str, Any]:
        """The call parameters of a model as stored on its rows (and hashed into its keys)."""
        return call_params(self.config, model_name, json_reply)


def call_params(config: Config, model_name: str, json_reply: bool) -> dict[str, Any]:
    """A model's call parameters as stored on its rows (and hashed into its keys)."""
    cfg = config.model(model_name)
    params: dict[str, Any] = dict(cfg.params)
    if json_reply and cfg.json_mode:
        params["response_format"] = JSON_RESPONSE_FORMAT
    return params
