"""Time to first request: `evalhouse run` from process start to its first provider request,
against the time `python -c "import litellm"` takes to import it (its exit, 2-3 s more, not
counted) on the same machine, in the same run.

The provider is tests/fake_openai.py on loopback (in this process, so it timestamps the first
request it receives); the warehouse is migrated beforehand (bench_warehouse), as it is for a
second run on a machine. Each figure is the median of `--repeat` cold process starts, taken in
rounds (an import, then each run) so that a load changing meanwhile weighs on all alike; the
median of each round's difference to its own import is printed too.
`--processes 1,2` (the default) times `evalhouse run --processes N` for each N (the workers
come from a fork server that imports LiteLLM while the parent plans; their first request is
the run's).

    .venv/bin/python -m bench.first_request [--repeat 5] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._machine import describe
from bench._warehouse import bench_warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from fake_openai import FakeOpenAI  # noqa: E402  (tests/ is not a package on the path)

SUITE = """\
name: first-request
kind: grader
verdicts: [pass, fail]
passing_verdicts: [pass]
default_rubric: Print the numbers 0 to 2.
items:
  - id: i1
    submission: "for i in range(3): print(i)"
    expected_verdict: pass
"""


def _import_litellm(env: dict[str, str]) -> tuple[float, float]:
    """Seconds from starting `python -c "import litellm"` to the import done, and to its exit.

    The first is the baseline: LiteLLM's exit (its atexit handlers, tearing down ~380k objects)
    takes 2-3 s more on this machine, and a run's first request does not wait for any exit."""
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", "import litellm, time; print(time.time())"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.split()[-1]) - started, time.time() - started


def _first_request(
    server: FakeOpenAI, folder: Path, env: dict[str, str], n: int, processes: int
) -> float:
    """Seconds from starting `evalhouse run` to the server receiving its first request."""
    server.requests.clear()
    started = time.time()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "evals.cli",
            "run",
            "--suite",
            str(folder / "suite.yaml"),
            "--model",
            "m",
            "--no-progress",
            "--batch-key",
            f"first-request-{processes}-{n}",
            "--processes",
            str(processes),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return server.requests[0]["at"] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    counts = [int(part) for part in args.processes.split(",")]
    print(describe(), flush=True)
    server = FakeOpenAI().start()
    with bench_warehouse(), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "suite.yaml").write_text(SUITE)
        (folder / "evalhouse.yaml").write_text(
            "models:\n  m:\n    model: openai/bench\n"
            f"    api_base: {server.api_base}\n    input_cost_per_token: 1.0e-7\n"
        )
        env = {**os.environ, "EVALHOUSE_CONFIG": str(folder / "evalhouse.yaml")}
        loads = [os.getloadavg()[0]]
        imports, firsts = [], {p: [] for p in counts}
        for n in range(args.repeat):  # in rounds: a load that changes meanwhile hits all alike
            imports.append(_import_litellm(env))
            for p in counts:
                firsts[p].append(_first_request(server, folder, env, n, p))
            loads.append(os.getloadavg()[0])
    server.stop()
    import_s = statistics.median(done for done, _ in imports)
    exit_s = statistics.median(exited for _, exited in imports)
    print(
        f"python -c 'import litellm'   median {import_s:.2f} s to the import done,"
        f" {exit_s:.2f} s to its exit  ({args.repeat} rounds)"
    )
    for processes, times in firsts.items():
        first_s = statistics.median(times)
        paired = statistics.median(t - done for t, (done, _) in zip(times, imports, strict=True))
        print(
            f"evalhouse run --processes {processes}: first request median {first_s:.2f} s,"
            f" {first_s - import_s:+.2f} s over the import done ({paired:+.2f} s paired by"
            f" round), {first_s - exit_s:+.2f} s over the whole command (target <= +0.50 s)"
        )
    print("load average by round " + " ".join(f"{load:.2f}" for load in loads))


if __name__ == "__main__":
    main()
