"""The suite header: what a verdict may be, which verdicts pass, issue tags, default rubric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evals.golden import fields
from evals.golden.located import Located, Report
from evals.golden.schema import HEADER_FIELDS, KINDS, NAME_RE, PAIRWISE_VERDICTS


@dataclass(frozen=True)
class Definition:
    """The suite header as far as it could be read; a None field was reported as invalid."""

    name: str | None
    description: str
    kind: str | None
    verdicts: tuple[str, ...] | None
    passing_verdicts: tuple[str, ...] | None
    issue_tags: tuple[str, ...] | None
    default_rubric: str | None
    valid: bool
    verdict_labels: dict[str, str] | None = None

    def canonical(self) -> dict[str, Any]:
        canonical = {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "verdicts": list(self.verdicts or ()),
            "passing_verdicts": list(self.passing_verdicts or ()),
            "issue_tags": list(self.issue_tags or ()),
            "default_rubric": self.default_rubric,
        }
        if self.verdict_labels:  # only then: the versions of suites without labels stay put
            canonical["verdict_labels"] = self.verdict_labels
        return canonical


def read_definition(header: Located, report: Report) -> Definition:
    """Read the suite header; items are still checked against whatever part of it is valid."""
    errors_before = len(report.sink)
    fields.unstorable_fields(header, report, None)
    header.report_duplicates(report, None)
    fields.unknown_fields(header, HEADER_FIELDS, report, None)
    name = fields.text(header, "name", report, None, required=True)
    if name is not None and not NAME_RE.match(name):
        report(
            header.line_of("name"),
            None,
            "name",
            f"{name!r}: use letters, digits, '_', '.', '-' (no spaces)",
        )
    description = fields.text(header, "description", report, None, required=False) or ""
    kind = fields.text(header, "kind", report, None, required=True)
    if kind is not None and kind not in KINDS:
        report(header.line_of("kind"), None, "kind", f"{kind!r}: must be one of {', '.join(KINDS)}")
        kind = None
    if kind == "pairwise":
        return _pairwise_definition(header, report, name, description, errors_before)
    if "verdict_labels" in header.data:
        report(header.line_of("verdict_labels"), None, "verdict_labels", "only pairwise suites")
    verdicts = fields.labels(header, "verdicts", report, None, required=True)
    if verdicts == ():
        report(header.line_of("verdicts"), None, "verdicts", "must list at least one verdict")
        verdicts = None
    passing = fields.labels(header, "passing_verdicts", report, None, required=True)
    if passing == ():
        report(
            header.line_of("passing_verdicts"),
            None,
            "passing_verdicts",
            "must list at least one verdict",
        )
    for verdict in passing or ():
        if verdicts is not None and verdict not in verdicts:
            report(
                header.line_of("passing_verdicts"),
                None,
                "passing_verdicts",
                f"{verdict!r} is not one of the suite's verdicts ({', '.join(verdicts)})",
            )
    tags = fields.labels(header, "issue_tags", report, None, required=False)
    default_rubric = fields.text(header, "default_rubric", report, None, required=False)
    return Definition(
        name,
        description,
        kind,
        verdicts,
        passing or None,
        tags,
        default_rubric,
        valid=len(report.sink) == errors_before,
    )


def _pairwise_definition(
    header: Located, report: Report, name: str | None, description: str, errors_before: int
) -> Definition:
    """A pairwise header: the verdicts are fixed (a, b, tie), none passes; display names may be
    given per verdict in `verdict_labels`."""
    verdicts = fields.labels(header, "verdicts", report, None, required=False)
    if verdicts and set(verdicts) != set(PAIRWISE_VERDICTS):
        report(
            header.line_of("verdicts"),
            None,
            "verdicts",
            f"a pairwise suite's verdicts are {', '.join(PAIRWISE_VERDICTS)} (rename them for"
            " display with verdict_labels)",
        )
    if header.data.get("passing_verdicts"):
        report(
            header.line_of("passing_verdicts"),
            None,
            "passing_verdicts",
            "a pairwise suite has no passing verdicts (a verdict says which response is better)",
        )
    labels = fields.mapping(header, "verdict_labels", report, None)
    for verdict, display in labels.items():
        if verdict not in PAIRWISE_VERDICTS:
            report(
                header.line_of("verdict_labels"),
                None,
                f"verdict_labels.{verdict}",
                f"not a pairwise verdict ({', '.join(PAIRWISE_VERDICTS)})",
            )
        elif not isinstance(display, str) or not display.strip():
            report(
                header.line_of("verdict_labels"),
                None,
                f"verdict_labels.{verdict}",
                "must be a non-empty string",
            )
    tags = fields.labels(header, "issue_tags", report, None, required=False)
    default_rubric = fields.text(header, "default_rubric", report, None, required=False)
    return Definition(
        name,
        description,
        "pairwise",
        PAIRWISE_VERDICTS,
        (),
        tags,
        default_rubric,
        valid=len(report.sink) == errors_before,
        verdict_labels=dict(labels),
    )
