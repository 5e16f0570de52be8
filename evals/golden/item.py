"""One golden item checked against its suite's header, hashed once it is valid."""

from __future__ import annotations

from dataclasses import replace

from evals.golden import fields
from evals.golden.header import Definition
from evals.golden.located import Located, Report
from evals.golden.model import GoldenItem, PairResponses, digest
from evals.golden.schema import ID_RE, ITEM_FIELDS, PAIRWISE_ITEM_FIELDS
from evals.golden.scorer import read_scorer


def read_item(
    located: Located,
    definition: Definition,
    report: Report,
    seen: dict[str, int],
) -> GoldenItem | None:
    """The row as a hashed item, or None when it has errors (each one reported)."""
    errors_before = len(report.sink)
    item_id, label = _read_id(located, report, seen)
    fields.unstorable_fields(located, report, label)
    located.report_duplicates(report, label)
    if definition.kind == "pairwise":
        return _read_pairwise(located, definition, report, item_id, label, errors_before)
    fields.unknown_fields(located, ITEM_FIELDS, report, label)
    grader, answer = definition.kind == "grader", definition.kind == "answer"
    stage = fields.text(located, "stage", report, label, required=False)
    category = fields.text(located, "category", report, label, required=False)
    rubric = fields.text(located, "rubric", report, label, required=False)
    if rubric is None and "rubric" not in located.data and definition.default_rubric is None:
        report(located.line, label, "rubric", "missing field and the suite has no default_rubric")
    submission = fields.text(located, "submission", report, label, required=grader)
    question = fields.text(located, "question", report, label, required=answer)
    prior_context = fields.text(located, "prior_context", report, label, required=False)
    expected_answer = fields.text(
        located, "expected_answer", report, label, required=answer, numbers_ok=True
    )
    verdict = _read_verdict(located, definition, report, label)
    tags = _read_tags(located, definition, report, label)
    scorer = read_scorer(located, report, label, expected_answer)
    metadata = fields.mapping(located, "metadata", report, label)
    if len(report.sink) > errors_before or definition.kind is None:
        return None  # an invalid kind was reported by the header check
    assert item_id is not None and tags is not None  # reported otherwise
    item = GoldenItem(
        item_id=item_id,
        stage=stage,
        category=category,
        rubric=rubric if rubric is not None else definition.default_rubric,
        submission=submission,
        question=question,
        prior_context=prior_context,
        expected_verdict=verdict,
        expected_answer=expected_answer,
        expected_issue_tags=tags,
        scorer=scorer,
        metadata=metadata,
        line=located.line,
    )
    return replace(item, item_hash=digest(item.canonical()))


def _read_id(
    located: Located, report: Report, seen: dict[str, int]
) -> tuple[str | None, str | None]:
    """(id, label for reports): the id when valid and first used, recorded in `seen`; the label
    names the row in reports even when its id is not."""
    raw_id = located.data.get("id")
    item_id = fields.text(located, "id", report, None, required=True, numbers_ok=False)
    label = item_id if item_id is not None else (str(raw_id) if raw_id is not None else None)
    if item_id is not None:
        if not ID_RE.match(item_id):
            report(
                located.line_of("id"),
                label,
                "id",
                "use letters, digits, '_', '.', ':', '-' (no spaces)",
            )
        elif item_id in seen:
            report(
                located.line_of("id"),
                label,
                "id",
                f"duplicate id (first used at line {seen[item_id]})",
            )
        else:
            seen[item_id] = located.line or 0
    return item_id, label


def _read_verdict(
    located: Located, definition: Definition, report: Report, label: str | None
) -> str | None:
    """The item's expected verdict, one of the suite's; an answer item without one aims at the
    first passing verdict."""
    grader, answer = definition.kind == "grader", definition.kind == "answer"
    verdict = fields.text(located, "expected_verdict", report, label, required=grader)
    if (
        verdict is None
        and answer
        and definition.passing_verdicts
        and ("expected_verdict" not in located.data)
    ):
        verdict = definition.passing_verdicts[0]  # an answer item's target: a passing answer
    if verdict is not None and definition.verdicts and verdict not in definition.verdicts:
        report(
            located.line_of("expected_verdict"),
            label,
            "expected_verdict",
            f"unknown verdict {verdict!r} (the suite's verdicts: {', '.join(definition.verdicts)})",
        )
    return verdict


def _read_tags(
    located: Located, definition: Definition, report: Report, label: str | None
) -> tuple[str, ...] | None:
    """The item's expected issue tags, each one the suite declares."""
    tags = fields.labels(located, "expected_issue_tags", report, label, required=False)
    for tag in tags or ():
        if definition.issue_tags is not None and tag not in definition.issue_tags:
            report(
                located.line_of("expected_issue_tags"),
                label,
                "expected_issue_tags",
                f"unknown issue tag {tag!r} (not in the suite's issue_tags)",
            )
    return tags


def _read_pairwise(
    located: Located,
    definition: Definition,
    report: Report,
    item_id: str | None,
    label: str | None,
    errors_before: int,
) -> GoldenItem | None:
    """A pairwise item: a question, an optional reference and reference preference, and both
    stored responses or neither (then two configured sides answer at run time)."""
    fields.unknown_fields(located, PAIRWISE_ITEM_FIELDS, report, label)
    stage = fields.text(located, "stage", report, label, required=False)
    category = fields.text(located, "category", report, label, required=False)
    rubric = fields.text(located, "rubric", report, label, required=False)
    question = fields.text(located, "question", report, label, required=True)
    prior_context = fields.text(located, "prior_context", report, label, required=False)
    reference = fields.text(located, "reference", report, label, required=False, numbers_ok=True)
    verdict = _read_verdict(located, definition, report, label)
    responses = _read_responses(located, report, label)
    metadata = fields.mapping(located, "metadata", report, label)
    if len(report.sink) > errors_before:
        return None
    assert item_id is not None  # reported otherwise
    item = GoldenItem(
        item_id=item_id,
        stage=stage,
        category=category,
        rubric=rubric if rubric is not None else definition.default_rubric,
        submission=None,
        question=question,
        prior_context=prior_context,
        expected_verdict=verdict,
        expected_answer=reference,
        expected_issue_tags=(),
        metadata=metadata,
        line=located.line,
        responses=responses,
    )
    return replace(item, item_hash=digest(item.canonical()))


def _read_responses(located: Located, report: Report, label: str | None) -> PairResponses | None:
    """Both responses with their sources, or None when the item gives neither (reported when
    it gives only one, or sources without responses, or one source for both)."""
    a = fields.text(located, "response_a", report, label, required=False)
    b = fields.text(located, "response_b", report, label, required=False)
    given = [key for key in ("response_a", "response_b") if located.data.get(key) is not None]
    if len(given) == 1:
        missing = "response_b" if given == ["response_a"] else "response_a"
        report(
            located.line_of(given[0]),
            label,
            missing,
            f"missing: the item gives {given[0]}; a pairwise item gives both responses or"
            " neither (then --baseline and --candidate answer it)",
        )
        return None
    source_a = fields.text(located, "source_a", report, label, required=False)
    source_b = fields.text(located, "source_b", report, label, required=False)
    if not given:
        for key in ("source_a", "source_b"):
            if key in located.data:
                report(located.line_of(key), label, key, "given without the two responses")
        return None
    if a is None or b is None:
        return None  # reported (not text, or empty)
    responses = PairResponses(a, b, source_a or "response_a", source_b or "response_b")
    if responses.source_a == responses.source_b:
        report(
            located.line_of("source_b"),
            label,
            "source_b",
            f"{responses.source_b!r} is also source_a: the two sides must differ",
        )
    return responses
