"""What a suite file may contain: suite kinds, field names, scorers and the shape of names."""

from __future__ import annotations

import re

KINDS = ("grader", "answer", "pairwise")

PAIRWISE_VERDICTS = ("a", "b", "tie")
"""The fixed verdicts of a pairwise suite, in the item's own labelling (never the slot shown)."""

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
    "verdict_labels",
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
PAIRWISE_RESPONSE_FIELDS = ("response_a", "response_b", "source_a", "source_b")
PAIRWISE_ITEM_FIELDS = (
    "id",
    "stage",
    "category",
    "rubric",
    "question",
    "prior_context",
    "reference",
    "expected_verdict",
    *PAIRWISE_RESPONSE_FIELDS,
    "metadata",
)
ALL_ITEM_FIELDS = tuple(dict.fromkeys((*ITEM_FIELDS, *PAIRWISE_ITEM_FIELDS)))
"""Every column a CSV suite may have (which ones an item may use depends on the suite kind)."""
