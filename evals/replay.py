"""One run, whole: show it, replay it, diff it against another.

Ops start from a learner's odd verdict and need the exact call behind it: what the model was
given (messages as sent, params, prompt template and version), what it returned, how it was
parsed, what humans said about it, and what happened when it was replayed. The CLI
(`evalhouse show | replay | diff`) and the web run view call the same functions here:

- `load_run_view(conn, run_id)`: the record with its parent, children, reviews and template;
- `replay_run(config, run_id, ...)`: re-execute from the stored messages and params (or
  re-render the stored inputs with another prompt version or file) and store the result as a
  new row (source `replay`, parent_run_id = the original);
- `diff_runs(conn, a, b)`: unified diffs of prompt templates, messages, params and outputs.
"""

from __future__ import annotations

import copy
import difflib
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.runlog import RunRecord, fetch_run, idempotency_key, write_runs

if TYPE_CHECKING:
    import psycopg

    from evals.config import Config
    from evals.golden import Suite
    from evals.llm import CallResult
    from evals.prompts import PromptTemplate

_SUMMARY_COLUMNS = (
    "run_id",
    "source",
    "role",
    "model",
    "status",
    "verdict",
    "score",
    "started_at",
    "prompt_version",
    "latency_ms",
    "timings",
    "attempts",
)


class RunNotFound(LookupError):
    """No run with this id in raw.eval_runs."""


class ReplayError(ValueError):
    """The run cannot be replayed as asked (no stored inputs, unknown prompt version...)."""


def parse_run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(text).strip())
    except ValueError:
        raise RunNotFound(f"{text!r} is not a run id (a UUID)") from None


def _dict_rows(conn: psycopg.Connection, sql: str, args: tuple) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def _template(conn: psycopg.Connection, name: str | None, version: str | None) -> str | None:
    if not name or not version:
        return None
    row = conn.execute(
        "select template from raw.prompt_versions where prompt_name = %s and prompt_version = %s",
        (name, version),
    ).fetchone()
    if row is not None:
        return row[0]
    from evals.prompts import PromptError, load_prompt

    try:
        shipped = load_prompt(name)
    except PromptError:
        return None
    return shipped.text if shipped.version == version else None


def load_run(conn: psycopg.Connection, run_id: uuid.UUID | str) -> dict[str, Any]:
    row = fetch_run(conn, parse_run_id(str(run_id)))
    if row is None:
        raise RunNotFound(f"no run {run_id} in raw.eval_runs")
    return row


def load_run_view(conn: psycopg.Connection, run_id: uuid.UUID | str) -> dict[str, Any]:
    """Everything about one run: `run` (all columns), `parent`, `children`, `reviews`, `template`."""
    run = load_run(conn, run_id)
    summary = ", ".join(_SUMMARY_COLUMNS)
    parent = None
    if run["parent_run_id"] is not None:
        parents = _dict_rows(
            conn, f"select {summary} from raw.eval_runs where run_id = %s", (run["parent_run_id"],)
        )
        parent = parents[0] if parents else {"run_id": run["parent_run_id"], "missing": True}
    children = _dict_rows(
        conn,
        f"select {summary} from raw.eval_runs where parent_run_id = %s order by started_at, run_id",
        (run["run_id"],),
    )
    reviews = _dict_rows(
        conn,
        "select review_id, reviewer, verdict, score, issue_tags, notes, source, reviewed_at"
        " from raw.human_reviews where run_id = %s order by reviewed_at, reviewer",
        (run["run_id"],),
    )
    return {
        "run": run,
        "parent": parent,
        "children": children,
        "reviews": reviews,
        "template": _template(conn, run["prompt_name"], run["prompt_version"]),
    }


def to_jsonable(value: Any) -> Any:
    """uuids, datetimes and other scalars as JSON-friendly values (for --json and the web)."""
    return json.loads(json.dumps(value, default=str))


# --- replay -----------------------------------------------------------------------------------


def stored_suite(
    conn: psycopg.Connection, config: Config, name: str | None, version: str | None
) -> Suite | None:
    """The suite's vocabulary, from the warehouse (the version graded against) or the config."""
    if not name:
        return None
    from evals.golden import Suite

    rows = _dict_rows(
        conn,
        "select suite, suite_version, kind, coalesce(description, '') as description, verdicts,"
        " passing_verdicts, issue_tags from raw.golden_suites where suite = %s"
        " order by (suite_version = %s) desc, loaded_at desc limit 1",
        (name, version),
    )
    if rows:
        row = rows[0]
        return Suite(
            name=row["suite"],
            description=row["description"],
            kind=row["kind"],
            verdicts=tuple(row["verdicts"]),
            passing_verdicts=tuple(row["passing_verdicts"]),
            issue_tags=tuple(row["issue_tags"]),
            default_rubric=None,
            items=(),
            version=row["suite_version"],
        )
    if name in config.suites:
        from evals.golden import GoldenSetError, suites_from_config

        try:
            return suites_from_config(config).get(name)
        except GoldenSetError:
            return None
    return None


def _item_truth(conn: psycopg.Connection, run: dict[str, Any]) -> dict[str, Any]:
    """The stored golden item's truth (`evals.judging.item_truth`), if the run names one."""
    if not run["item_id"] or not run["suite"]:
        return {}
    rows = conn.execute(
        "select expected from raw.golden_items where suite = %s and item_id = %s"
        " order by (suite_version = %s) desc, loaded_at desc limit 1",
        (run["suite"], run["item_id"], run["suite_version"]),
    ).fetchall()
    if not rows:
        return {}
    expected = rows[0][0] or {}
    return {
        "expected_verdict": expected.get("verdict"),
        "expected_answer": expected.get("answer"),
        "expected_issue_tags": expected.get("issue_tags") or [],
    }


def run_metadata(
    conn: psycopg.Connection, run: dict[str, Any], suite: Suite | None
) -> dict[str, Any]:
    """The metadata of a call that grades a stored run again (`evals.judging.call_metadata`)."""
    from evals.judging import call_metadata

    return call_metadata(
        suite,
        role=run["role"],
        item_id=run["item_id"],
        trial=run["trial"],
        stage=run["stage"],
        as_of=run["started_at"].date().isoformat(),
        candidate_answer=run["submission"] if run["role"] == "judge" else None,
        **_item_truth(conn, run),
    )


def replacement_prompt(
    conn: psycopg.Connection,
    run: dict[str, Any],
    prompt_version: str | None,
    prompt_file: str | Path | None,
) -> PromptTemplate:
    """The template to render the run's stored inputs with: a file, or a version of its prompt."""
    from evals.prompts import PromptError, PromptTemplate, load_prompt, stored_prompt

    name = run["prompt_name"]
    if prompt_file is not None:
        try:
            return PromptTemplate.from_file(prompt_file, name=name or Path(prompt_file).stem)
        except PromptError as exc:
            raise ReplayError(str(exc)) from None
    if not name:
        raise ReplayError(
            "the run records no prompt name: replay it as stored, or give --prompt-file"
        )
    template = stored_prompt(conn, name, prompt_version)
    if template is None:
        try:
            shipped = load_prompt(name)
        except PromptError:
            shipped = None
        if shipped is None or shipped.version != prompt_version:
            raise ReplayError(
                f"no version {prompt_version!r} of prompt {name!r} in raw.prompt_versions"
            )
        template = shipped
    return template


def replay_run(
    config: Config,
    run_id: uuid.UUID | str,
    model: str | None = None,
    prompt_version: str | None = None,
    prompt_file: str | Path | None = None,
    conn: psycopg.Connection = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Re-execute a run and store the result as a new row; returns (old row, new row).

    Without a prompt option the stored messages and params are sent exactly as stored. With
    `prompt_version` (a version in raw.prompt_versions) or `prompt_file` the stored inputs are
    rendered again with that template. `model` replaces the model asked.
    """
    if prompt_version and prompt_file:
        raise ReplayError("give --prompt-version or --prompt-file, not both")
    if conn is None:
        from evals import warehouse

        with warehouse.connect(autocommit=True) as own:
            return replay_run(config, run_id, model, prompt_version, prompt_file, own)

    run = load_run(conn, run_id)
    template = None
    if prompt_version or prompt_file:
        template = replacement_prompt(conn, run, prompt_version, prompt_file)
    messages = messages_to_send(run, template)
    suite = stored_suite(conn, config, run["suite"], run["suite_version"])
    asked = model or run["model"]
    result = _complete(config, asked, messages, run["params"], run_metadata(conn, run, suite))
    new = _replay_record(run, asked, messages, template, result, suite)
    if template is not None:
        from evals.prompts import ensure_prompt_version

        ensure_prompt_version(conn, template.name, template.version, template.text)
    write_runs(conn, [new])
    return run, load_run(conn, new.run_id)


def messages_to_send(run: dict[str, Any], template: PromptTemplate | None) -> list[dict]:
    """The stored messages as they were sent, or the stored inputs rendered with `template`."""
    messages = copy.deepcopy(run["messages"])
    if template is not None:
        if not run["inputs"]:
            raise ReplayError("the run stored no inputs to render a prompt from")
        try:
            messages = template.render(**run["inputs"])
        except Exception as exc:  # jinja's UndefinedError names the missing variable
            raise ReplayError(
                f"prompt {template.name!r} cannot render the stored inputs: {exc}"
            ) from None
    if not messages:
        raise ReplayError("the run stored no messages to replay")
    return messages


def _complete(
    config: Config, model: str, messages: list[dict], params: dict | None, metadata: dict[str, Any]
) -> CallResult:
    from evals.llm import LLMClient

    client = LLMClient(config)
    try:
        return client.complete(model, messages, params=copy.deepcopy(params), metadata=metadata)
    finally:
        client.close()


def _replay_record(
    run: dict[str, Any],
    model: str,
    messages: list[dict],
    template: PromptTemplate | None,
    result: CallResult,
    suite: Suite | None,
) -> RunRecord:
    """The new row: the original's inputs, this call's outcome, a link back to the original
    (built as a replay of many builds its rows, evals.regrade), graded as the original was."""
    from evals.regrade import Regrade, record_of

    job = Regrade(
        key=idempotency_key("replay", str(uuid.uuid4())),  # a one-off: never the same call
        call=run,
        parent_run_id=run["run_id"],
        fields={
            "source": "replay",
            "role": run["role"],
            "batch_id": None,
            "messages": messages,
            "prompt_name": run["prompt_name"] if template is None else template.name,
            "prompt_version": run["prompt_version"] if template is None else template.version,
            "attributes": {"replay_of": str(run["run_id"])},
        },
    )
    return record_of(job, model, result, suite, None)


def grade_record(record: RunRecord, suite: Suite | None) -> None:
    if record.status != "ok" or suite is None or record.role not in ("grader", "judge"):
        return
    from evals.judging import parse_grade

    grade = parse_grade(record.output_text, suite)
    record.status = grade.status
    if grade.status == "ok":
        record.verdict, record.passed, record.score = grade.verdict, grade.passed, grade.score
        record.feedback, record.issue_tags = grade.feedback, grade.issue_tags
    else:
        record.error_class, record.error_message = "ParseError", grade.problem


# --- diff -------------------------------------------------------------------------------------


def messages_text(messages: list[dict[str, Any]]) -> str:
    """Messages as diffable text: a `[role]` header line, then the content verbatim."""
    parts = []
    for message in messages or []:
        content = message.get("content")
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False, indent=2)
        parts.append(f"[{message.get('role', '?')}]\n{content}\n")
    return "\n".join(parts)


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"


def _unified(a_text: str | None, b_text: str | None, a_name: str, b_name: str) -> str:
    a_lines = (a_text or "").splitlines(keepends=True)
    b_lines = (b_text or "").splitlines(keepends=True)
    lines = difflib.unified_diff(a_lines, b_lines, fromfile=a_name, tofile=b_name)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _outcome_text(run: dict[str, Any]) -> str:
    lines = [
        f"{key}: {run[key]}"
        for key in ("status", "verdict", "passed", "score", "model", "response_model")
    ]
    lines.append(f"issue_tags: {', '.join(run['issue_tags'] or [])}")
    return "\n".join(lines) + "\n"


def diff_runs(conn: psycopg.Connection, a: uuid.UUID | str, b: uuid.UUID | str) -> dict[str, str]:
    """Unified diffs (empty string = identical) of prompt, messages, params, output, verdict, feedback."""
    view_a, view_b = load_run_view(conn, a), load_run_view(conn, b)
    run_a, run_b = view_a["run"], view_b["run"]
    name_a, name_b = f"run {run_a['run_id']}", f"run {run_b['run_id']}"

    def label(run: dict[str, Any], what: str) -> str:
        return f"{what} of run {run['run_id']}"

    return {
        "prompt": _unified(
            view_a["template"],
            view_b["template"],
            f"{run_a['prompt_name']}@{run_a['prompt_version']} ({name_a})",
            f"{run_b['prompt_name']}@{run_b['prompt_version']} ({name_b})",
        ),
        "messages": _unified(
            messages_text(run_a["messages"]),
            messages_text(run_b["messages"]),
            label(run_a, "messages"),
            label(run_b, "messages"),
        ),
        "params": _unified(
            _pretty(run_a["params"]),
            _pretty(run_b["params"]),
            label(run_a, "params"),
            label(run_b, "params"),
        ),
        "output": _unified(
            run_a["output_text"],
            run_b["output_text"],
            label(run_a, "output"),
            label(run_b, "output"),
        ),
        "verdict": _unified(
            _outcome_text(run_a),
            _outcome_text(run_b),
            label(run_a, "verdict"),
            label(run_b, "verdict"),
        ),
        "feedback": _unified(
            _pretty(run_a["feedback"]),
            _pretty(run_b["feedback"]),
            label(run_a, "feedback"),
            label(run_b, "feedback"),
        ),
    }
