"""The ops overview's aggregates, each one query on a dbt mart, all run at once.

The queries are the `.sql` files in queries/ (marts named by `ref`, resolved by `evals.marts`;
the reader is the dbt exposure `web_overview`). Every query starts from the same `bounds` CTE
(queries/_bounds.sql), so the default window (the 30 days ending at the newest day in the marts)
is resolved inside each query rather than by an extra round trip, and the queries stay
independent of each other. The filters are bound parameters; `null` means "any".
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
_NAMES = ("kpis", "agreement", "trend", "stages", "issues", "costs", "cost_by_source")


@dataclass(frozen=True)
class OverviewFilters:
    date_from: date | None = None
    date_to: date | None = None
    suite: str | None = None
    source: str | None = None

    def params(self) -> dict[str, Any]:
        return {"date_from": self.date_from, "date_to": self.date_to, "suite": self.suite,
                "source": self.source}


def overview_queries(filters: OverviewFilters, min_daily_n: int = 30) -> dict[str, Query]:
    """The page's queries; a day counts toward a band flag only with `min_daily_n` verdicts."""
    params = {**filters.params(), "min_daily_n": min_daily_n, "default_days": DEFAULT_DAYS}
    return {name: (load_query(QUERIES / f"{name}.sql"), params) for name in _NAMES}
