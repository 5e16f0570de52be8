"""What every call of one invocation shares: the suite, the models, the prompts, the batch.

One frozen value instead of a class holding everything, so planning, calling, writing and the
closing accuracy query each take only this and stay separate modules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

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
    code_version: str = field(default_factory=code_version)
    invocation: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def params(self, model_name: str, json_reply: bool) -> dict[str, Any]:
        """The call parameters of a model as stored on its rows (and hashed into its keys)."""
        cfg = self.config.model(model_name)
        params: dict[str, Any] = dict(cfg.params)
        if json_reply and cfg.json_mode:
            params["response_format"] = JSON_RESPONSE_FORMAT
        return params
