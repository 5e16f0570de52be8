"""The fake provider's own counters, which the rate-limit benchmark's verdict rests on."""

from __future__ import annotations

from fake_openai import most_within
from hypothesis import given
from hypothesis import strategies as st


@given(st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), max_size=80))
def test_most_within_a_window_matches_counting_every_window(times: list[float]) -> None:
    times.sort()
    # every densest window can be slid to start at one of the arrivals
    brute = max((sum(start <= t < start + 60.0 for t in times) for start in times), default=0)
    assert most_within(times, 60.0) == brute


def test_a_minute_boundary_is_not_inside_the_window() -> None:
    assert most_within([0.0, 30.0, 60.0, 119.9], 60.0) == 2
