"""End-to-end `evalhouse run` throughput at a fixed latency, beside its peers, in one run.

Every harness makes N grader calls to tests/fake_openai.py (its own process, latency L) with C
in flight: `evalhouse run` (rows written, claims, batch record) with `--processes 1` and 2, a
bare LiteLLM asyncio loop (one process, nothing stored), Inspect AI and promptfoo (each in its
own environment under bench/.peers/, created on first use, git-ignored). Reported per harness:

- calls/s as a fraction of C/L, over the server's window (first request to last reply), so
  start-up does not count; the server's most calls in flight at once (must not exceed C);
- client CPU ms per call: the CPU of the harness's whole process tree (the bench is their
  subreaper, so a fork server's workers count too) for N calls less its CPU for one call
  (measured once, at the first C), over N - 1: start-up (imports, migrations, spawning) does
  not count;
- the load average, since other work shares the machine.

    .venv/bin/python -m bench.run_throughput [--calls 2048] [--levels 64,256] [--latency 1]
        [--peers litellm,inspect,promptfoo] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench._machine import describe
from bench._warehouse import bench_warehouse
from bench.llm_throughput import MESSAGES, start_server

REPO_ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(__file__).resolve().parent / ".peers"
INSPECT_VERSION = "0.3.285"
# 0.123 needs Node >= 22.22 (Node 20 here); 0.120.0 looks for its migrations in the wrong folder
# (drizzle-orm: "Can't find meta/_journal.json"); 0.118.17 is the newest 0.118 and runs on Node 20
PROMPTFOO_VERSION = "0.118.17"
SUBMISSION = "for i in range(3): print(i)"


def _server(port: int, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
_ORPHANS_EXIT_S = 60.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _become_subreaper() -> None:
    """Make this process the subreaper of everything it starts from now on.

    RUSAGE_CHILDREN only counts descendants that were waited for up a chain to us. `evalhouse
    run --processes N` forks its workers from multiprocessing's fork server, which outlives the
    run's main process and is then re-parented to init: its workers' CPU was never counted (the
    bench reported 0.13-0.30 ms per call). As subreaper, orphans come to us and `_reap_orphans`
    waits for them, so the whole process tree's CPU is in RUSAGE_CHILDREN.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _children() -> set[int]:
    """Pids whose parent is this process (from /proc: the kernel's children lists are optional)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.add(int(entry))
    return found


def _reap_orphans(before: set[int]) -> None:
    """Wait for the processes a harness left behind (re-parented to us), so their CPU counts."""
    deadline = time.monotonic() + _ORPHANS_EXIT_S
    while orphans := _children() - before:
        for pid in orphans:
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"process {pid}, left by a harness, did not exit")
                time.sleep(0.05)


def _measure(port: int, command: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run one harness to its end: its process tree's CPU and the server's view of its calls."""
    _server(port, "/stats/reset", "POST")
    before = _children()
    cpu, wall = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    _reap_orphans(before)
    if done.returncode not in (0, 1):  # 1: evalhouse's "some calls unsettled"
        raise RuntimeError(f"{command[:4]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    stats = _server(port, "/stats")
    if not stats["requests"]:
        raise RuntimeError(f"{command[:4]} made no request:\n{done.stderr[-4000:]}")
    return {"cpu_s": _children_cpu() - cpu, "wall_s": time.perf_counter() - wall, **stats}


def write_bench_files(folder: Path, calls: int, port: int, rpm: int | None = None) -> dict:
    """A grader suite of `calls` items and a config with one model `m` at the fake server (rpm
    capped when given), in `folder`; returns the environment a harness runs with."""
    items = "".join(
        f"  - id: i{i:05d}\n    submission: '{SUBMISSION} # {i}'\n    expected_verdict: pass\n"
        for i in range(calls)
    )
    (folder / "suite.yaml").write_text(
        "name: bench-run\nkind: grader\nverdicts: [pass, fail]\n"
        "passing_verdicts: [pass]\ndefault_rubric: Print 0 to 2.\nitems:\n" + items
    )
    (folder / "evalhouse.yaml").write_text(
        f"models:\n  m:\n    model: openai/bench\n"
        f"    api_base: http://127.0.0.1:{port}/v1\n    timeout_s: 30\n"
        "    deadline_s: 60\n    max_attempts: 1\n"
        "    input_cost_per_token: 1.0e-7\n    output_cost_per_token: 4.0e-7\n"
        + (f"    rpm: {rpm}\n" if rpm else "")
    )
    return {
        **os.environ,
        "EVALHOUSE_CONFIG": str(folder / "evalhouse.yaml"),
        "OPENAI_API_KEY": "bench",
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_CONFIG_DIR": str(folder / "promptfoo-home"),
        "INSPECT_LOG_LEVEL": "error",
    }


# --- harnesses: each a command for n calls at concurrency c ----------------------------------


def _evalhouse(folder: Path, processes: int):
    def command(n: int, c: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "evals.cli",
            "run",
            "--suite",
            str(folder / "suite.yaml"),
            "--model",
            "m",
            "--concurrency",
            str(c),
            "--processes",
            str(processes),
            "--limit",
            str(n),
            "--batch-key",
            f"bench-{time.time_ns()}",
            "--no-progress",
            "--json",
        ]

    return command


def _litellm_loop(port: int):
    def command(n: int, c: int) -> list[str]:
        code = (
            f"import asyncio, sys; sys.path.insert(0, {str(REPO_ROOT)!r});"
            f" from bench.run_throughput import _loop; asyncio.run(_loop({port}, {c}, {n}))"
        )
        return [sys.executable, "-c", code]

    return command


async def _loop(port: int, concurrency: int, calls: int) -> None:
    """The bare LiteLLM asyncio loop: a semaphore and `acompletion`, nothing else."""
    import litellm

    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await litellm.acompletion(
                model="openai/bench",
                api_base=f"http://127.0.0.1:{port}/v1",
                api_key="bench",
                messages=MESSAGES,
                response_format={"type": "json_object"},
                timeout=30,
            )

    await asyncio.gather(*(one() for _ in range(calls)))
    await litellm.close_litellm_async_clients()


def _new_venv(python: Path, packages: list[str]) -> None:
    """A virtualenv whose interpreter is `python`, with `packages`: with uv when the machine has
    it, else with the venv module and pip (as the Makefile does)."""
    if shutil.which("uv"):
        subprocess.run(["uv", "venv", "-q", str(python.parents[1])], check=True)
        install = ["uv", "pip", "install", "-q", "--python", str(python)]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(python.parents[1])], check=True)
        install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*install, *packages], check=True)


def _inspect(folder: Path, port: int):
    python = PEERS / "inspect-venv" / "bin" / "python"
    if not python.exists():
        _new_venv(python, [f"inspect-ai=={INSPECT_VERSION}", "openai"])
    (folder / "inspect_task.py").write_text(
        "from inspect_ai import Task, task\n"
        "from inspect_ai.dataset import Sample\n"
        "from inspect_ai.scorer import includes\n"
        "from inspect_ai.solver import generate\n\n\n"
        "@task\ndef bench(n: int = 1):\n"
        "    return Task(\n"
        f"        dataset=[Sample(input={MESSAGES[1]['content']!r} + str(i), target='pass')"
        " for i in range(n)],\n"
        "        solver=generate(),\n"
        "        scorer=includes(),\n"
        "    )\n"
    )

    def command(n: int, c: int) -> list[str]:
        return [
            str(python.parent / "inspect"),
            "eval",
            "inspect_task.py",  # in the harness's working folder: Inspect takes no absolute path
            "-T",
            f"n={n}",
            "--model",
            "openai/bench",
            "--model-base-url",
            f"http://127.0.0.1:{port}/v1",
            "-M",
            "responses_api=false",  # chat completions, like the others (and the fake server)
            "--max-connections",
            str(c),
            "--max-retries",
            "0",
            "--display",
            "none",
            "--log-dir",
            str(folder / "inspect-logs"),
        ]

    return command


def _installed_promptfoo() -> str | None:
    """The promptfoo version under bench/.peers/, if any: what the tables report."""
    package = PEERS / "promptfoo" / "node_modules" / "promptfoo" / "package.json"
    return json.loads(package.read_text())["version"] if package.exists() else None


def _install_promptfoo(binary: Path) -> None:
    """promptfoo PROMPTFOO_VERSION into bench/.peers/promptfoo, at its first run (not at the
    bench's start), replacing another version left there by an earlier bench."""
    if _installed_promptfoo() != PROMPTFOO_VERSION:
        prefix, package = str(binary.parents[2]), f"promptfoo@{PROMPTFOO_VERSION}"
        # no install scripts: one downloads Playwright's Chromium (unreachable here, unused by
        # an eval); better-sqlite3's, the one that matters, is built below
        install = ["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund"]
        subprocess.run([*install, "--ignore-scripts", package], check=True)
    sqlite = binary.parents[1] / "better-sqlite3"
    if not (sqlite / "build" / "Release" / "better_sqlite3.node").exists():
        # its install script (not run) would download a prebuilt binary: build it against the
        # system's Node headers with the node-gyp that ships with npm
        npm_root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True).stdout
        gyp = Path(npm_root.strip()) / "npm" / "node_modules" / "node-gyp" / "bin" / "node-gyp.js"
        build = ["node", str(gyp), "rebuild", "--release", f"--nodedir={_node_prefix()}"]
        subprocess.run(build, cwd=sqlite, check=True, capture_output=True)


def _promptfoo(folder: Path, port: int):
    binary = PEERS / "promptfoo" / "node_modules" / ".bin" / "promptfoo"

    def command(n: int, c: int) -> list[str]:
        _install_promptfoo(binary)
        config = folder / f"promptfoo-{n}.yaml"
        config.write_text(
            json.dumps(
                {
                    "providers": [
                        {
                            "id": "openai:chat:bench",
                            "config": {
                                "apiBaseUrl": f"http://127.0.0.1:{port}/v1",
                                "apiKey": "bench",
                                "response_format": {"type": "json_object"},
                            },
                        }
                    ],
                    "prompts": [MESSAGES[1]["content"] + "{{i}}"],
                    "tests": [{"vars": {"i": i}} for i in range(n)],
                }
            )
        )
        return [
            str(binary),
            "eval",
            "-c",
            str(config),
            "--max-concurrency",
            str(c),
            "--no-cache",
            "--no-table",
            "--no-progress-bar",
            "--no-write",
        ]

    return command


def _node_prefix() -> str:
    """Where the running Node's headers are (include/node): /usr for Debian's nodejs."""
    node = subprocess.run(["node", "-p", "process.execPath"], capture_output=True, text=True)
    return str(Path(node.stdout.strip()).parents[1])


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    found = {"litellm": version("litellm")}
    found["inspect-ai"] = INSPECT_VERSION if (PEERS / "inspect-venv").exists() else "-"
    found["promptfoo"] = _installed_promptfoo() or "-"
    found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    return {name: value.strip() for name, value in found.items()}


def _row(name: str, c: int, n: int, latency: float, full: dict, one: dict) -> dict:
    window = full["last_reply_at"] - full["first_at"]
    rate = full["requests"] / window
    return {
        "harness": name,
        "C": c,
        "calls": full["requests"],
        "max_in_flight": full["max_in_flight"],
        "calls_per_s": rate,
        "of_C_over_L": rate / (c / latency),
        "cpu_ms_per_call": (full["cpu_s"] - one["cpu_s"]) / (n - 1) * 1000,
        "wall_s": full["wall_s"],
        "load_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2048)
    parser.add_argument("--levels", default="64,256")
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--peers", default="litellm,inspect,promptfoo")
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    print(describe(), flush=True)
    server, port = start_server(args.latency)
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="evalhouse-bench-run-"))
    try:
        with bench_warehouse():
            _become_subreaper()  # after the warehouse's server started: it is detached for good
            env = write_bench_files(folder, args.calls, port)
            harnesses = {
                f"evalhouse run --processes {p}": _evalhouse(folder, int(p))
                for p in args.processes.split(",")
                if p  # --processes "": peers only
            }
            peers = set(args.peers.split(",")) - {""}
            if "litellm" in peers:
                harnesses["bare LiteLLM asyncio loop"] = _litellm_loop(port)
            if "inspect" in peers:
                harnesses[f"Inspect AI {INSPECT_VERSION}"] = _inspect(folder, port)
            if "promptfoo" in peers:
                harnesses[f"promptfoo {PROMPTFOO_VERSION}"] = _promptfoo(folder, port)
            # the warehouse's first run creates the views a run's accuracy reads (dbt): not
            # part of any measured run
            _measure(port, _evalhouse(folder, 1)(1, 1), env, folder)
            ones: dict[str, dict] = {}  # each harness's CPU for one call: its fixed cost
            for c in (int(level) for level in args.levels.split(",")):
                for name, command in harnesses.items():
                    try:
                        one = ones.get(name) or _measure(port, command(1, c), env, folder)
                        full = _measure(port, command(args.calls, c), env, folder)
                    except (RuntimeError, subprocess.CalledProcessError) as exc:
                        # one peer failing does not void the others
                        print(f"{name} at C = {c}: {exc}", flush=True)
                        continue
                    ones[name] = one
                    rows.append(_row(name, c, args.calls, args.latency, full, one))
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nversions: {_versions()}; {os.cpu_count()} cores; L = {args.latency:g} s")
    print(
        f"{'harness':34} {'C':>4} {'calls':>6} {'max in flight':>13} {'calls/s':>8}"
        f" {'of C/L':>7} {'CPU ms/call':>11} {'load':>5}"
    )
    for row in rows:
        print(
            f"{row['harness']:34} {row['C']:>4} {row['calls']:>6} {row['max_in_flight']:>13}"
            f" {row['calls_per_s']:>8.1f} {row['of_C_over_L']:>7.1%}"
            f" {row['cpu_ms_per_call']:>11.2f} {row['load_1m']:>5.1f}"
        )
    for c in (int(level) for level in args.levels.split(",")):
        at_c = [r for r in rows if r["C"] == c]
        ours = [r for r in at_c if r["harness"].startswith("evalhouse")]
        others = [r for r in at_c if not r["harness"].startswith("evalhouse")]
        if ours and others:
            mine, best = max(ours, key=_rate), max(others, key=_rate)
            print(
                f"C = {c}: best evalhouse ({mine['harness']}) {_rate(mine):.1f} calls/s ="
                f" {_rate(mine) / _rate(best):.2f}x the best peer ({best['harness']})"
            )


def _rate(row: dict) -> float:
    return row["calls_per_s"]


if __name__ == "__main__":
    main()
