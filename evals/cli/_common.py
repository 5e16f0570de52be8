"""Helpers every CLI command shares: the console, configuration loading, clean failures."""

from __future__ import annotations

import typer
from rich.console import Console

from evals.config import Config, ConfigError, load_config

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print an error (already secret-free) and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def config_or_exit() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        raise fail(str(exc)) from None
