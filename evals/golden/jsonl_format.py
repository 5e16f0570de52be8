"""JSONL suites: the first non-blank line is the suite header (the suite fields, no `items`),
every following line one item."""

from __future__ import annotations

import json
from pathlib import Path

from evals.golden.located import Document, Located, Report, read_text


def read_jsonl(path: Path, report: Report) -> Document | None:
    header: Located | None = None
    items: list[Located] = []
    broken = False
    text = read_text(path, report)
    if text is None:
        return None
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            report(number, None, "(json)", f"broken JSON at column {exc.colno}: {exc.msg}")
            broken = True
            continue
        except ValueError as exc:  # e.g. an integer of 5,000 digits (Python's int limit)
            report(number, None, "(json)", f"unreadable value: {exc}")
            broken = True
            continue
        if not isinstance(value, dict):
            report(number, None, "(json)", "each line must be a JSON object")
            broken = True
            continue
        located = Located(value, number, dict.fromkeys(value, number))
        if header is None and not broken:
            if "id" in value:
                report(
                    number,
                    None,
                    "(header)",
                    "the first line must be the suite header (name, kind, verdicts, ...)",
                )
                return None
            header = located
        else:
            items.append(located)
    if header is None:
        if not broken:
            report(1, None, "(header)", "empty file: expected a suite header line and items")
        return None
    if "items" in header.data:
        report(header.line, None, "items", "items follow the header, one JSON object per line")
        header.data.pop("items")
    return Document(header, str(path), items, header.line)
