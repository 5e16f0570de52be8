"""Comparability epochs: a rate is comparable only with itself under the same versions.

A prompt rollout, a new model, a judge upgrade or a new suite version changes what a rate
measures. So the series a detector watches is keyed by the versions that produced it — its
epoch — and a version change starts a new series: its baseline is empty until it accumulates,
and no window ever straddles the change. Whether the change itself moved the rate is the
version-change detector's question (`version_change`), not drift.

Where a judge is involved the judge is the row that gave the verdict: for a stage's pass rate
that is the grader (its model and prompt version), for judge agreement the judging model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_NONE = "∅"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Epoch:
    """The versions behind a rate: the model, its prompt version, the suite and its version,
    and the judge (`<model> <prompt version>`) where a separate judge grades the model's
    answers. Two rates are comparable only when all five are equal."""

    model: str | None = None
    prompt_version: str | None = None
    suite: str | None = None
    suite_version: str | None = None
    judge: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Epoch:
        """The epoch of a mart row (absent columns stay unknown)."""
        return cls(**{name.name: _text(row.get(name.name)) for name in fields(cls)})

    def columns(self) -> dict[str, str | None]:
        """The epoch as the mart columns it comes from."""
        return asdict(self)

    def parts(self) -> dict[str, str]:
        """What a label shows: model, prompt (version), suite (name@version) and judge, when
        known."""
        parts = {}
        if self.model is not None:
            parts["model"] = self.model
        if self.prompt_version is not None:
            parts["prompt"] = self.prompt_version
        if self.suite is not None or self.suite_version is not None:
            parts["suite"] = f"{self.suite or _NONE}@{self.suite_version or _NONE}"
        if self.judge is not None:
            parts["judge"] = self.judge
        return parts

    def label(self) -> str:
        """`model=… prompt=… suite=name@version`, leaving out what is unknown."""
        return " ".join(f"{name}={value}" for name, value in self.parts().items())

    def transition_label(self, after: Epoch) -> str:
        """Both epochs in one label, a changed part as `old→new`."""
        before, now = self.parts(), after.parts()
        return " ".join(
            f"{name}={before.get(name, _NONE)}→{now.get(name, _NONE)}"
            if before.get(name) != now.get(name)
            else f"{name}={now[name]}"
            for name in ("model", "prompt", "suite", "judge")
            if name in before or name in now
        )

    def changes(self, after: Epoch) -> dict[str, list[str | None]]:
        """The dimensions that differ from `after`: {dimension: [this, after]}."""
        return {
            name.name: [getattr(self, name.name), getattr(after, name.name)]
            for name in fields(self)
            if getattr(self, name.name) != getattr(after, name.name)
        }


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """One watched series: a stage (what is measured) within one epoch."""

    stage: str
    epoch: Epoch = field(default_factory=Epoch)

    @property
    def subject(self) -> str:
        """The alert subject: `stage=loops model=… prompt=… suite=…@…`."""
        return " ".join(part for part in (f"stage={self.stage}", self.epoch.label()) if part)

    def __str__(self) -> str:
        return self.subject

    def dimensions(self) -> dict[str, str | None]:
        """The series' columns, for the evidence (and to find its rows again)."""
        return {"stage": self.stage, **self.epoch.columns()}
