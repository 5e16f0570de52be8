"""Verdicts for captured grader replies: the same parser the runner uses, on the writer thread.

A production grader call is only useful to the marts with its verdict: the stage pass rates
are computed from it. When a captured row names a configured suite, the reply is parsed with
`evals.judging.parse_grade` against that suite's vocabulary and taxonomy; a reply that does not
parse becomes `parse_error` with the raw text kept, exactly as in a golden run. Rows that
already carry a verdict (explicit `capture(...)`) only get `passed` and the suite version.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from evals.capture.prepare import VerdictParser

if TYPE_CHECKING:
    from evals.config import Config
    from evals.golden import Suite
    from evals.runlog import RunRecord

log = logging.getLogger(__name__)

_GRADING_ROLES = ("grader", "judge")


class _SuiteVerdicts:
    def __init__(self, config: Config):
        self._config = config
        self._suites: dict[str, Suite] | None = None
        self._lock = threading.Lock()

    def suites(self) -> dict[str, Suite]:
        """Loaded on first use (on the writer thread), so `install()` stays instant."""
        with self._lock:
            if self._suites is None:
                from evals.golden import GoldenSetError, suites_from_config

                try:
                    self._suites = suites_from_config(self._config)
                except GoldenSetError as exc:
                    log.error("capture: suites unusable, verdicts left unparsed:\n%s", exc)
                    self._suites = {}
            return self._suites

    def __call__(self, record: RunRecord) -> None:
        if record.suite is None or record.role not in _GRADING_ROLES:
            return
        suite = self.suites().get(record.suite)
        if suite is None:
            return
        record.suite_version = record.suite_version or suite.version
        if record.verdict is not None:
            if record.passed is None:
                record.passed = suite.passes(record.verdict)
            return
        from evals.judging import parse_grade

        grade = parse_grade(record.output_text, suite)
        record.status = grade.status
        if grade.status != "ok":
            record.error_class, record.error_message = "ParseError", grade.problem
            return
        record.verdict, record.passed, record.score = grade.verdict, grade.passed, grade.score
        record.feedback, record.issue_tags = grade.feedback, grade.issue_tags
        if grade.unknown_tags:
            record.attributes = {**record.attributes, "unknown_issue_tags": grade.unknown_tags}


def suite_verdict_parser(config: Config) -> VerdictParser | None:
    """A parser for rows of the configured suites, or None when no suite is configured."""
    return _SuiteVerdicts(config) if config.suites else None
