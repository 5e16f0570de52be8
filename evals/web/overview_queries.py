"""The ops overview's aggregates, each one query on a dbt mart, all run at once.

The queries are the `.sql` files in queries/ (marts named by `ref`, resolved by `evals.marts`;
the reader is the dbt exposure `web_overview`). Every query starts from the same `bounds` CTE
(queries/_bounds.sql), so the default window (the 30 days ending at the newest day in the marts
that is not in the future)
is resolved inside each query rather than by an extra round trip, and the queries stay
independent of each other. The filters are bound parameters; `null` means "any".

Every figure is computed over one cohort (docs/bi.md, "Cohorts"; queries/_cohort.sql): one
source (production by default; "all sources" pools them and the page says so), one role (the
graded calls by default, the judges' calls on request: a judge's verdict on an answer is an
audit, not a second pass), optionally one suite, model and prompt version. A production call
re-graded by the reference judge is a `production_sample` row, so it never counts twice in
production's rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from evals.marts import load_query
from evals.web.db import Query

QUERIES = Path(__file__).with_name("queries")
DEFAULT_DAYS = 30
_NAMES = (
    "kpis",
    "agreement",
    "trend",
    "stages",
    "issues",
    "costs",
    "cost_by_source",
    "golden",
    "production_estimate",
    "later",
)


DEFAULT_SOURCE = "production"
ALL = "all"
ROLE_COHORTS = {"graded": "graded calls", "judge": "judges' calls", ALL: "all roles"}


@dataclass(frozen=True)
class OverviewFilters:
    """The cohort and window of the page; `source=None` / `role="all"` pool explicitly."""

    date_from: date | None = None
    date_to: date | None = None
    suite: str | None = None
    source: str | None = DEFAULT_SOURCE
    role: str = "graded"
    model: str | None = None
    prompt_version: str | None = None

    def params(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from,
            "date_to": self.date_to,
            "suite": self.suite,
            "source": self.source,
            "role": self.role,
            "model": self.model,
            "prompt_version": self.prompt_version,
        }

    def cohort_label(self) -> str:
        """What every figure on the page covers, pooled dimensions named as such."""
        parts = [
            self.source or "all sources (pooled)",
            ROLE_COHORTS[self.role],
            f"suite {self.suite}" if self.suite else "all suites",
            f"model {self.model}" if self.model else "all models",
            f"prompt {self.prompt_version[:10]}" if self.prompt_version else "all prompt versions",
        ]
        return ", ".join(parts)


def overview_queries(filters: OverviewFilters, min_daily_n: int = 30) -> dict[str, Query]:
    """The page's queries; a day counts toward a band flag only with `min_daily_n` verdicts."""
    params = {**filters.params(), "min_daily_n": min_daily_n, "default_days": DEFAULT_DAYS}
    return {name: (load_query(QUERIES / f"{name}.sql"), params) for name in _NAMES}
