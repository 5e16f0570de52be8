"""An item's deterministic scorer: a known type, its allowed options, and what it needs."""

from __future__ import annotations

import re
from typing import Any

from evals.golden.fields import type_name
from evals.golden.located import BadJson, Located, Report
from evals.golden.schema import SCORER_OPTIONS


def read_scorer(
    located: Located,
    report: Report,
    item_id: str | None,
    expected_answer: str | None,
) -> dict[str, Any] | None:
    """The item's scorer mapping (None when absent or of no known type); each problem reported."""
    if "scorer" not in located.data or located.data["scorer"] is None:
        return None
    scorer = located.data["scorer"]
    line = located.line_of("scorer")
    if isinstance(scorer, BadJson):
        report(line, item_id, "scorer", scorer.message)
        return None
    if not isinstance(scorer, dict):
        report(line, item_id, "scorer", f"must be a mapping, got {type_name(scorer)}")
        return None
    kind = scorer.get("type")
    if kind not in SCORER_OPTIONS:
        report(
            line, item_id, "scorer.type", f"{kind!r}: must be one of {', '.join(SCORER_OPTIONS)}"
        )
        return None
    _check_options(scorer, kind, report, line, item_id)
    _check_needs(located, scorer, kind, report, item_id, expected_answer)
    return scorer


def _check_options(
    scorer: dict[str, Any], kind: str, report: Report, line: int | None, item_id: str | None
) -> None:
    """Each option is one the scorer type allows, of its type (a bool is no number)."""
    options = SCORER_OPTIONS[kind]
    for key, value in scorer.items():
        if key == "type":
            continue
        if key not in options:
            report(
                line,
                item_id,
                f"scorer.{key}",
                f"unknown option for a {kind} scorer (allowed: {', '.join(options) or 'none'})",
            )
        elif not isinstance(value, options[key]) or (
            isinstance(value, bool) and bool not in options[key]
        ):
            report(line, item_id, f"scorer.{key}", f"wrong type: {type_name(value)}")


def _check_needs(
    located: Located,
    scorer: dict[str, Any],
    kind: str,
    report: Report,
    item_id: str | None,
    expected_answer: str | None,
) -> None:
    """What the scorer type needs: a valid regex, an expected answer (a number for numeric),
    a tolerance that is not negative."""
    line = located.line_of("scorer")
    if kind == "regex":
        pattern = scorer.get("pattern")
        if pattern is None:
            report(line, item_id, "scorer.pattern", "missing field (a regex scorer needs it)")
        elif isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                report(line, item_id, "scorer.pattern", f"invalid regular expression: {exc}")
    elif kind in ("exact", "contains", "numeric") and expected_answer is None:
        report(line, item_id, "expected_answer", f"a {kind} scorer needs an expected_answer")
    if kind == "numeric" and expected_answer is not None:
        try:
            float(expected_answer)
        except ValueError:
            report(
                located.line_of("expected_answer"),
                item_id,
                "expected_answer",
                f"{expected_answer!r} is not a number (the scorer is numeric)",
            )
        tolerance = scorer.get("tolerance", 0)
        if isinstance(tolerance, int | float) and not isinstance(tolerance, bool) and tolerance < 0:
            report(line, item_id, "scorer.tolerance", "must be >= 0")
