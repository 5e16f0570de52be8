"""`evalhouse golden validate|load`: check golden-set files and load them into the warehouse.

Both commands validate everything before doing anything: one bad item anywhere means exit 2,
every problem printed (file:line: item: field: message) and nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evals.cli._common import config_or_exit, console, err_console, fail

if TYPE_CHECKING:
    from evals.golden import Suite

app = typer.Typer(
    help="Validate golden sets and load them into the warehouse.", no_args_is_help=True
)

_PATHS_HELP = "Suite files (.yaml, .jsonl, .csv) or folders, searched recursively."


def _exit_with_issues(error) -> typer.Exit:
    for issue in error.issues:
        err_console.print(str(issue), markup=False, highlight=False, soft_wrap=True)
    return fail(f"{len(error.issues)} problem(s) in the golden sets; nothing was written")


def _suites_from_paths(paths: list[Path]) -> list[Suite]:
    from evals.golden import GoldenSetError, load_suites

    try:
        suites = load_suites(paths)
    except GoldenSetError as exc:
        raise _exit_with_issues(exc) from None
    if not suites:
        raise fail(f"no suite files found in {', '.join(str(path) for path in paths)}")
    return suites


def _suites_from_config() -> list[Suite]:
    from evals.golden import GoldenSetError, suites_from_config

    config = config_or_exit()
    if not config.suites:
        raise fail("no paths given and no `suites:` in the configuration")
    try:
        return list(suites_from_config(config).values())
    except GoldenSetError as exc:
        raise _exit_with_issues(exc) from None


def _stages(suite: Suite) -> str:
    return ", ".join(f"{stage} {count}" for stage, count in suite.stage_counts().items())


@app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(..., help=_PATHS_HELP, show_default=False),
) -> None:
    """Validate golden-set files; exit 2 listing every problem (file:line, item, field)."""
    for suite in _suites_from_paths(paths):
        console.print(
            f"[green]ok[/] {suite.name} ({suite.kind}) version {suite.version}: "
            f"{len(suite.items)} items [dim]{suite.source_path}[/]",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"  stages: {_stages(suite)}", highlight=False, soft_wrap=True)


@app.command("load")
def load(
    paths: list[Path] | None = typer.Argument(
        None, help=f"{_PATHS_HELP} Default: the suites in evalhouse.yaml.", show_default=False
    ),
) -> None:
    """Validate, then load suites into raw.golden_suites / raw.golden_items (idempotent)."""
    suites = _suites_from_paths(paths) if paths else _suites_from_config()
    import psycopg

    from evals import warehouse
    from evals.golden import store_suite

    if warehouse.uses_embedded():
        warehouse.ensure_migrated()  # the embedded default is ours to keep at head; not an external one
    try:
        with warehouse.connect() as conn, conn.transaction():
            outcomes = [(suite, store_suite(conn, suite)) for suite in suites]
    except psycopg.errors.UndefinedTable:
        raise fail("the warehouse has no golden tables yet: run `evalhouse db migrate`") from None
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise fail(
            f"loading failed, nothing was written: {type(exc).__name__}: {first_line}"
        ) from None
    for suite, is_new in outcomes:
        state = "[green]new[/]" if is_new else "[dim]unchanged[/]"
        console.print(
            f"{state} {suite.name} version {suite.version}: {len(suite.items)} items "
            f"({_stages(suite)})",
            highlight=False,
            soft_wrap=True,
        )
    new = sum(is_new for _, is_new in outcomes)
    console.print(f"{new} new, {len(outcomes) - new} unchanged", highlight=False)
