"""The `evalhouse` command line: thin commands over the `evals` library.

Heavy imports (LiteLLM, dbt, Dagster) happen inside commands, so `evalhouse --help` stays fast.
Exit codes: 0 ok, 1 a failed outcome (e.g. a no-deploy gate), 2 bad input or configuration.
"""

import sys

from evals.fork_server import start_fork_server

WORKER_COMMANDS = ("run", "rejudge", "replay-many")
"""Commands whose `--processes` makes calls in worker processes (evals.runner.processes)."""


def asked_processes(args: list[str]) -> int | None:
    """The `--processes`/`-p` of a WORKER_COMMANDS command line, read before typer parses it
    (None when not given, or not a number: typer reports that)."""
    if not args or args[0] not in WORKER_COMMANDS:
        return None
    value = None
    for at, arg in enumerate(args):
        if arg in ("--processes", "-p"):
            value = args[at + 1] if at + 1 < len(args) else ""
        elif arg.startswith("--processes="):
            value = arg.partition("=")[2]
        elif arg.startswith("-p") and not arg.startswith("--"):
            value = arg[2:]
    return int(value) if value and value.isdigit() else None


# First, before this module's own imports: the workers' fork server then imports LiteLLM on
# another core while the command starts (without --processes, `run` starts it after reading
# the config, when the default is more than one process).
if (asked_processes(sys.argv[1:]) or 1) > 1:
    start_fork_server()

import typer  # noqa: E402

from evals.cli import (  # noqa: E402
    api,
    config_cmd,
    db,
    dbt_cmd,
    demo,
    imports,
    lifecycle,
    models,
    reviews,
    runs,
    simulate,
)
from evals.cli import capture as capture_cmd  # noqa: E402
from evals.litellm_compat import prefer_litellm_http_handler  # noqa: E402

app = typer.Typer(
    name="evalhouse",
    help="evalhouse: an LLM-evaluation warehouse on Postgres.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(config_cmd.app, name="config")
app.add_typer(__import__("evals.cli.golden", fromlist=["app"]).app, name="golden")
app.add_typer(capture_cmd.app, name="capture")
app.add_typer(models.app, name="models")
app.add_typer(api.app, name="api")
app.command("run")(__import__("evals.cli.run", fromlist=["run"]).run)
app.command("show")(runs.show)
app.command("replay")(runs.replay)
app.command("replay-many")(runs.replay_many)
app.command("diff")(runs.diff)
app.command("rejudge")(__import__("evals.cli.rejudge", fromlist=["rejudge"]).rejudge)
app.command("import")(imports.import_file)
app.add_typer(reviews.app, name="reviews")
app.add_typer(simulate.app, name="simulate")
app.command("forget")(lifecycle.forget)
app.command("erasures")(lifecycle.erasures)
app.add_typer(lifecycle.retention_app, name="retention")
app.command("demo")(demo.demo)
app.command("dev")(__import__("evals.cli.dev", fromlist=["dev"]).dev)
app.command("backfill")(__import__("evals.cli.dev", fromlist=["backfill"]).backfill)
app.command("serve")(__import__("evals.cli.serve", fromlist=["serve"]).serve)
app.command("gate")(__import__("evals.cli.gate", fromlist=["gate"]).gate)
app.command("dbt", context_settings=dbt_cmd.CONTEXT_SETTINGS, add_help_option=False)(dbt_cmd.dbt)


def main() -> None:
    # this process is evalhouse's own, and its workers get its environment (WorkerPool)
    prefer_litellm_http_handler()
    app()
