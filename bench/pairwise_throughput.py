"""Pairwise throughput: a 2,000-item pairwise suite judged in both orders (4,000 judge calls).

The judge is the local OpenAI-compatible fake server (tests/fake_openai.py, its own process)
with a fixed latency L at concurrency C, so the ideal wall time is calls x L / C (62.5 s for
4,000 calls at 1 s and C = 64); the bench reports the run's wall time (`run_pairwise` from
connect to summary: suite stored, plan, claims, calls, writes, batch record) as a ratio to it.
Target: <= 1.15x. A 64-item warm-up run first pays LiteLLM's import and first-use costs. In
the same run, the same number of bare `LLMClient.acomplete` calls at the same concurrency
(bench.llm_throughput's harness) measures what the machine allows right now: on a loaded
machine the ratio of the two says what the pairwise engine itself adds.
Writes to $EVALHOUSE_DATABASE_URL, else a throwaway embedded warehouse.

    .venv/bin/python -m bench.pairwise_throughput [--items 2000] [--latency 1.0] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench._warehouse import bench_warehouse
from bench.llm_throughput import REPO_ROOT, bench_client, config_for

REPLY = json.dumps({"verdict": "second", "reason": "It answers the question."})


def write_suite(folder: Path, name: str, items: int) -> Path:
    """A pairwise suite of `items` stored pairs of a few hundred characters each."""
    suite = {
        "name": name,
        "kind": "pairwise",
        "items": [
            {
                "id": f"p{i:05d}",
                "question": f"Explain step {i} of the algorithm. " * 4,
                "response_a": f"Step {i} moves the pointer once. " * 6,
                "response_b": f"Step {i} compares, then moves both pointers. " * 6,
            }
            for i in range(items)
        ],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    from evals.golden import load_suite
    from evals.pairwise import PairwiseRequest, run_pairwise

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests" / "fake_openai.py"), "--latency",
         str(args.latency), "--reply", REPLY],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    port = int(server.stdout.readline())
    config = config_for(port, args.concurrency)
    folder = Path(tempfile.mkdtemp(prefix="evalhouse-pairwise-bench-"))
    try:
        with bench_warehouse():
            warm = load_suite(write_suite(folder, "warm-up", args.concurrency))
            run_pairwise(config, PairwiseRequest(warm, "m"))
            suite = load_suite(write_suite(folder, "pairwise-bench", args.items))
            cpu = time.process_time()
            summary = run_pairwise(config, PairwiseRequest(suite, "m"))
            cpu = time.process_time() - cpu
        bare = bench_client(port, args.concurrency, summary.calls.calls, args.latency)
    finally:
        server.terminate()
        server.wait(10)
    calls = summary.calls
    ideal = calls.planned_calls * args.latency / args.concurrency
    print(
        f"{args.items} items x 2 orders = {calls.planned_calls} judge calls at {args.latency:g} s,"
        f" C = {args.concurrency}; machine: {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"wall {calls.elapsed_s:.1f} s, ideal {ideal:.1f} s: {calls.elapsed_s / ideal:.3f}x"
        f" (target <= 1.15x); {calls.calls / calls.elapsed_s:.1f} calls/s;"
        f" statuses {dict(calls.statuses)}; judgments settled {summary.judgments_settled};"
        f" client CPU {cpu / max(1, calls.calls) * 1000:.2f} ms per call"
    )
    print(
        f"bare LLMClient, same calls and C: wall {bare['wall_s']:.1f} s ({bare['wall_s'] / ideal:.3f}x"
        f" ideal, {bare['cpu_ms_per_call']:.2f} ms CPU per call); pairwise / bare:"
        f" {calls.elapsed_s / bare['wall_s']:.3f}x; load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
