"""The rpm pacer, by its bookings: what a provider counting arrivals per minute would see."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from evals.limits import Pacer


@given(st.integers(min_value=1, max_value=5000))
def test_no_minute_holds_more_than_rpm_booked_starts(rpm: int) -> None:
    pacer = Pacer(rpm)
    booked = [pacer.book() for _ in range(rpm + 1)]  # every call asks at once
    # the (rpm + 1)th start lies beyond the minute that holds the first, with room to spare
    # for the request's way to the provider
    assert booked[rpm] - booked[0] >= 60.0 + 0.4
    # and the allowance is used: rpm starts fit in the minute and a half second
    assert booked[rpm - 1] - booked[0] <= 60.5
