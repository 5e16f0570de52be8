"""LLM call throughput: evals.llm.LLMClient against a local server with a fixed 1 s latency.

Real LLM calls take seconds, so a runner's ceiling is C/L calls per second (C in flight, L the
latency); what can keep it below that is the client's own CPU per call (2 cores here) or a
connection-pool cap. For each C the bench makes enough calls for a steady state and reports
calls/s as a fraction of C/L and client CPU ms per call. In the same run, a plain
ThreadPoolExecutor with 15 workers calling `litellm.completion` (the way most eval scripts run)
is measured for comparison.

The server (tests/fake_openai.py) runs in its own process, so the CPU figures are the client's.

    .venv/bin/python -m bench.llm_throughput [--latency 1.0] [--waves 6] [--levels 1,16,64,256]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evals.config import Config
from evals.llm import LLMClient, configured_litellm

REPO_ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [
    {"role": "system", "content": "You grade submissions."},
    {
        "role": "user",
        "content": "Rubric: use a loop.\nSubmission: for i in range(3): print(i)\n" * 10,
    },
]


def start_server(latency: float) -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests" / "fake_openai.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(server.stdout.readline())
    return server, port


def config_for(port: int, concurrency: int) -> Config:
    return Config.model_validate(
        {
            "models": {
                "m": {
                    "model": "openai/bench",
                    "api_base": f"http://127.0.0.1:{port}/v1",
                    "concurrency": concurrency,
                    "timeout_s": 30,
                    "deadline_s": 60,
                    "max_attempts": 1,
                    "input_cost_per_token": 1e-7,
                    "output_cost_per_token": 4e-7,
                }
            }
        }
    )


async def _client_run(client: LLMClient, calls: int) -> list:
    return await asyncio.gather(
        *(
            client.acomplete("m", MESSAGES, response_format={"type": "json_object"})
            for _ in range(calls)
        )
    )


def bench_client(port: int, concurrency: int, calls: int, latency: float) -> dict:
    client = LLMClient(config_for(port, concurrency))

    async def main():
        try:
            await _client_run(client, min(concurrency, 16))  # connections and first-use imports
            wall, cpu = time.perf_counter(), time.process_time()
            results = await _client_run(client, calls)
            return results, time.perf_counter() - wall, time.process_time() - cpu
        finally:
            await client.aclose()

    results, wall, cpu = asyncio.run(main())
    ok = sum(r.status == "ok" for r in results)
    rate = calls / wall
    return {
        "harness": "LLMClient (async)",
        "C": concurrency,
        "calls": calls,
        "ok": ok,
        "wall_s": wall,
        "calls_per_s": rate,
        "limit": concurrency / latency,
        "fraction": rate / (concurrency / latency),
        "cpu_ms_per_call": cpu / calls * 1000,
    }


def bench_threads(port: int, workers: int, calls: int, latency: float) -> dict:
    litellm = configured_litellm(config_for(port, workers))

    def one(_: int):
        return litellm.completion(
            model="openai/bench",
            messages=MESSAGES,
            api_base=f"http://127.0.0.1:{port}/v1",
            api_key="bench",
            response_format={"type": "json_object"},
            timeout=30,
        )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(workers)))
        wall, cpu = time.perf_counter(), time.process_time()
        results = list(pool.map(one, range(calls)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rate = calls / wall
    return {
        "harness": "ThreadPoolExecutor + litellm.completion",
        "C": workers,
        "calls": calls,
        "ok": len(results),
        "wall_s": wall,
        "calls_per_s": rate,
        "limit": workers / latency,
        "fraction": rate / (workers / latency),
        "cpu_ms_per_call": cpu / calls * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--waves", type=int, default=6, help="calls per level = waves x C")
    parser.add_argument("--levels", default="1,16,64,256")
    parser.add_argument("--threads", type=int, default=15)
    args = parser.parse_args()
    server, port = start_server(args.latency)
    try:
        rows = [
            bench_client(port, c, max(c * args.waves, 10), args.latency)
            for c in (int(level) for level in args.levels.split(","))
        ]
        rows.append(bench_threads(port, args.threads, args.threads * args.waves, args.latency))
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"server latency {args.latency:g} s; machine: {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"{'harness':42} {'C':>4} {'calls':>6} {'ok':>6} {'calls/s':>8} {'C/L':>6} "
        f"{'of C/L':>7} {'CPU ms/call':>12}"
    )
    for row in rows:
        print(
            f"{row['harness']:42} {row['C']:>4} {row['calls']:>6} {row['ok']:>6} "
            f"{row['calls_per_s']:>8.1f} {row['limit']:>6.0f} {row['fraction']:>7.1%} "
            f"{row['cpu_ms_per_call']:>12.2f}"
        )


if __name__ == "__main__":
    main()
