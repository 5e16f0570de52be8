"""API ingest: runs/s through `POST /api/v1/runs` with concurrent clients, 0 lost, 0 doubled.

Starts `evalhouse serve` (real uvicorn, real HTTP, the web role, no batch worker) on a bench
warehouse, gives each client a token of its own, and has CLIENTS threads post RUNS records in
batches of BATCH (each record with its own idempotency key). Then a share of the batches is
posted again, as a client retrying after a lost answer would, and the run log is counted: every
key stored exactly once.

    .venv/bin/python -m bench.api_ingest [--runs 40000] [--clients 16] [--batch 100]
        [--retry-share 0.1]

Uses EVALHOUSE_DATABASE_URL if set, else a throwaway embedded Postgres.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg

from bench._warehouse import bench_warehouse
from evals import api_tokens, warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
WEB_TOKEN = "bench-api-web-token-0123456789"
BATCH_ID = "api-bench"
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _record(n: int) -> dict:
    return {
        "idempotency_key": f"api-bench-{n}",
        "batch_id": BATCH_ID,
        "model": "tutor-small",
        "stage": ("variables", "loops", "functions")[n % 3],
        "subject_id": f"learner-{n % 5000}",
        "started_at": (T0 + timedelta(milliseconds=n)).isoformat(),
        "latency_ms": 400 + n % 900,
        "input_tokens": 300 + n % 200,
        "output_tokens": 80 + n % 50,
        "messages": [
            {"role": "system", "content": "You grade intro-Python submissions."},
            {"role": "user", "content": f"Grade submission {n}: for i in range(10): print(i)"},
        ],
        "output_text": '{"verdict": "pass", "score": 0.8, "feedback": "clear loop, good names"}',
        "verdict": "pass",
        "passed": True,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "EVALHOUSE_WEB_TOKEN": WEB_TOKEN,
        "EVALHOUSE_CONFIG": str(REPO_ROOT / "evalhouse.yaml"),
        warehouse.URL_ENV: warehouse.database_url(),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "evals.cli", "serve", "--port", str(port), "--no-batch-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
            return server
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("evalhouse serve did not start") from None
            time.sleep(0.3)


def _post_all(base: str, tokens: list[str], batches: list[bytes]) -> tuple[float, list[int]]:
    """Post every batch from len(tokens) threads; (seconds, HTTP statuses)."""
    statuses: list[int] = []
    lock = threading.Lock()
    queue = list(enumerate(batches))

    def client(token: str) -> None:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                response = http.post("/api/v1/runs", content=body)
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=client, args=(token,)) for token in tokens]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--retry-share", type=float, default=0.1)
    args = parser.parse_args()

    with bench_warehouse():
        url = warehouse.database_url()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("delete from raw.eval_runs where batch_id = %s", (BATCH_ID,))
            tokens = [api_tokens.create_token(conn, f"bench-{i}")[1] for i in range(args.clients)]
        batches = [
            orjson.dumps({"runs": [_record(n) for n in range(lo, min(args.runs, lo + args.batch))]})
            for lo in range(0, args.runs, args.batch)
        ]
        port = _free_port()
        server = _serve(port)
        try:
            base = f"http://127.0.0.1:{port}"
            elapsed, statuses = _post_all(base, tokens, batches)
            retried = batches[: int(len(batches) * args.retry_share)]
            retry_elapsed, retry_statuses = _post_all(base, tokens, retried)
        finally:
            server.terminate()
            server.wait(30)
        with psycopg.connect(url) as conn:
            stored, keys = conn.execute(
                "select count(*), count(distinct idempotency_key) from raw.eval_runs"
                " where batch_id = %s",
                (BATCH_ID,),
            ).fetchone()

    print(
        f"{args.runs:,} runs in {len(batches)} requests of {args.batch}, {args.clients} clients: "
        f"{elapsed:.1f} s, {args.runs / elapsed:,.0f} runs/s "
        f"(statuses {sorted(set(statuses))})"
    )
    print(
        f"retried {len(retried)} requests ({len(retried) * args.batch:,} runs) in "
        f"{retry_elapsed:.1f} s: statuses {sorted(set(retry_statuses))}"
    )
    lost, doubled = args.runs - keys, stored - keys
    print(f"stored {stored:,} rows for {keys:,} keys: lost {lost}, doubled {doubled}")
    if lost or doubled or set(statuses) != {201} or set(retry_statuses) - {200}:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
