"""Static boundaries of the code: one-way imports in the web package."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

WEB = REPO_ROOT / "evals" / "web"


def _imported_modules(path: Path, package: str) -> set[str]:
    """Modules of `package` that the file imports (at module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith(f"{package}.")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph as a path of module names, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            if cycle := visit(target, [*path, module]):
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        if cycle := visit(module, []):
            return cycle
    return None


def _web_graph() -> dict[str, set[str]]:
    modules = {f"evals.web.{path.stem}": path for path in WEB.glob("*.py")
               if path.stem != "__init__"}
    return {name: _imported_modules(path, "evals.web") & modules.keys()
            for name, path in modules.items()}


def test_the_cycle_finder_names_a_cycle_and_accepts_a_tree():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_web_package_imports_one_way():
    graph = _web_graph()
    assert graph["evals.web.app"] >= {"evals.web.alerts", "evals.web.login",
                                      "evals.web.overview", "evals.web.runs"}
    assert graph["evals.web.deps"] == {"evals.web.db", "evals.web.render", "evals.web.security"}
    assert _cycle(graph) is None
