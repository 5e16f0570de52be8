"""`evalhouse models check [NAME…]`: can each configured model be reached, right now?"""

from __future__ import annotations

import json

import typer

from evals.cli._common import config_or_exit, console, fail

app = typer.Typer(help="Configured models.", no_args_is_help=True)


@app.command("check")
def check(
    names: list[str] = typer.Argument(None, help="Model names (default: every configured one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    store: bool = typer.Option(True, "--store/--no-store", help="Record them for /api/v1/models."),
) -> None:
    """One tiny call per model: reachable, the model that answered, latency, or why not.

    Exits 1 when any model fails, 2 on an unknown name. Keys are never printed.
    """
    from dataclasses import asdict

    from evals.config import ConfigError
    from evals.model_checks import check_models, store_checks

    config = config_or_exit()
    try:
        checks = check_models(config, names or None)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if store:
        from evals import warehouse

        if warehouse.uses_embedded():
            warehouse.migrate()
        with warehouse.connect() as conn:
            store_checks(conn, checks)
    if as_json:
        console.print_json(json.dumps([asdict(c) for c in checks]))
    else:
        for c in checks:
            latency = f"{c.latency_ms:.0f} ms" if c.latency_ms is not None else "-"
            if c.ok:
                line = f"[green]ok[/]     {c.model_name}: {c.response_model} in {latency}"
            else:
                line = f"[red]failed[/] {c.model_name}: {c.error_class} ({c.error_message})"
            console.print(line, highlight=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
