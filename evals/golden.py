"""Golden sets: suites of graded examples, their validation and their content-hash versions.

A suite declares what a verdict may be, which verdicts pass, the issue-tag taxonomy and a default
rubric; its items carry the inputs (rubric + submission for a `grader` suite, a question for an
`answer` suite) and what a good model should say about them. Suites are written by people, so
every mistake is reported at once, each naming file, line (or item id) and field: a wrong golden
label silently poisons every accuracy number computed from it.

Three formats, one model:
- YAML (primary): a mapping with the suite fields and an `items:` list.
- JSONL: the first non-blank line is the suite header (the suite fields, no `items`), every
  following line one item.
- CSV: one item per row; the suite header lives in the sibling file `<stem>.suite.yaml`.
  List cells (`expected_issue_tags`) are `|`-separated; `scorer` and `metadata` cells hold JSON.

Versions are content hashes: the same definition and items give the same version whatever the
format or item order, any change gives a new one, so a run row's `suite_version` pins exactly what
it was graded against.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from evals.config import Config

KINDS = ("grader", "answer")
YAML_SUFFIXES = (".yaml", ".yml")
SUITE_SUFFIXES = (*YAML_SUFFIXES, ".jsonl", ".csv")
CSV_HEADER_SUFFIX = ".suite.yaml"
LIST_SEPARATOR = "|"

# Each deterministic scorer with the options it accepts (name -> allowed types).
SCORER_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "exact": {"case_sensitive": (bool,)},
    "contains": {"case_sensitive": (bool,)},
    "regex": {"pattern": (str,), "ignore_case": (bool,)},
    "numeric": {"tolerance": (int, float), "relative": (bool,)},
    "json": {"required_keys": (list,)},
}

# libyaml's parser keeps the marks (lines) this module reports, at ~5x the pure-Python speed.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_LABEL_RE = re.compile(r"^[^\s|]+$")  # verdicts and tags: no whitespace, no CSV list separator

_HEADER_FIELDS = (
    "name", "description", "kind", "verdicts", "passing_verdicts", "issue_tags",
    "default_rubric", "items",
)
_ITEM_TEXT_FIELDS = (
    "id", "stage", "category", "rubric", "submission", "question", "prior_context",
    "expected_verdict", "expected_answer",
)
_ITEM_FIELDS = (*_ITEM_TEXT_FIELDS, "expected_issue_tags", "scorer", "metadata")


@dataclass(frozen=True)
class GoldenIssue:
    """One problem in a golden-set file, located as precisely as the format allows."""

    path: str
    line: int | None
    item_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        item = f" item {self.item_id}:" if self.item_id is not None else ""
        return f"{where}:{item} {self.field}: {self.message}"


class GoldenSetError(ValueError):
    """One or more golden-set files are invalid; `issues` holds every problem found."""

    def __init__(self, issues: Iterable[GoldenIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


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
    expected_verdict: str
    expected_answer: str | None
    expected_issue_tags: tuple[str, ...]
    scorer: dict[str, Any] | None = field(default=None, hash=False)
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    item_hash: str = ""
    line: int | None = field(default=None, compare=False)

    def canonical(self) -> dict[str, Any]:
        """The content that defines the item (what its hash covers; the source line is not)."""
        return {
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

    def inputs(self) -> dict[str, Any]:
        """What the model under test sees (raw.golden_items.inputs)."""
        return {
            "rubric": self.rubric,
            "submission": self.submission,
            "question": self.question,
            "prior_context": self.prior_context,
            "metadata": self.metadata,
        }

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

    def stage_counts(self) -> dict[str, int]:
        """Items per stage in first-seen order (items without a stage count under "-")."""
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.stage or "-"] = counts.get(item.stage or "-", 0) + 1
        return counts


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def suite_version(definition: Mapping[str, Any], items: Iterable[GoldenItem]) -> str:
    """16 hex digits of sha256 over the canonical definition and the items' hashes by id."""
    hashes = sorted((item.item_id, item.item_hash) for item in items)
    return _digest({**definition, "items": hashes})[:16]


# --- reading: every format becomes located mappings -------------------------------------------


@dataclass
class _Located:
    """A mapping read from a file, remembering the line of the mapping and of each key."""

    data: dict[str, Any]
    line: int | None
    key_lines: dict[str, int] = field(default_factory=dict)
    duplicates: list[tuple[str, int]] = field(default_factory=list)  # (key, line of the repeat)

    def report_duplicates(self, report: _Report, item_id: str | None) -> None:
        for key, line in self.duplicates:
            report(line, item_id, key, f"duplicate key (first at line {self.key_lines[key]})")

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line)


@dataclass
class _Document:
    header: _Located
    header_path: str
    items: list[_Located] | None  # None when the source had no usable items list
    items_line: int | None


class _Report:
    """Collects issues for one file so validation can go on after the first problem."""

    def __init__(self, path: str, sink: list[GoldenIssue]) -> None:
        self.path = path
        self.sink = sink

    def __call__(
        self, line: int | None, item_id: str | None, field_name: str, message: str,
        path: str | None = None,
    ) -> None:
        self.sink.append(GoldenIssue(path or self.path, line, item_id, field_name, message))


def _yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"{context}; {problem}" if context else problem
    return (mark.line + 1 if mark is not None else None), message


def _yaml_mapping(
    loader: yaml.SafeLoader, node: yaml.MappingNode, report: _Report, keep_nodes: tuple[str, ...] = (),
    path: str | None = None,
) -> _Located:
    """Turn a mapping node into a _Located, reporting non-string and duplicate keys.

    PyYAML keeps the last of two equal keys without a word; in a golden set that hides a typo
    (two `expected_verdict:` lines), so it is an error here.
    """
    loader.flatten_mapping(node)  # honour `<<: *anchor` merges
    located = _Located({}, node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            report(key_line, None, str(key), "field names must be strings", path)
            continue
        if key in located.data:
            located.duplicates.append((key, key_line))  # reported with the item's id
            continue
        located.key_lines[key] = key_line
        located.data[key] = (
            value_node if key in keep_nodes else loader.construct_object(value_node, deep=True)
        )
    return located


def _read_yaml_mapping(path: Path, report: _Report, keep_nodes: tuple[str, ...]):
    """(loader, header) for a YAML file whose top level is a mapping, or None after reporting."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report(None, None, "(file)", f"cannot read: {exc}", str(path))
        return None
    loader = _YamlLoader(text)
    try:
        root = loader.get_single_node()
        if root is None or not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1 if root is not None else 1
            report(line, None, "(top level)", "must be a mapping of suite fields", str(path))
            return None
        return loader, _yaml_mapping(loader, root, report, keep_nodes, str(path))
    except yaml.YAMLError as exc:
        line, message = _yaml_problem(exc)
        report(line, None, "(yaml)", f"broken YAML: {message}", str(path))
        return None


def _read_yaml(path: Path, report: _Report) -> _Document | None:
    read = _read_yaml_mapping(path, report, keep_nodes=("items",))
    if read is None:
        return None
    loader, header = read
    items_node = header.data.pop("items", None)
    items: list[_Located] | None = None
    if items_node is None:
        report(header.line, None, "items", "missing field (a list of items)")
    elif not isinstance(items_node, yaml.SequenceNode):
        report(header.line_of("items"), None, "items", "must be a list of items")
    else:
        items = []
        try:
            for element in items_node.value:
                if isinstance(element, yaml.MappingNode):
                    items.append(_yaml_mapping(loader, element, report))
                else:
                    report(element.start_mark.line + 1, None, "items",
                           "each item must be a mapping of fields")
        except yaml.YAMLError as exc:
            line, message = _yaml_problem(exc)
            report(line, None, "(yaml)", f"broken YAML: {message}")
            return None
    return _Document(header, str(path), items, header.key_lines.get("items"))


def _read_jsonl(path: Path, report: _Report) -> _Document | None:
    header: _Located | None = None
    items: list[_Located] = []
    broken = False
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report(None, None, "(file)", f"cannot read: {exc}")
        return None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            report(number, None, "(json)", f"broken JSON at column {exc.colno}: {exc.msg}")
            broken = True
            continue
        if not isinstance(value, dict):
            report(number, None, "(json)", "each line must be a JSON object")
            broken = True
            continue
        located = _Located(value, number, dict.fromkeys(value, number))
        if header is None and not broken:
            if "id" in value:
                report(number, None, "(header)",
                       "the first line must be the suite header (name, kind, verdicts, ...)")
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
    return _Document(header, str(path), items, header.line)


def csv_header_path(path: Path) -> Path:
    """The YAML file holding the suite header of a CSV suite."""
    return path.with_name(path.stem + CSV_HEADER_SUFFIX)


def _read_csv(path: Path, report: _Report) -> _Document | None:
    header_path = csv_header_path(path)
    if not header_path.exists():
        report(None, None, "(header)",
               f"a CSV suite needs its header in {header_path.name} beside it")
        return None
    read = _read_yaml_mapping(header_path, report, keep_nodes=())
    if read is None:
        return None
    header = read[1]
    if "items" in header.data:
        report(header.line_of("items"), None, "items", f"items belong in {path.name}",
               str(header_path))
        header.data.pop("items")
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        report(None, None, "(file)", f"cannot read: {exc}")
        return None
    items: list[_Located] = []
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            columns = next(reader, None)
            if columns is None:
                report(1, None, "(csv)", "empty file: expected a header row of field names")
                return None
            columns = [column.strip() for column in columns]
            seen: set[str] = set()
            for column in columns:
                if column in seen:
                    report(1, None, column, "duplicate column")
                elif column not in _ITEM_FIELDS:
                    report(1, None, column,
                           f"unknown column (expected some of: {', '.join(_ITEM_FIELDS)})")
                seen.add(column)
            while True:
                start = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    break
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    report(start, None, "(csv)",
                           f"row has {len(row)} cells, the header row has {len(columns)}")
                    continue
                cells = zip(columns, row, strict=True)
                data = {col: _csv_cell(col, cell) for col, cell in cells
                        if cell != "" and col in _ITEM_FIELDS}  # unknown columns: reported once
                items.append(_Located(data, start, dict.fromkeys(data, start)))
        except csv.Error as exc:
            report(reader.line_num, None, "(csv)", f"broken CSV: {exc}")
            return None
    return _Document(header, str(header_path), items, None)


def _csv_cell(column: str, cell: str) -> Any:
    """A CSV cell as the value the same field would have in YAML (lists split, JSON parsed)."""
    if column == "expected_issue_tags":
        return [tag.strip() for tag in cell.split(LIST_SEPARATOR) if tag.strip()]
    if column in ("scorer", "metadata"):
        try:
            return json.loads(cell)
        except json.JSONDecodeError as exc:
            return _BadJson(f"broken JSON at column {exc.colno}: {exc.msg}")
    return cell


@dataclass(frozen=True)
class _BadJson:
    message: str


_READERS: dict[str, Callable[[Path, _Report], _Document | None]] = {
    ".yaml": _read_yaml,
    ".yml": _read_yaml,
    ".jsonl": _read_jsonl,
    ".csv": _read_csv,
}


# --- validation ---------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if isinstance(value, bool):  # YAML 1.1 reads yes/no/on/off as booleans
        return f"the boolean {str(value).lower()} (quote the value to keep it text)"
    return {str: "a string", int: "an integer", float: "a number", list: "a list",
            dict: "a mapping", type(None): "empty"}.get(type(value), type(value).__name__)


def _text(
    located: _Located, key: str, report: _Report, item_id: str | None, *, required: bool,
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
        report(located.line_of(key), item_id, key, f"must be a string, got {_type_name(value)}")
        return None
    if not value.strip():
        if required:
            report(located.line_of(key), item_id, key, "must not be empty")
        return None
    return value


def _labels(
    located: _Located, key: str, report: _Report, item_id: str | None, *, required: bool,
) -> tuple[str, ...] | None:
    """A list of verdicts or tags: strings, no whitespace or `|`, no repeats (None if invalid)."""
    if key not in located.data or located.data[key] is None:
        if required:
            report(located.line, item_id, key, "missing field")
        return None if required else ()
    value = located.data[key]
    line = located.line_of(key)
    if not isinstance(value, list):
        report(line, item_id, key, f"must be a list, got {_type_name(value)}")
        return None
    labels: list[str] = []
    valid = True
    for index, label in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(label, str):
            report(line, item_id, where, f"must be a string, got {_type_name(label)}")
        elif not _LABEL_RE.match(label):
            report(line, item_id, where, f"{label!r}: no spaces or '|' allowed")
        elif label in labels:
            report(line, item_id, where, f"{label!r} is listed twice")
        else:
            labels.append(label)
            continue
        valid = False
    return tuple(labels) if valid else None


def _unknown_fields(
    located: _Located, allowed: tuple[str, ...], report: _Report, item_id: str | None,
) -> None:
    for key in located.data:
        if key not in allowed:
            report(located.line_of(key), item_id, key,
                   f"unknown field (expected one of: {', '.join(allowed)})")


@dataclass(frozen=True)
class _Definition:
    """The suite header as far as it could be read; a None field was reported as invalid."""

    name: str | None
    description: str
    kind: str | None
    verdicts: tuple[str, ...] | None
    passing_verdicts: tuple[str, ...] | None
    issue_tags: tuple[str, ...] | None
    default_rubric: str | None
    valid: bool

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "verdicts": list(self.verdicts or ()),
            "passing_verdicts": list(self.passing_verdicts or ()),
            "issue_tags": list(self.issue_tags or ()),
            "default_rubric": self.default_rubric,
        }


def _definition(header: _Located, report: _Report) -> _Definition:
    """Read the suite header; items are still checked against whatever part of it is valid."""
    errors_before = len(report.sink)
    header.report_duplicates(report, None)
    _unknown_fields(header, _HEADER_FIELDS, report, None)
    name = _text(header, "name", report, None, required=True)
    if name is not None and not _NAME_RE.match(name):
        report(header.line_of("name"), None, "name",
               f"{name!r}: use letters, digits, '_', '.', '-' (no spaces)")
    description = _text(header, "description", report, None, required=False) or ""
    kind = _text(header, "kind", report, None, required=True)
    if kind is not None and kind not in KINDS:
        report(header.line_of("kind"), None, "kind", f"{kind!r}: must be one of {', '.join(KINDS)}")
        kind = None
    verdicts = _labels(header, "verdicts", report, None, required=True)
    if verdicts == ():
        report(header.line_of("verdicts"), None, "verdicts", "must list at least one verdict")
        verdicts = None
    passing = _labels(header, "passing_verdicts", report, None, required=True)
    if passing == ():
        report(header.line_of("passing_verdicts"), None, "passing_verdicts",
               "must list at least one verdict")
    for verdict in passing or ():
        if verdicts is not None and verdict not in verdicts:
            report(header.line_of("passing_verdicts"), None, "passing_verdicts",
                   f"{verdict!r} is not one of the suite's verdicts ({', '.join(verdicts)})")
    tags = _labels(header, "issue_tags", report, None, required=False)
    default_rubric = _text(header, "default_rubric", report, None, required=False)
    return _Definition(name, description, kind, verdicts, passing or None, tags, default_rubric,
                       valid=len(report.sink) == errors_before)


def _scorer(
    located: _Located, report: _Report, item_id: str | None, expected_answer: str | None,
) -> dict[str, Any] | None:
    if "scorer" not in located.data or located.data["scorer"] is None:
        return None
    scorer = located.data["scorer"]
    line = located.line_of("scorer")
    if isinstance(scorer, _BadJson):
        report(line, item_id, "scorer", scorer.message)
        return None
    if not isinstance(scorer, dict):
        report(line, item_id, "scorer", f"must be a mapping, got {_type_name(scorer)}")
        return None
    kind = scorer.get("type")
    if kind not in SCORER_OPTIONS:
        report(line, item_id, "scorer.type",
               f"{kind!r}: must be one of {', '.join(SCORER_OPTIONS)}")
        return None
    options = SCORER_OPTIONS[kind]
    for key, value in scorer.items():
        if key == "type":
            continue
        if key not in options:
            report(line, item_id, f"scorer.{key}",
                   f"unknown option for a {kind} scorer (allowed: {', '.join(options) or 'none'})")
        elif not isinstance(value, options[key]) or (
            isinstance(value, bool) and bool not in options[key]
        ):
            report(line, item_id, f"scorer.{key}", f"wrong type: {_type_name(value)}")
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
            report(located.line_of("expected_answer"), item_id, "expected_answer",
                   f"{expected_answer!r} is not a number (the scorer is numeric)")
        tolerance = scorer.get("tolerance", 0)
        if isinstance(tolerance, int | float) and not isinstance(tolerance, bool) and tolerance < 0:
            report(line, item_id, "scorer.tolerance", "must be >= 0")
    return scorer


def _mapping_field(
    located: _Located, key: str, report: _Report, item_id: str | None,
) -> dict[str, Any]:
    value = located.data.get(key)
    if value is None:
        return {}
    if isinstance(value, _BadJson):
        report(located.line_of(key), item_id, key, value.message)
        return {}
    if not isinstance(value, dict):
        report(located.line_of(key), item_id, key, f"must be a mapping, got {_type_name(value)}")
        return {}
    return value


def _item(
    located: _Located, definition: _Definition, report: _Report, seen: dict[str, int],
) -> GoldenItem | None:
    errors_before = len(report.sink)
    raw_id = located.data.get("id")
    item_id = _text(located, "id", report, None, required=True, numbers_ok=False)
    label = item_id if item_id is not None else (str(raw_id) if raw_id is not None else None)
    if item_id is not None:
        if not _ID_RE.match(item_id):
            report(located.line_of("id"), label, "id",
                   "use letters, digits, '_', '.', ':', '-' (no spaces)")
        elif item_id in seen:
            report(located.line_of("id"), label, "id",
                   f"duplicate id (first used at line {seen[item_id]})")
        else:
            seen[item_id] = located.line or 0
    located.report_duplicates(report, label)
    _unknown_fields(located, _ITEM_FIELDS, report, label)
    grader, answer = definition.kind == "grader", definition.kind == "answer"
    stage = _text(located, "stage", report, label, required=False)
    category = _text(located, "category", report, label, required=False)
    rubric = _text(located, "rubric", report, label, required=False)
    if rubric is None and "rubric" not in located.data and definition.default_rubric is None:
        report(located.line, label, "rubric", "missing field and the suite has no default_rubric")
    submission = _text(located, "submission", report, label, required=grader)
    question = _text(located, "question", report, label, required=answer)
    prior_context = _text(located, "prior_context", report, label, required=False)
    expected_answer = _text(located, "expected_answer", report, label, required=answer,
                            numbers_ok=True)
    verdict = _text(located, "expected_verdict", report, label, required=grader)
    if verdict is None and answer and definition.passing_verdicts and (
        "expected_verdict" not in located.data
    ):
        verdict = definition.passing_verdicts[0]  # an answer item's target: a passing answer
    if verdict is not None and definition.verdicts and verdict not in definition.verdicts:
        report(located.line_of("expected_verdict"), label, "expected_verdict",
               f"unknown verdict {verdict!r} (the suite's verdicts: "
               f"{', '.join(definition.verdicts)})")
    tags = _labels(located, "expected_issue_tags", report, label, required=False)
    for tag in tags or ():
        if definition.issue_tags is not None and tag not in definition.issue_tags:
            report(located.line_of("expected_issue_tags"), label, "expected_issue_tags",
                   f"unknown issue tag {tag!r} (not in the suite's issue_tags)")
    scorer = _scorer(located, report, label, expected_answer)
    metadata = _mapping_field(located, "metadata", report, label)
    if len(report.sink) > errors_before:
        return None
    assert item_id is not None and verdict is not None and tags is not None  # reported otherwise
    item = GoldenItem(
        item_id=item_id, stage=stage, category=category,
        rubric=rubric if rubric is not None else definition.default_rubric,
        submission=submission, question=question, prior_context=prior_context,
        expected_verdict=verdict, expected_answer=expected_answer, expected_issue_tags=tags,
        scorer=scorer, metadata=metadata, line=located.line,
    )
    return replace(item, item_hash=_digest(item.canonical()))


def _validate(path: Path, report: _Report) -> Suite | None:
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        report(None, None, "(file)",
               f"unknown format {path.suffix!r}: use {', '.join(SUITE_SUFFIXES)}")
        return None
    document = reader(path, report)
    if document is None:
        return None
    header_report = _Report(document.header_path, report.sink)
    definition = _definition(document.header, header_report)
    if document.items is None:
        return None
    if not document.items:
        report(document.items_line, None, "items", "the suite has no items")
        return None
    seen: dict[str, int] = {}
    items = [_item(located, definition, report, seen) for located in document.items]
    if not definition.valid or any(item is None for item in items):
        return None
    checked = tuple(item for item in items if item is not None)
    return Suite(
        name=definition.name, description=definition.description, kind=definition.kind,
        verdicts=definition.verdicts, passing_verdicts=definition.passing_verdicts,
        issue_tags=definition.issue_tags, default_rubric=definition.default_rubric,
        items=checked,
        version=suite_version(definition.canonical(), checked),
        source_path=str(path),
    )


def _resolve_csv_header(path: Path) -> Path:
    """Pointing at `x.suite.yaml` means the CSV suite `x.csv` it describes."""
    if path.name.endswith(CSV_HEADER_SUFFIX):
        sibling = path.with_name(path.name[: -len(CSV_HEADER_SUFFIX)] + ".csv")
        if sibling.exists():
            return sibling
    return path


def load_suite(path: Path | str) -> Suite:
    """Read and validate one suite file; GoldenSetError lists every problem in it."""
    path = _resolve_csv_header(Path(path))
    issues: list[GoldenIssue] = []
    if not path.is_file():
        raise GoldenSetError([GoldenIssue(str(path), None, None, "(file)", "no such file")])
    suite = _validate(path, _Report(str(path), issues))
    issues.sort(key=lambda issue: (issue.path != str(path), issue.line or 0))
    if issues or suite is None:
        raise GoldenSetError(issues or [GoldenIssue(str(path), None, None, "(file)", "invalid")])
    return suite


def suite_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files to load: files as given, folders searched recursively for suite files.

    A CSV suite's `<stem>.suite.yaml` header is not a suite of its own and is skipped in folders.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if (candidate.is_file() and candidate.suffix.lower() in SUITE_SUFFIXES
                        and not candidate.name.endswith(CSV_HEADER_SUFFIX)):
                    found.append(candidate)
        else:
            found.append(_resolve_csv_header(path))
    return list(dict.fromkeys(found))


def load_suites(paths: Iterable[Path | str]) -> list[Suite]:
    """Load many suites (folders are searched); all problems of all files in one error.

    Two different suites with one name would make `suite` in the run log ambiguous: an error.
    """
    issues: list[GoldenIssue] = []
    suites: list[Suite] = []
    for path in suite_paths(paths):
        try:
            suites.append(load_suite(path))
        except GoldenSetError as exc:
            issues.extend(exc.issues)
    first_by_name: dict[str, Suite] = {}
    for suite in suites:
        other = first_by_name.setdefault(suite.name, suite)
        if other is not suite and other.version != suite.version:
            issues.append(GoldenIssue(str(suite.source_path), None, None, "name",
                                      f"suite {suite.name!r} is also defined, differently, "
                                      f"in {other.source_path}"))
    if issues:
        raise GoldenSetError(issues)
    return suites


def suites_from_config(config: Config) -> dict[str, Suite]:
    """The suites named in `config.suites`, keyed by their config name.

    The file's `name` must equal the config key: the run log records the suite by name, and a
    second spelling would split one suite's history in two.
    """
    issues: list[GoldenIssue] = []
    suites: dict[str, Suite] = {}
    for key, entry in config.suites.items():
        path = config.resolve_path(entry.path)
        try:
            suite = load_suite(path)
        except GoldenSetError as exc:
            issues.extend(exc.issues)
            continue
        if suite.name != key:
            issues.append(GoldenIssue(str(path), None, None, "name",
                                      f"the file names the suite {suite.name!r} but "
                                      f"{config.source_path or 'the config'} calls it {key!r}"))
            continue
        suites[key] = suite
    if issues:
        raise GoldenSetError(issues)
    return suites


# --- the warehouse ------------------------------------------------------------------------------

_INSERT_SUITE = """
insert into raw.golden_suites (suite, suite_version, kind, description, verdicts,
    passing_verdicts, issue_tags, item_count, source_path)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (suite, suite_version) do nothing
"""
_INSERT_ITEM = """
insert into raw.golden_items (suite, suite_version, item_id, item_hash, stage, category,
    inputs, expected)
values (%s, %s, %s, %s, %s, %s, %s, %s)
on conflict (suite, suite_version, item_id) do nothing
"""


def store_suite(conn, suite: Suite) -> bool:
    """Insert a suite version and its items in one transaction; True if the version was new.

    A version is immutable (its id is its content hash), so when the suite row already exists
    its items are complete too (they were written in the same transaction) and nothing is written.
    """
    from psycopg.types.json import Jsonb

    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_INSERT_SUITE, (
            suite.name, suite.version, suite.kind, suite.description, list(suite.verdicts),
            list(suite.passing_verdicts), list(suite.issue_tags), len(suite.items),
            suite.source_path,
        ))
        if cur.rowcount != 1:
            return False
        cur.executemany(_INSERT_ITEM, [
            (suite.name, suite.version, item.item_id, item.item_hash, item.stage, item.category,
             Jsonb(item.inputs()), Jsonb(item.expected()))
            for item in suite.items
        ])
    return True
