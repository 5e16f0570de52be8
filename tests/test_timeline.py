"""A call's timeline: spans placed from the timings the run log stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evals.web.charts import timeline_chart
from evals.web.timeline import Span, call_spans, timeline

START = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _call(**changes) -> dict:
    return {
        "role": "candidate",
        "model": "m",
        "started_at": START,
        "attempts": 3,
        "latency_ms": 200.0,
        "timings": {"queued_ms": 50.0, "call_ms": 1000.0, "backoff_ms": 300.0, "parse_ms": 2.0},
        **changes,
    }


def test_a_retried_call_shows_queue_failed_attempts_waits_the_counted_call_and_parse():
    assert call_spans(_call()) == [
        Span("queued", "queued", 0.0, 50.0, 0),
        Span("attempts 1–2", "retry", 50.0, 500.0, 0),
        Span("back-off waits", "backoff", 550.0, 300.0, 0),
        Span("provider call (attempt 3)", "provider", 850.0, 200.0, 0),
        Span("parse", "parse", 1050.0, 2.0, 0),
    ]


def test_a_judge_call_is_a_child_span_placed_by_its_start():
    judge = _call(
        role="judge",
        model="j",
        attempts=1,
        started_at=START + timedelta(milliseconds=1100),
        latency_ms=80.0,
        timings={"queued_ms": 5.0, "call_ms": 80.0, "backoff_ms": 0.0},
    )
    spans = timeline(_call(), [judge])
    assert spans[5:] == [
        Span("judge j: queued", "queued", 1100.0, 5.0, 1),
        Span("judge j: provider call", "provider", 1105.0, 80.0, 1),
    ]


def test_a_call_without_timings_is_one_span_of_its_latency_and_the_chart_draws_each_span():
    spans = call_spans(_call(timings=None, attempts=1))
    assert spans == [Span("provider call", "provider", 0.0, 200.0, 0)]
    chart = str(timeline_chart(call_spans(_call())))
    assert chart.count("<rect") == 5
    assert "<title>back-off waits: 300.0 ms from 550.0 ms</title>" in chart
