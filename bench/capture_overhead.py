"""Production capture: what the app pays per call, and what the background writer sustains.

Measures, against a throwaway embedded warehouse (or EVALHOUSE_DATABASE_URL):

1. `capture.capture(...)` on the app's thread: per-call latency (mean, p50, p99, max) while the
   writer drains concurrently — the goal is < 0.5 ms;
2. the LiteLLM hook (`EvalhouseCallback.log_success_event`) with the kwargs of a real call to
   the simulated provider: per-call latency of building the row and enqueueing it;
3. `litellm.completion` end to end with and without the callback: CPU ms per call;
   (and, in 1., the writer: rows/s from queue to committed rows, unique texts: full redaction);
4. an outage: rows/s into the fsync'd spool, then replayed into the warehouse.

    .venv/bin/python -m bench.capture_overhead [--calls 20000] [--litellm-calls 400]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench._warehouse import bench_warehouse
from evals import capture, warehouse
from evals.capture.prepare import RowPreparer
from evals.capture.spool import Spool
from evals.capture.writer import CaptureWriter
from evals.config import CaptureConfig, Config, load_config
from evals.runlog import RunRecord

_WORDS = (
    "loop",
    "index",
    "variable",
    "function",
    "return",
    "list",
    "edge",
    "case",
    "value",
    "string",
    "learner",
    "rubric",
    "print",
    "range",
    "boundary",
    "answer",
    "type",
)
REPO = Path(__file__).resolve().parents[1]


def _text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(_WORDS))
    return " ".join(words)[:chars]


def _fields(rng: random.Random) -> dict:
    """A production grader call: ~2 KB of unique text (system prompt, rubric, submission, reply)."""
    rubric, submission = _text(rng, 300), _text(rng, 500)
    return dict(
        model="tutor-small",
        stage=f"stage-{rng.randrange(6)}",
        subject_id=f"learner-{rng.randrange(500)}",
        suite="bench-suite",
        item_id=f"item-{rng.randrange(90)}",
        rubric=rubric,
        submission=submission,
        messages=[
            {"role": "system", "content": _text(rng, 250)},
            {"role": "user", "content": rubric + "\n" + submission},
        ],
        params={"temperature": 0, "response_format": {"type": "json_object"}},
        output_text='{"verdict": "pass", "score": 0.9, "feedback": {"problems": []}}',
        verdict="pass",
        passed=True,
        latency_ms=812.5,
        input_tokens=310,
        output_tokens=42,
    )


def _percentiles(samples_ns: list[int]) -> str:
    samples = sorted(s / 1000 for s in samples_ns)
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    return (
        f"mean {statistics.fmean(samples):.1f} µs, p50 {p(0.5):.1f}, p99 {p(0.99):.1f}, "
        f"p99.9 {p(0.999):.1f}, max {samples[-1]:.0f} µs"
    )


def bench_capture_api(calls: int) -> None:
    rng = random.Random(1)
    prepared = [_fields(rng) for _ in range(calls)]
    writer = capture.start(
        Config(capture=CaptureConfig(batch_size=500, flush_interval_s=0.2)), parse_verdict=False
    )
    timings = []
    began = time.perf_counter()
    for fields in prepared:
        t0 = time.perf_counter_ns()
        capture.capture(**fields)
        timings.append(time.perf_counter_ns() - t0)
    submitted = time.perf_counter() - began
    assert capture.flush(600)
    drained = time.perf_counter() - began
    print(
        f"1. capture() on the app thread ({calls} calls, writer draining concurrently): "
        f"{_percentiles(timings)}"
    )
    print(
        f"   all {calls} submitted in {submitted:.2f} s; committed after {drained:.2f} s "
        f"-> writer {calls / drained:,.0f} rows/s with unique ~2 KB texts; {writer.stats_dict()}"
    )
    capture.shutdown()


def _sim_config() -> Config:
    config = load_config(REPO / "evalhouse.yaml")
    quiet = {"time_scale": 0.0, "rate_limit_rate": 0.0, "error_rate": 0.0, "timeout_rate": 0.0}
    return config.model_copy(update={"simulator": config.simulator.model_copy(update=quiet)})


def bench_callback(calls: int, litellm_calls: int) -> None:
    import litellm
    from litellm.integrations.custom_logger import CustomLogger

    from evals.capture.callback import EvalhouseCallback
    from evals.simulated import register

    config = _sim_config()
    register(config)
    litellm.suppress_debug_info = True
    seen: list = []

    class Recorder(CustomLogger):
        def log_success_event(self, kwargs, response_obj, start_time, end_time):
            seen.append((kwargs, response_obj, start_time, end_time))

    recorder = Recorder()
    litellm.callbacks = [recorder]
    messages = [
        {"role": "system", "content": "Grade the submission." * 20},
        {"role": "user", "content": "def f(x):\n    return x\n" * 20},
    ]
    meta = {
        "evalhouse": {
            "role": "grader",
            "item_id": "bench",
            "stage": "loops",
            "expected_verdict": "pass",
            "subject_id": "learner-1",
            "suite": "bench",
        }
    }
    litellm.completion(
        model="evalhouse-sim/tutor-small",
        messages=messages,
        metadata=meta,
        response_format={"type": "json_object"},
    )
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    litellm.logging_callback_manager.remove_callback_from_all_lists(recorder)
    kwargs, response, start, end = seen[0]

    spool = Spool(tempfile.mkdtemp(prefix="bench-spool-"))
    writer = CaptureWriter(spool, prepare=RowPreparer(), flush_interval_s=0.2)
    hook = EvalhouseCallback(writer.submit, {"source": "production", "role": "grader"})
    timings = []
    for _ in range(calls):
        event = {**kwargs, "litellm_call_id": str(uuid.uuid4())}
        t0 = time.perf_counter_ns()
        hook.log_success_event(event, response, start, end)
        timings.append(time.perf_counter_ns() - t0)
    writer.flush(600)
    writer.close()
    print(f"2. LiteLLM hook log_success_event ({calls} events): {_percentiles(timings)}")

    def cpu_per_call(n: int) -> float:
        cpu = time.process_time()
        for i in range(n):
            litellm.completion(
                model="evalhouse-sim/tutor-small",
                messages=messages,
                max_retries=0,
                metadata={"evalhouse": {**meta["evalhouse"], "item_id": f"b{i}"}},
                response_format={"type": "json_object"},
            )
        time.sleep(0.5)  # let LiteLLM's logging threads finish (their CPU counts too)
        return (time.process_time() - cpu) / n * 1000

    without = cpu_per_call(litellm_calls)
    capture.install(Config(capture=CaptureConfig(flush_interval_s=0.2)), parse_verdict=False)
    with_callback = cpu_per_call(litellm_calls)
    capture.flush(60)
    capture.shutdown()
    print(
        f"3. litellm.completion (simulated provider, {litellm_calls} calls): "
        f"{without:.2f} ms CPU/call without capture, {with_callback:.2f} ms with (all threads)"
    )


def bench_outage(rows: int) -> None:
    rng = random.Random(2)
    home = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    spool = Spool(home / "spool")
    down = CaptureWriter(
        spool,
        prepare=RowPreparer(),
        flush_interval_s=0.2,
        url=f"postgresql://postgres@/none?host={home}&port=1",
    )
    records = [
        RunRecord(
            idempotency_key=uuid.uuid4().hex,
            source="production",
            role="grader",
            started_at=datetime.now(UTC),
            status="ok",
            **_fields(rng),
        )
        for _ in range(rows)
    ]
    began = time.perf_counter()
    for record in records:
        down.submit(record)
    down.flush(600)
    spooled = time.perf_counter() - began
    down.close()
    size = sum(p.stat().st_size for p in spool.segments())
    up = CaptureWriter(Spool(home / "spool"), flush_interval_s=0.2)
    began = time.perf_counter()
    deadline = began + 600
    while spool.segments() and time.perf_counter() < deadline:
        time.sleep(0.05)
    replayed = time.perf_counter() - began
    up.close()
    with warehouse.connect() as conn:
        landed = conn.execute(
            "select count(*) from raw.eval_runs where run_id = any(%s)",
            ([r.run_id for r in records],),
        ).fetchone()[0]
    print(
        f"4. outage: {rows} rows spooled (fsync'd, {size / 1e6:.1f} MB) at {rows / spooled:,.0f} rows/s; "
        f"replayed into the warehouse at {rows / replayed:,.0f} rows/s once it was back; "
        f"{landed} of {rows} rows present"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--litellm-calls", type=int, default=400)
    args = parser.parse_args()
    with bench_warehouse():
        bench_capture_api(args.calls)
        bench_callback(args.calls, args.litellm_calls)
        bench_outage(min(args.calls, 20_000))


if __name__ == "__main__":
    main()
