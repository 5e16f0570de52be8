"""What a suite file may contain: suite kinds, field names, scorers and the shape of names."""

from __future__ import annotations

import re

KINDS = ("grader", "answer")

# Each deterministic scorer with the options it accepts (name -> allowed types).
SCORER_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "exact": {"case_sensitive": (bool,)},
    "contains": {"case_sensitive": (bool,)},
    "regex": {"pattern": (str,), "ignore_case": (bool,)},
    "numeric": {"tolerance": (int, float), "relative": (bool,)},
    "json": {"required_keys": (list,)},
}

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
LABEL_RE = re.compile(r"^[^\s|]+$")  # verdicts and tags: no whitespace, no CSV list separator

HEADER_FIELDS = (
    "name",
    "description",
    "kind",
    "verdicts",
    "passing_verdicts",
    "issue_tags",
    "default_rubric",
    "items",
)
_ITEM_TEXT_FIELDS = (
    "id",
    "stage",
    "category",
    "rubric",
    "submission",
    "question",
    "prior_context",
    "expected_verdict",
    "expected_answer",
)
ITEM_FIELDS = (*_ITEM_TEXT_FIELDS, "expected_issue_tags", "scorer", "metadata")
