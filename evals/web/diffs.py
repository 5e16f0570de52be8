"""Unified diffs as lines a template can colour: additions, deletions, hunk headers, context."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add" | "del" | "hunk" | "meta" | "ctx"
    text: str


def classify(lines: list[str]) -> list[DiffLine]:
    """Tag each line of a unified diff (as difflib or `git diff` writes it)."""
    tagged = []
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith(("+++", "---")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        tagged.append(DiffLine(kind, line))
    return tagged


def unified(old: str, new: str, old_name: str, new_name: str, context: int = 3) -> list[DiffLine]:
    """A line diff of two texts; empty when they are equal."""
    return classify(
        list(
            difflib.unified_diff(
                old.splitlines(),
                new.splitlines(),
                old_name,
                new_name,
                n=context,
                lineterm="",
            )
        )
    )
