"""Field-level checks shared by the suite header and its items: each reports what is wrong
and returns None (or an empty value) so validation goes on and finds every other problem."""

from __future__ import annotations

import math
import re
from typing import Any

from evals.golden.located import BadJson, Located, Report
from evals.golden.schema import LABEL_RE


def type_name(value: Any) -> str:
    if isinstance(value, bool):  # YAML 1.1 reads yes/no/on/off as booleans
        return f"the boolean {str(value).lower()} (quote the value to keep it text)"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }.get(type(value), type(value).__name__)


def text(
    located: Located,
    key: str,
    report: Report,
    item_id: str | None,
    *,
    required: bool,
    numbers_ok: bool = False,
) -> str | None:
    if key not in located.data or located.data[key] is None:
        if required:
            report(located.line, item_id, key, "missing field")
        return None
    value = located.data[key]
    if numbers_ok and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        report(located.line_of(key), item_id, key, f"must be a string, got {type_name(value)}")
        return None
    if not value.strip():
        if required:
            report(located.line_of(key), item_id, key, "must not be empty")
        return None
    return value


def labels(
    located: Located,
    key: str,
    report: Report,
    item_id: str | None,
    *,
    required: bool,
) -> tuple[str, ...] | None:
    """A list of verdicts or tags: strings, no whitespace or `|`, no repeats (None if invalid)."""
    if key not in located.data or located.data[key] is None:
        if required:
            report(located.line, item_id, key, "missing field")
        return None if required else ()
    value = located.data[key]
    line = located.line_of(key)
    if not isinstance(value, list):
        report(line, item_id, key, f"must be a list, got {type_name(value)}")
        return None
    found: list[str] = []
    valid = True
    for index, label in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(label, str):
            report(line, item_id, where, f"must be a string, got {type_name(label)}")
        elif not LABEL_RE.match(label):
            report(line, item_id, where, f"{label!r}: no spaces or '|' allowed")
        elif label in found:
            report(line, item_id, where, f"{label!r} is listed twice")
        else:
            found.append(label)
            continue
        valid = False
    return tuple(found) if valid else None


def mapping(
    located: Located,
    key: str,
    report: Report,
    item_id: str | None,
) -> dict[str, Any]:
    value = located.data.get(key)
    if value is None:
        return {}
    if isinstance(value, BadJson):
        report(located.line_of(key), item_id, key, value.message)
        return {}
    if not isinstance(value, dict):
        report(located.line_of(key), item_id, key, f"must be a mapping, got {type_name(value)}")
        return {}
    return value


def unknown_fields(
    located: Located,
    allowed: tuple[str, ...],
    report: Report,
    item_id: str | None,
) -> None:
    for key in located.data:
        if key not in allowed:
            report(
                located.line_of(key),
                item_id,
                key,
                f"unknown field (expected one of: {', '.join(allowed)})",
            )


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value: Any) -> str | None:
    """Why `value` (walked through lists and mappings) cannot be stored as text or JSON."""
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        if found is None:
            return None
        if found.group() == "\x00":
            return "contains a NUL character (U+0000), which Postgres text cannot hold"
        return (
            f"contains a lone UTF-16 surrogate (U+{ord(found.group()):04X}, a truncated emoji?),"
            " which is not Unicode text"
        )
    if isinstance(value, float) and not math.isfinite(value):
        return f"contains the number {value}, which JSON cannot hold"
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        for element in value:
            problem = _unstorable(element)
            if problem is not None:
                return problem
    return None


def unstorable_fields(located: Located, report: Report, item_id: str | None) -> None:
    """Report every field the warehouse could not store as it is written (one line each).

    Checked before any other field so a NUL or a lone surrogate is named with its line, never
    met later by hashing (UTF-8) or by Postgres.
    """
    for key, value in located.data.items():
        problem = _unstorable(key) or _unstorable(value)
        if problem is not None:
            report(located.line_of(key), item_id, key, problem)
