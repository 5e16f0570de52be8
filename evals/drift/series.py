"""Daily count series the detectors read: rows and successes per calendar day (UTC).

Gaps are filled with zeros on purpose: a night without rows is a night with n = 0, never
silently the previous night.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """Rows and successes (passes, agreements...) per calendar day, gaps filled with zeros."""

    first_day: date
    n: npt.NDArray[np.int64]
    successes: npt.NDArray[np.int64]

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=len(self.n) - 1)

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        day: str = "day",
        n: str = "n",
        successes: str = "passes",
        as_of: date | None = None,
    ) -> DailyCounts:
        """From mart rows (dicts, or a DataFrame's `to_dict("records")`); repeated days add up.

        `as_of` extends the calendar to the night being checked, so a night without rows is a
        night with n = 0 rather than silently the previous one.
        """
        totals: dict[date, list[int]] = {}
        for row in rows:
            key = as_date(row[day])
            pair = totals.setdefault(key, [0, 0])
            pair[0] += int(row[n])
            pair[1] += int(row[successes])
        if as_of is not None:
            totals = {key: value for key, value in totals.items() if key <= as_of}
            totals.setdefault(as_of, [0, 0])
        if not totals:
            raise ValueError("no days in the series")
        first, last = min(totals), max(totals)
        length = (last - first).days + 1
        counts = np.zeros((2, length), dtype=np.int64)
        for key, (rows_n, rows_s) in totals.items():
            counts[:, (key - first).days] = (rows_n, rows_s)
        if np.any(counts[1] > counts[0]) or np.any(counts < 0):
            raise ValueError("successes must lie in [0, n] on every day")
        return cls(first_day=first, n=counts[0], successes=counts[1])

    def until(self, day: date) -> DailyCounts:
        """The series up to and including `day` (zeros after its end)."""
        length = (day - self.first_day).days + 1
        if length <= 0:
            raise ValueError(f"{day} is before the series starts ({self.first_day})")
        pad = max(0, length - len(self.n))
        return DailyCounts(
            first_day=self.first_day,
            n=np.pad(self.n, (0, pad))[:length],
            successes=np.pad(self.successes, (0, pad))[:length],
        )


def as_date(value: Any) -> date:
    """A mart's day (date, timestamp or ISO text) as a calendar date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def align(series: Mapping[K, DailyCounts], as_of: date) -> tuple[list[K], np.ndarray, np.ndarray]:
    """Stack series on one calendar ending at `as_of`: (keys, n[S, T], successes[S, T]),
    keys in the order of their text."""
    subjects = sorted(series, key=str)
    first = min(series[name].first_day for name in subjects)
    length = (as_of - first).days + 1
    n = np.zeros((len(subjects), length), dtype=np.int64)
    x = np.zeros_like(n)
    for row, name in enumerate(subjects):
        one = series[name]
        offset = (one.first_day - first).days
        stop = min(length, offset + len(one.n))
        if stop > offset:
            n[row, offset:stop] = one.n[: stop - offset]
            x[row, offset:stop] = one.successes[: stop - offset]
    return subjects, n, x


def pooled(series: DailyCounts, as_of: date, days: int) -> tuple[int, int, date]:
    """Rows, successes and first day of the `days` nights ending at `as_of`, pooled."""
    clipped = series.until(as_of)
    n, x = clipped.n[-days:], clipped.successes[-days:]
    return int(n.sum()), int(x.sum()), as_of - timedelta(days=min(days, len(clipped.n)) - 1)
