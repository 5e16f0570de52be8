"""Helpers every CLI command shares: the console, configuration loading, clean failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from evals.config import Config, ConfigError, load_config

if TYPE_CHECKING:  # evals.reviews is heavy for `--help`; the type is all that is needed here
    from evals.reviews import LineIssue

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2
SHOWN_ISSUES = 50


PROCESSES = typer.Option(
    None,
    "--processes",
    "-p",
    min=1,
    max=256,
    help="Worker processes sharing the calls and the models' limits (default: one per 64"
    " calls in flight, at most one per core; 1: a single event loop).",
)
"""`--processes` of every command that makes calls over the runner's worker processes."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print an error (already secret-free) and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def config_or_exit() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        raise fail(str(exc)) from None


def exit_on_line_issues(file_name: str, issues: Sequence[LineIssue], heading: str) -> None:
    """List a file's rejected lines (the first SHOWN_ISSUES) and exit 1; nothing when none."""
    if not issues:
        return
    console.print(f"[yellow]{len(issues)} {heading}:[/]")
    for issue in issues[:SHOWN_ISSUES]:
        console.print(f"  {file_name}:{issue.line}: {issue.message}", highlight=False, markup=False)
    if len(issues) > SHOWN_ISSUES:
        console.print(f"  … and {len(issues) - SHOWN_ISSUES} more")
    raise typer.Exit(1)
