"""Golden sets: suites of graded examples, their validation and their content-hash versions.

A suite declares what a verdict may be, which verdicts pass, the issue-tag taxonomy and a default
rubric; its items carry the inputs (rubric + submission for a `grader` suite, a question for an
`answer` suite) and what a good model should say about them. Suites are written by people, so
every mistake is reported at once, each naming file, line (or item id) and field: a wrong golden
label silently poisons every accuracy number computed from it.

Three formats, one model: YAML (primary, `yaml_format`), JSONL (`jsonl_format`) and CSV with a
`<stem>.suite.yaml` header (`csv_format`) all become located mappings (`located`), which
`header`, `item` and `scorer` check against `schema`; `loading` puts it together, `model` holds
the result and its content-hash versions, `store` writes it to the warehouse.
"""

from evals.golden.csv_format import CSV_HEADER_SUFFIX, LIST_SEPARATOR, csv_header_path
from evals.golden.loading import (
    SUITE_SUFFIXES,
    load_suite,
    load_suites,
    suite_paths,
    suites_from_config,
)
from evals.golden.model import GoldenIssue, GoldenItem, GoldenSetError, Suite, suite_version
from evals.golden.schema import KINDS, SCORER_OPTIONS
from evals.golden.store import store_suite
from evals.golden.yaml_format import YAML_SUFFIXES

__all__ = [
    "CSV_HEADER_SUFFIX",
    "KINDS",
    "LIST_SEPARATOR",
    "SCORER_OPTIONS",
    "SUITE_SUFFIXES",
    "YAML_SUFFIXES",
    "GoldenIssue",
    "GoldenItem",
    "GoldenSetError",
    "Suite",
    "csv_header_path",
    "load_suite",
    "load_suites",
    "store_suite",
    "suite_paths",
    "suite_version",
    "suites_from_config",
]
