"""A call's timeline on /runs/{id}: spans from the timings the run log stores.

The client (evals.llm) stores per call: `queued_ms` (waiting for a concurrency slot),
`call_ms` (first attempt to last reply, back-offs included), `backoff_ms` (the sum of the
waits between attempts) and `latency_ms` (the last attempt); the runner adds `parse_ms`. One
attempt's own duration is not stored, so the earlier, failed attempts show as one span (their
total), the waits as another, then the last attempt (the provider call that counted) and the
parse. A judge's call on this one is a child span, placed by its own start time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Span:
    label: str
    kind: str
    start_ms: float
    duration_ms: float
    depth: int


def call_spans(row: dict[str, Any], offset_ms: float = 0.0, depth: int = 0) -> list[Span]:
    """The spans of one stored call, starting at `offset_ms`; one span when it has no timings
    (an imported or captured call: only its latency is known)."""
    timings = row.get("timings") or {}
    latency = float(row.get("latency_ms") or 0.0)
    prefix = f"{row['role']} {row['model']}: " if depth else ""
    if "call_ms" not in timings:
        return [Span(f"{prefix}provider call", "provider", offset_ms, latency, depth)]
    queued, call = float(timings.get("queued_ms", 0.0)), float(timings["call_ms"])
    backoff = float(timings.get("backoff_ms", 0.0))
    spans = [Span(f"{prefix}queued", "queued", offset_ms, queued, depth)]
    at = offset_ms + queued
    attempts = int(row.get("attempts") or 1)
    if attempts > 1:
        earlier = max(0.0, call - backoff - latency)
        spans.append(Span(f"{prefix}attempts 1–{attempts - 1}", "retry", at, earlier, depth))
        spans.append(Span(f"{prefix}back-off waits", "backoff", at + earlier, backoff, depth))
    last = f"provider call (attempt {attempts})" if attempts > 1 else "provider call"
    spans.append(Span(f"{prefix}{last}", "provider", at + call - latency, latency, depth))
    if "parse_ms" in timings:
        spans.append(Span(f"{prefix}parse", "parse", at + call, float(timings["parse_ms"]), depth))
    return spans


def timeline(record: dict[str, Any], children: list[dict[str, Any]]) -> list[Span]:
    """The call's spans, then each judge call on it as a child placed by its start time."""
    spans = call_spans(record)
    for child in children:
        if child.get("role") == "judge":
            offset = (child["started_at"] - record["started_at"]).total_seconds() * 1000
            spans.extend(call_spans(child, offset, depth=1))
    return spans
