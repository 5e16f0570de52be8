"""`evalhouse show | replay | replay-many | diff`: one run, whole, and what changes when it
is run again (one, or many as a batch)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from evals.cli._common import PROCESSES, config_or_exit, console, fail

_TEXT_LIMIT = 4000
_MODEL = typer.Option(None, "--model", help="Ask another model (config name or LiteLLM string).")
_PROMPT_VERSION = typer.Option(
    None, "--prompt-version", help="Re-render the stored inputs with this stored prompt version."
)
_PROMPT_FILE = typer.Option(
    None,
    "--prompt-file",
    help="Re-render the stored inputs with this template file.",
    exists=True,
    dir_okay=False,
)


def _out(renderable) -> None:
    """Print wrapped: the shared console soft-wraps (for copyable lines), which would crop
    panels and tables instead of folding long lines inside them."""
    console.print(renderable, soft_wrap=False)


def _connect():
    from evals import warehouse

    return warehouse.connect(autocommit=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def _text_block(title: str, text: str | None):
    from rich.panel import Panel
    from rich.text import Text

    body = text or ""
    if len(body) > _TEXT_LIMIT:
        body = (
            body[:_TEXT_LIMIT]
            + f"\n… ({len(text or '') - _TEXT_LIMIT} more characters; see --json)"
        )
    return Panel(Text(body), title=title, title_align="left", border_style="dim")


def _runs_table(title: str, rows: list[dict[str, Any]]):
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in ("run_id", "source", "role", "model", "status", "verdict", "started_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                _fmt(row.get(column))
                for column in (
                    "run_id",
                    "source",
                    "role",
                    "model",
                    "status",
                    "verdict",
                    "started_at",
                )
            )
        )
    return table


def _render_view(view: dict[str, Any]) -> None:
    _out(_run_facts(view["run"]))
    _print_texts(view["run"])
    if view["parent"]:
        _out(_runs_table("parent", [view["parent"]]))
    if view["children"]:
        _out(_runs_table("children (judges, replays, re-grades)", view["children"]))
    _out(_reviews_table(view["reviews"]) if view["reviews"] else "[dim]no human reviews[/]")


def _run_facts(run: dict[str, Any]):
    """The run's columns, one labelled line each."""
    from rich.table import Table

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    status = run["status"] + (
        f"  {run['error_class']}: {run['error_message']}" if run["error_class"] else ""
    )
    model = run["model"] + (
        f"  → answered by {run['response_model']}" if run["response_model"] else ""
    )
    for label, value in (
        ("run", run["run_id"]),
        ("source / role", f"{run['source']} / {run['role']}"),
        ("status", status),
        ("model", model),
        ("provider", run["provider"]),
        (
            "prompt",
            f"{run['prompt_name']} @ {run['prompt_version']}" if run["prompt_name"] else None,
        ),
        ("suite", f"{run['suite']} @ {run['suite_version']}" if run["suite"] else None),
        ("item", run["item_id"]),
        ("stage / category", f"{_fmt(run['stage'])} / {_fmt(run['category'])}"),
        ("subject", run["subject_id"]),
        ("touchpoint", run["touchpoint"]),
        ("started", run["started_at"]),
        ("latency ms", run["latency_ms"]),
        ("tokens in / out", f"{_fmt(run['input_tokens'])} / {_fmt(run['output_tokens'])}"),
        ("cost usd", run["cost_usd"]),
        ("attempts / trial", f"{run['attempts']} / {run['trial']}"),
        (
            "verdict",
            f"{_fmt(run['verdict'])}  (passed {_fmt(run['passed'])}, score {_fmt(run['score'])})",
        ),
        ("expected", run["expected_verdict"]),
        ("issue tags", run["issue_tags"]),
        ("batch / orchestrator", f"{_fmt(run['batch_id'])} / {_fmt(run['orchestrator_run_id'])}"),
        ("code version", run["code_version"]),
    ):
        facts.add_row(label, _fmt(value))
    return facts


def _print_texts(run: dict[str, Any]) -> None:
    """The long texts, each in its own panel: rubric and inputs, messages as sent, output."""
    for field in ("rubric", "submission", "prior_context"):
        if run[field]:
            _out(_text_block(field, run[field]))
    if run["inputs"]:
        _out(_text_block("inputs", json.dumps(run["inputs"], ensure_ascii=False, indent=2)))
    for index, message in enumerate(run["messages"] or []):
        content = message.get("content")
        text = (
            content
            if isinstance(content, str)
            else json.dumps(content, ensure_ascii=False, indent=2)
        )
        _out(_text_block(f"message {index} · {message.get('role')}", text))
    _out(_text_block("params", json.dumps(run["params"], ensure_ascii=False, indent=2)))
    _out(_text_block("output", run["output_text"]))
    if run["feedback"]:
        _out(_text_block("feedback", json.dumps(run["feedback"], ensure_ascii=False, indent=2)))


def _reviews_table(reviews: list[dict[str, Any]]):
    from rich.table import Table

    table = Table(title="human reviews", title_justify="left")
    for column in ("reviewer", "verdict", "score", "issue_tags", "notes", "reviewed_at"):
        table.add_column(column)
    for review in reviews:
        table.add_row(
            *(
                _fmt(review[c])
                for c in ("reviewer", "verdict", "score", "issue_tags", "notes", "reviewed_at")
            )
        )
    return table


def show(
    run_id: str = typer.Argument(..., help="The run's id (raw.eval_runs.run_id)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole view as JSON."),
) -> None:
    """Show one run: inputs, messages as sent, params, output, verdict, parent, children, reviews."""
    from evals.replay import RunNotFound, load_run_view, to_jsonable

    with _connect() as conn:
        try:
            view = load_run_view(conn, run_id)
        except RunNotFound as exc:
            raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(to_jsonable(view), ensure_ascii=False, indent=2))
        return
    _render_view(view)


def replay(
    run_id: str = typer.Argument(..., help="The run to re-execute."),
    model: str | None = _MODEL,
    prompt_version: str | None = _PROMPT_VERSION,
    prompt_file: Path | None = _PROMPT_FILE,
) -> None:
    """Re-execute a run from its stored messages and params; store it and compare old vs new."""
    from evals.config import ConfigError
    from evals.replay import ReplayError, RunNotFound, replay_run

    config = config_or_exit()
    try:
        old, new = replay_run(
            config, run_id, model=model, prompt_version=prompt_version, prompt_file=prompt_file
        )
    except (RunNotFound, ReplayError, ConfigError) as exc:
        raise fail(str(exc)) from None
    _out(_replay_table(old, new))
    same = old["messages"] == new["messages"]
    _out(
        "messages: identical to the original"
        if same
        else f"messages: re-rendered (see `evalhouse diff {old['run_id']} {new['run_id']}`)"
    )


def replay_many(
    batch: str | None = typer.Option(
        None, "--batch", help="Replay the settled calls of this run-log batch (its batch_id)."
    ),
    runs_file: Path | None = typer.Option(
        None,
        "--runs-file",
        help="Replay these runs: a file of run ids, one a line (# comments).",
        exists=True,
        dir_okay=False,
    ),
    model: str | None = _MODEL,
    prompt_version: str | None = _PROMPT_VERSION,
    prompt_file: Path | None = _PROMPT_FILE,
    name: str | None = typer.Option(
        None, "--name", help="The replay batch is replay:NAME (default: named after the selection)."
    ),
    processes: int | None = PROCESSES,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay many stored calls as one resumable batch: one new row per call, however often run.

    Exits 1 when some calls are still unsettled (failed, or lost with a worker): run it again.
    """
    from evals import warehouse
    from evals.replay import ReplayError, RunNotFound
    from evals.replay_many import ReplayManyRequest, read_run_ids, replay_many

    config = config_or_exit()
    try:
        run_ids = read_run_ids(runs_file) if runs_file else ()
    except ReplayError as exc:
        raise fail(str(exc)) from None
    request = ReplayManyRequest(
        batch=batch,
        run_ids=run_ids,
        model=model,
        prompt_version=prompt_version,
        prompt_file=prompt_file,
        name=name,
    )
    if warehouse.uses_embedded():
        warehouse.migrate()  # the embedded default is ours to keep at head; an external one is not
    try:
        summary = replay_many(config, request, processes=processes)
    except (RunNotFound, ReplayError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        lost = f" ({summary.lost_processes} died)" if summary.lost_processes else ""
        counts = summary.counts
        console.print(
            f"{summary.batch_key}: {summary.selected} calls, {counts.settled_before} replayed"
            f" before, {counts.new} new rows, {counts.failed} failed,"
            f" {counts.unsettled} unsettled, ${counts.cost_usd:.4f},"
            f" {summary.elapsed_s:.1f} s, processes {summary.processes}{lost}",
            highlight=False,
        )
    if summary.counts.unsettled:
        raise typer.Exit(1)


def _replay_table(old: dict[str, Any], new: dict[str, Any]):
    """Original and replay side by side, the fields that changed in bold."""
    from rich.table import Table

    table = Table(
        title=f"replay {new['run_id']} of {old['run_id']}", title_justify="left", show_lines=True
    )
    table.add_column("")
    table.add_column("original", overflow="fold")
    table.add_column("replay", overflow="fold")
    for field in (
        "model",
        "response_model",
        "prompt_version",
        "status",
        "verdict",
        "passed",
        "score",
        "issue_tags",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "error_class",
    ):
        changed = old[field] != new[field]
        table.add_row(f"[bold]{field}[/]" if changed else field, _fmt(old[field]), _fmt(new[field]))
    table.add_row("output", _fmt(old["output_text"]), _fmt(new["output_text"]))
    return table


def diff(
    run_a: str = typer.Argument(..., help="First run id."),
    run_b: str = typer.Argument(..., help="Second run id."),
) -> None:
    """Unified diffs of two runs: prompt templates, messages, params, output, verdict, feedback."""
    from rich.rule import Rule
    from rich.syntax import Syntax

    from evals.replay import RunNotFound, diff_runs

    with _connect() as conn:
        try:
            diffs = diff_runs(conn, run_a, run_b)
        except RunNotFound as exc:
            raise fail(str(exc)) from None
    for section, text in diffs.items():
        _out(Rule(section, align="left"))
        if text:
            _out(Syntax(text, "diff", theme="ansi_dark", word_wrap=True))
        else:
            _out("[dim]identical[/]")
