"""CSV suites: one item per row; the suite header lives in the sibling file `<stem>.suite.yaml`.

List cells (`expected_issue_tags`) are `|`-separated; `scorer` and `metadata` cells hold JSON.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from evals.golden.located import BadJson, Document, Located, Report, read_text
from evals.golden.schema import ALL_ITEM_FIELDS
from evals.golden.yaml_format import read_yaml_mapping

CSV_HEADER_SUFFIX = ".suite.yaml"
LIST_SEPARATOR = "|"


def csv_header_path(path: Path) -> Path:
    """The YAML file holding the suite header of a CSV suite."""
    return path.with_name(path.stem + CSV_HEADER_SUFFIX)


def resolve_csv_header(path: Path) -> Path:
    """Pointing at `x.suite.yaml` means the CSV suite `x.csv` it describes."""
    if path.name.endswith(CSV_HEADER_SUFFIX):
        sibling = path.with_name(path.name[: -len(CSV_HEADER_SUFFIX)] + ".csv")
        if sibling.exists():
            return sibling
    return path


def read_csv(path: Path, report: Report) -> Document | None:
    """The CSV suite with its sibling header, or None when either cannot be read (reported)."""
    header_path = csv_header_path(path)
    header = _read_header(path, header_path, report)
    if header is None:
        return None
    text = read_text(path, report)
    if text is None:
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        columns = next(reader, None)
        if columns is None:
            report(1, None, "(csv)", "empty file: expected a header row of field names")
            return None
        columns = [column.strip() for column in columns]
        _check_columns(columns, report)
        items = _read_rows(reader, columns, report)
    except csv.Error as exc:
        report(reader.line_num, None, "(csv)", f"broken CSV: {exc}")
        return None
    return Document(header, str(header_path), items, 1)  # "no items": the header row


def _read_header(path: Path, header_path: Path, report: Report) -> Located | None:
    """The suite header from the sibling YAML file; items there are reported and dropped."""
    if not header_path.exists():
        report(
            None, None, "(header)", f"a CSV suite needs its header in {header_path.name} beside it"
        )
        return None
    read = read_yaml_mapping(header_path, report, keep_nodes=())
    if read is None:
        return None
    header = read[1]
    if "items" in header.data:
        report(
            header.line_of("items"), None, "items", f"items belong in {path.name}", str(header_path)
        )
        header.data.pop("items")
    return header


def _check_columns(columns: list[str], report: Report) -> None:
    """Report duplicate and unknown columns once, on the header row."""
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            report(1, None, column, "duplicate column")
        elif column not in ALL_ITEM_FIELDS:
            report(
                1,
                None,
                column,
                f"unknown column (expected some of: {', '.join(ALL_ITEM_FIELDS)})",
            )
        seen.add(column)


def _read_rows(reader: Any, columns: list[str], report: Report) -> list[Located]:
    """One located item per non-blank row with as many cells as the header row."""
    items: list[Located] = []
    while True:
        start = reader.line_num + 1
        row = next(reader, None)
        if row is None:
            return items
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            report(
                start,
                None,
                "(csv)",
                f"row has {len(row)} cells, the header row has {len(columns)}",
            )
            continue
        cells = zip(columns, row, strict=True)
        data = {
            col: _csv_cell(col, cell)
            for col, cell in cells
            if cell != "" and col in ALL_ITEM_FIELDS
        }  # unknown columns: reported once
        items.append(Located(data, start, dict.fromkeys(data, start)))


def _csv_cell(column: str, cell: str) -> Any:
    """A CSV cell as the value the same field would have in YAML (lists split, JSON parsed)."""
    if column == "expected_issue_tags":
        return [tag.strip() for tag in cell.split(LIST_SEPARATOR) if tag.strip()]
    if column in ("scorer", "metadata"):
        try:
            return json.loads(cell)
        except json.JSONDecodeError as exc:
            return BadJson(f"broken JSON at column {exc.colno}: {exc.msg}")
        except ValueError as exc:  # e.g. an integer of 5,000 digits (Python's int limit)
            return BadJson(f"unreadable value: {exc}")
    return cell
