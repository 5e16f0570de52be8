"""Static boundaries of the code: one writer per raw table, one-way imports in the web package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO_ROOT

WEB = REPO_ROOT / "evals" / "web"
MIGRATIONS = REPO_ROOT / "evals" / "warehouse" / "migrations"

RAW_TABLE_OWNERS = {
    "eval_runs": "evals.runlog",
    "eval_run_keys": "evals.runlog",
    "golden_suites": "evals.golden.store",
    "golden_items": "evals.golden.store",
    "prompt_versions": "evals.prompts",
    "human_reviews": "evals.reviews",
    "review_queue": "evals.reviews",
    "alerts": "evals.alerts",
    "alert_occurrences": "evals.alerts",
    "alert_deliveries": "evals.alerts",
    "gate_decisions": "evals.gate.runs",
    "web_sessions": "evals.web.sessions",
    "api_tokens": "evals.api_tokens",
    "model_checks": "evals.model_checks",
    "batch_requests": "evals.batch_requests",
    "data_erasures": "evals.lifecycle.audit",
    "eval_batches": "evals.batches",
    "call_pacing": "evals.warehouse_limits",
}
"""The one module that writes each raw table (with one id scheme and one conflict rule);
everything else, the web included, calls it."""

_WRITE = re.compile(
    r"\b(?:insert\s+into|update|delete\s+from|copy|truncate(?:\s+table)?)\s+(?:only\s+)?"
    r"(?:raw\.)?(" + "|".join(RAW_TABLE_OWNERS) + r")\b",
    re.IGNORECASE,
)


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
            return [*path[path.index(module) :], module]
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
    modules = {
        f"evals.web.{path.stem}": path for path in WEB.glob("*.py") if path.stem != "__init__"
    }
    return {
        name: _imported_modules(path, "evals.web") & modules.keys()
        for name, path in modules.items()
    }


def test_the_cycle_finder_names_a_cycle_and_accepts_a_tree():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_web_package_imports_one_way():
    graph = _web_graph()
    assert graph["evals.web.app"] >= {
        "evals.web.alerts",
        "evals.web.login",
        "evals.web.overview",
        "evals.web.runs",
    }
    assert graph["evals.web.deps"] == {
        "evals.web.db",
        "evals.web.render",
        "evals.web.security",
        "evals.web.sessions",
    }
    assert _cycle(graph) is None


def _module(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _raw_table_writes() -> set[tuple[str, str]]:
    """(table, module) for every write statement to a raw table in evals/ and orchestration/."""
    found = set()
    for package in ("evals", "orchestration"):
        for path in (REPO_ROOT / package).rglob("*"):
            if path.suffix not in {".py", ".sql"} or MIGRATIONS in path.parents:
                continue
            found.update(
                (match.group(1).lower(), _module(path))
                for match in _WRITE.finditer(path.read_text())
            )
    return found


def test_the_write_finder_sees_each_kind_of_write_and_skips_reads_and_grants():
    text = (
        "insert into raw.alerts (a) values (1); UPDATE raw.eval_runs set x = 1;"
        " delete from human_reviews; copy raw.golden_items (a) from stdin;"
        " select * from raw.gate_decisions for update of d skip locked;"
        " grant update (acknowledged_at) on raw.alerts to web"
    )
    assert [match.group(1) for match in _WRITE.finditer(text)] == [
        "alerts",
        "eval_runs",
        "human_reviews",
        "golden_items",
    ]


def test_every_raw_table_of_the_migrations_has_a_declared_owner():
    created = {
        match.group(1)
        for path in MIGRATIONS.rglob("*.py")
        for match in re.finditer(r"create (?:unlogged )?table raw\.(\w+)", path.read_text())
    }
    assert created == set(RAW_TABLE_OWNERS)


def test_each_raw_table_is_written_by_its_owner_alone():
    writes = _raw_table_writes()
    assert {table for table, _ in writes} == set(RAW_TABLE_OWNERS)  # every owner found writing
    assert (
        sorted((table, module) for table, module in writes if module != RAW_TABLE_OWNERS[table])
        == []
    )
