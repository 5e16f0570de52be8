"""One model's rpm and concurrency limits held across `evalhouse run --processes N`, over minutes.

`evalhouse run` makes rpm × minutes grader calls to tests/fake_openai.py (its own process,
latency L) with the model capped at `--rpm` requests per minute and C calls in flight, over 1, 2…
worker processes. The server counts what it received, so the limits are checked where a provider
would enforce them: the most requests that arrived within any 60 s window (must not exceed the
rpm), the most in flight at once (must not exceed C), and the achieved rate over the run as a
fraction of the rpm (how much of the allowance the pacer used).

    .venv/bin/python -m bench.rate_limits [--rpm 600] [--minutes 2] [--concurrency 64]
        [--latency 1] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench._warehouse import bench_warehouse
from bench.llm_throughput import start_server
from bench.run_throughput import _evalhouse, _measure, write_bench_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    calls = int(args.rpm * args.minutes)
    server, port = start_server(args.latency)
    folder = Path(tempfile.mkdtemp(prefix="evalhouse-bench-rpm-"))
    rows = []
    try:
        with bench_warehouse():
            env = write_bench_files(folder, calls, port, rpm=args.rpm)
            for processes in (int(p) for p in args.processes.split(",")):
                command = _evalhouse(folder, processes)(calls, args.concurrency)
                stats = _measure(port, command, env, folder)
                window = stats["last_reply_at"] - stats["first_at"]
                rows.append(
                    {
                        "processes": processes,
                        "calls": stats["requests"],
                        "max_in_flight": stats["max_in_flight"],
                        "max_per_minute": stats["max_per_minute"],
                        "rpm_achieved": stats["requests"] / window * 60,
                        "load_1m": os.getloadavg()[0],
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\nrpm {args.rpm}, C = {args.concurrency}, L = {args.latency:g} s,"
        f" {calls} calls each; {os.cpu_count()} cores"
    )
    print(
        f"{'processes':>9} {'calls':>6} {'max in flight':>13} {'most in 60 s':>12}"
        f" {'rpm achieved':>12} {'load':>5}"
    )
    for row in rows:
        print(
            f"{row['processes']:>9} {row['calls']:>6} {row['max_in_flight']:>13}"
            f" {row['max_per_minute']:>12} {row['rpm_achieved']:>12.1f} {row['load_1m']:>5.1f}"
        )
        held = row["max_per_minute"] <= args.rpm and row["max_in_flight"] <= args.concurrency
        print(f"{'':>9} limits {'held' if held else 'EXCEEDED'}")


if __name__ == "__main__":
    main()
