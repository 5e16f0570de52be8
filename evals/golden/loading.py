"""Files to suites: pick the reader by suffix, validate, and report every problem of every file
in one GoldenSetError."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from evals.golden.csv_format import CSV_HEADER_SUFFIX, read_csv, resolve_csv_header
from evals.golden.header import read_definition
from evals.golden.item import read_item
from evals.golden.jsonl_format import read_jsonl
from evals.golden.located import Document, Report
from evals.golden.model import GoldenIssue, GoldenSetError, Suite, suite_version
from evals.golden.yaml_format import YAML_SUFFIXES, read_yaml

if TYPE_CHECKING:
    from evals.config import Config

SUITE_SUFFIXES = (*YAML_SUFFIXES, ".jsonl", ".csv")

_READERS: dict[str, Callable[[Path, Report], Document | None]] = {
    ".yaml": read_yaml,
    ".yml": read_yaml,
    ".jsonl": read_jsonl,
    ".csv": read_csv,
}


def _validate(path: Path, report: Report) -> Suite | None:
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        report(
            None, None, "(file)", f"unknown format {path.suffix!r}: use {', '.join(SUITE_SUFFIXES)}"
        )
        return None
    document = reader(path, report)
    if document is None:
        return None
    header_report = Report(document.header_path, report.sink)
    definition = read_definition(document.header, header_report)
    if document.items is None:
        return None
    if not document.items:
        report(document.items_line, None, "items", "the suite has no items")
        return None
    seen: dict[str, int] = {}
    items = [read_item(located, definition, report, seen) for located in document.items]
    if not definition.valid or any(item is None for item in items):
        return None
    checked = tuple(item for item in items if item is not None)
    return Suite(
        name=definition.name,
        description=definition.description,
        kind=definition.kind,
        verdicts=definition.verdicts,
        passing_verdicts=definition.passing_verdicts,
        issue_tags=definition.issue_tags,
        default_rubric=definition.default_rubric,
        items=checked,
        version=suite_version(definition.canonical(), checked),
        source_path=str(path),
        verdict_labels=definition.verdict_labels or {},
    )


def load_suite(path: Path | str) -> Suite:
    """Read and validate one suite file; GoldenSetError lists every problem in it."""
    path = resolve_csv_header(Path(path))
    issues: list[GoldenIssue] = []
    if not path.is_file():
        raise GoldenSetError([GoldenIssue(str(path), None, None, "(file)", "no such file")])
    suite = _validate(path, Report(str(path), issues))
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
                if (
                    candidate.is_file()
                    and candidate.suffix.lower() in SUITE_SUFFIXES
                    and not candidate.name.endswith(CSV_HEADER_SUFFIX)
                ):
                    found.append(candidate)
        else:
            found.append(resolve_csv_header(path))
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
            issues.append(
                GoldenIssue(
                    str(suite.source_path),
                    None,
                    None,
                    "name",
                    f"suite {suite.name!r} is also defined, differently, in {other.source_path}",
                )
            )
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
            issues.append(
                GoldenIssue(
                    str(path),
                    None,
                    None,
                    "name",
                    f"the file names the suite {suite.name!r} but "
                    f"{config.source_path or 'the config'} calls it {key!r}",
                )
            )
            continue
        suites[key] = suite
    if issues:
        raise GoldenSetError(issues)
    return suites
