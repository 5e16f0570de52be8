"""The golden-set model: suites, items, the issues found in their files, and their versions.

Versions are content hashes: the same definition and items give the same version whatever the
format or item order, any change gives a new one, so a run row's `suite_version` pins exactly what
it was graded against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

_ESCAPE_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


@dataclass(frozen=True)
class GoldenIssue:
    """One problem in a golden-set file, located as precisely as the format allows."""

    path: str
    line: int | None
    item_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        """One printable line: a lone surrogate or control character in a reported id or field
        name is shown escaped, so the report can always be printed and logged."""
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        item = f" item {self.item_id}:" if self.item_id is not None else ""
        line = f"{where}:{item} {self.field}: {self.message}"
        return line.encode("utf-8", "backslashreplace").decode("utf-8").translate(_ESCAPE_CONTROLS)


class GoldenSetError(ValueError):
    """One or more golden-set files are invalid; `issues` holds every problem found."""

    def __init__(self, issues: Iterable[GoldenIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass(frozen=True)
class PairResponses:
    """The two stored responses of a pairwise item and who wrote them (its contestants)."""

    response_a: str
    response_b: str
    source_a: str = "response_a"
    source_b: str = "response_b"


@dataclass(frozen=True)
class GoldenItem:
    """One golden example with its expected outcome; `rubric` is already the effective rubric."""

    item_id: str
    stage: str | None
    category: str | None
    rubric: str | None
    submission: str | None
    question: str | None
    prior_context: str | None
    expected_verdict: str | None  # None only for a pairwise item without a reference preference
    expected_answer: str | None  # a pairwise item's `reference`
    expected_issue_tags: tuple[str, ...]
    scorer: dict[str, Any] | None = field(default=None, hash=False)
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    item_hash: str = ""
    line: int | None = field(default=None, compare=False)
    responses: PairResponses | None = None  # a pairwise item's stored responses

    def canonical(self) -> dict[str, Any]:
        """The content that defines the item (what its hash covers; the source line is not)."""
        canonical = {
            "item_id": self.item_id,
            "stage": self.stage,
            "category": self.category,
            "rubric": self.rubric,
            "submission": self.submission,
            "question": self.question,
            "prior_context": self.prior_context,
            "expected_verdict": self.expected_verdict,
            "expected_answer": self.expected_answer,
            "expected_issue_tags": list(self.expected_issue_tags),
            "scorer": self.scorer,
            "metadata": self.metadata,
        }
        if self.responses is not None:  # only then: other items keep their hashes
            canonical["responses"] = asdict(self.responses)
        return canonical

    def inputs(self) -> dict[str, Any]:
        """What the model under test sees (raw.golden_items.inputs)."""
        inputs = {
            "rubric": self.rubric,
            "submission": self.submission,
            "question": self.question,
            "prior_context": self.prior_context,
            "metadata": self.metadata,
        }
        if self.responses is not None:
            inputs.update(asdict(self.responses))
        return inputs

    def expected(self) -> dict[str, Any]:
        """What a good model should produce (raw.golden_items.expected)."""
        return {
            "verdict": self.expected_verdict,
            "answer": self.expected_answer,
            "issue_tags": list(self.expected_issue_tags),
            "scorer": self.scorer,
        }


@dataclass(frozen=True)
class Suite:
    """A validated golden suite; `version` is the content hash of definition and items."""

    name: str
    description: str
    kind: str
    verdicts: tuple[str, ...]
    passing_verdicts: tuple[str, ...]
    issue_tags: tuple[str, ...]
    default_rubric: str | None
    items: tuple[GoldenItem, ...]
    version: str
    source_path: str | None = field(default=None, compare=False)
    verdict_labels: dict[str, str] = field(default_factory=dict, hash=False)  # pairwise display

    def verdict_label(self, verdict: str) -> str:
        """How a verdict is shown: the suite's display name for it, else the verdict itself."""
        return self.verdict_labels.get(verdict, verdict)

    def passes(self, verdict: str | None) -> bool:
        return verdict in self.passing_verdicts

    @cached_property
    def _by_id(self) -> dict[str, GoldenItem]:
        return {item.item_id: item for item in self.items}

    def item(self, item_id: str) -> GoldenItem:
        """The item with this id (KeyError names the suite when there is none)."""
        try:
            return self._by_id[item_id]
        except KeyError:
            raise KeyError(f"suite {self.name!r} has no item {item_id!r}") from None

    def shard(self, index: int, count: int) -> Suite:
        """The items whose hash falls in shard `index` of `count`, under the SAME version: a
        slice of a stored version (its calls keep their idempotency keys), never a version to
        store itself."""
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count} does not exist")
        items = tuple(item for item in self.items if int(item.item_hash[:8], 16) % count == index)
        return replace(self, items=items)

    def stage_counts(self) -> dict[str, int]:
        """Items per stage in first-seen order (items without a stage count under "-")."""
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.stage or "-"] = counts.get(item.stage or "-", 0) + 1
        return counts


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value` (key order and whitespace do not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def suite_version(definition: Mapping[str, Any], items: Iterable[GoldenItem]) -> str:
    """16 hex digits of sha256 over the canonical definition and the items' hashes by id."""
    hashes = sorted((item.item_id, item.item_hash) for item in items)
    return digest({**definition, "items": hashes})[:16]
