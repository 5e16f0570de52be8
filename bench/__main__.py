"""List the benchmarks, or run one: `python -m bench` / `python -m bench llm_throughput --waves 3`.

Each benchmark is a module in this folder with a `main()`; its docstring's first line says what
it measures. Results, with the machine they ran on, go to docs/benchmarks.md.
"""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent


def benches() -> dict[str, str]:
    found = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found[path.stem] = doc.splitlines()[0] if doc else ""
    return found


def main() -> None:
    available = benches()
    if len(sys.argv) < 2 or sys.argv[1] not in available:
        print("usage: python -m bench NAME [ARGS]\n")
        for name, summary in available.items():
            print(f"  {name:20} {summary}")
        sys.exit(0 if len(sys.argv) < 2 else 2)
    name = sys.argv[1]
    sys.argv = [f"bench.{name}", *sys.argv[2:]]
    runpy.run_module(f"bench.{name}", run_name="__main__")


if __name__ == "__main__":
    main()
