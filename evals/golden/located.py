"""What every reader produces: mappings that remember their lines, and the issue collector.

Each format becomes located mappings, so validation names file, line and field the same way
whatever the file was written in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.golden.model import GoldenIssue


@dataclass
class Located:
    """A mapping read from a file, remembering the line of the mapping and of each key."""

    data: dict[str, Any]
    line: int | None
    key_lines: dict[str, int] = field(default_factory=dict)
    duplicates: list[tuple[str, int]] = field(default_factory=list)  # (key, line of the repeat)

    def report_duplicates(self, report: Report, item_id: str | None) -> None:
        for key, line in self.duplicates:
            report(line, item_id, key, f"duplicate key (first at line {self.key_lines[key]})")

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line)


@dataclass
class Document:
    header: Located
    header_path: str
    items: list[Located] | None  # None when the source had no usable items list
    items_line: int | None


@dataclass(frozen=True)
class BadJson:
    """A JSON cell of a CSV row that did not parse, kept so validation reports it in place."""

    message: str


class Report:
    """Collects issues for one file so validation can go on after the first problem."""

    def __init__(self, path: str, sink: list[GoldenIssue]) -> None:
        self.path = path
        self.sink = sink

    def __call__(
        self,
        line: int | None,
        item_id: str | None,
        field_name: str,
        message: str,
        path: str | None = None,
    ) -> None:
        self.sink.append(GoldenIssue(path or self.path, line, item_id, field_name, message))


def read_text(path: Path, report: Report, report_path: str | None = None) -> str | None:
    """The file as UTF-8 text, or None after reporting why not (the line of a bad byte)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        report(None, None, "(file)", f"cannot read: {exc}", report_path)
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        report(
            line, None, "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}", report_path
        )
        return None
