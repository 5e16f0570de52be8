"""`evalhouse config check`."""

import typer

from evals.cli._common import config_or_exit, console, fail
from evals.config import config_path

app = typer.Typer(help="Inspect and validate evalhouse.yaml.", no_args_is_help=True)


@app.command("check")
def check() -> None:
    """Validate evalhouse.yaml (or $EVALHOUSE_CONFIG): its keys, every model's key variable and
    LiteLLM model string; exit 2 naming each problem's key path."""
    from evals.llm import model_string_problems

    config = config_or_exit()
    source = config.source_path or f"{config_path()} (absent: defaults)"
    problems = config.missing_credentials() + model_string_problems(config)
    if problems:
        raise fail(f"{source}: invalid configuration\n  " + "\n  ".join(problems))
    console.print(f"[green]ok[/] {source}")
    console.print(f"  models: {', '.join(config.models) or '-'}")
    console.print(f"  suites: {', '.join(config.suites) or '-'}")
    console.print(f"  webhooks: {len(config.alerts.webhooks)}")
