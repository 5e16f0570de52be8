"""show / replay / diff of one run, through LiteLLM to the local OpenAI-compatible server."""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml
from fake_openai import fake_openai  # noqa: F401  (fixture)
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from evals.cli import app
from evals.config import load_config
from evals.replay import ReplayError, diff_runs, load_run_view, replay_run
from evals.replay_many import read_run_ids
from evals.runlog import RunRecord, write_runs

TEMPLATE_V1 = """{% block system %}Grade strictly. Verdicts: {{ verdicts | join(", ") }}.{% endblock %}
{% block user %}Rubric: {{ rubric }}
Submission:
{{ submission }}{% endblock %}
"""
# Awkward bytes on purpose: trailing spaces, CRLF, tabs, NBSP, combining marks, emoji, quotes.
TRICKY = "def f(x):  \r\n\treturn x  # naïve café\u00a0→ 🐍 \"quotes\" 'single' \\backslash\n\n"


@pytest.fixture
def config(tmp_path: Path, fake_openai):
    path = tmp_path / "evalhouse.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "tutor": {
                        "model": "openai/tutor",
                        "api_base": fake_openai.api_base,
                        "max_attempts": 1,
                    },
                    "tutor-2": {"model": "openai/tutor-2", "api_base": fake_openai.api_base},
                },
            }
        )
    )
    return load_config(path)


@pytest.fixture
def conn(warehouse_url: str):
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


def _original(conn, **extra) -> RunRecord:
    inputs = {
        "rubric": "Returns x unchanged.",
        "submission": TRICKY,
        "verdicts": ["pass", "revise", "fail"],
    }
    messages = [
        {"role": "system", "content": "Grade strictly.  \n"},
        {"role": "user", "content": f"Rubric: {inputs['rubric']}\nSubmission:\n{TRICKY}"},
    ]
    record = RunRecord(
        idempotency_key=f"orig-{uuid.uuid4()}",
        source="production",
        role="grader",
        model="tutor",
        started_at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
        status="ok",
        stage="functions",
        suite="intro-python",
        item_id="fn-01",
        subject_id="learner-9",
        inputs=inputs,
        messages=messages,
        params={"temperature": 0.0, "max_tokens": 400},
        prompt_name="rubric_grader_test",
        prompt_version="v0",
        output_text='{"verdict": "revise"}',
        verdict="revise",
        passed=False,
        **extra,
    )
    write_runs(conn, [record])
    return record


def test_replay_sends_the_stored_messages_byte_for_byte_and_stores_a_child_row(
    config, conn, fake_openai
):
    original = _original(conn)
    fake_openai.reset_counts()
    old, new = replay_run(config, original.run_id, conn=conn)

    (request,) = fake_openai.requests
    sent = request["json"]["messages"]
    assert sent == original.messages
    assert [m["content"].encode("utf-8") for m in sent] == [
        m["content"].encode("utf-8") for m in old["messages"]
    ]
    assert request["json"]["temperature"] == 0.0 and request["json"]["max_tokens"] == 400
    assert new["messages"] == old["messages"] == original.messages
    assert new["source"] == "replay" and new["parent_run_id"] == original.run_id
    assert new["run_id"] != original.run_id and new["status"] == "ok"
    assert (new["stage"], new["item_id"], new["subject_id"]) == ("functions", "fn-01", "learner-9")
    assert json.loads(new["output_text"])["verdict"] == "pass"

    view = load_run_view(conn, original.run_id)
    assert [child["run_id"] for child in view["children"]] == [new["run_id"]]
    assert load_run_view(conn, new["run_id"])["parent"]["run_id"] == original.run_id


def test_replay_parses_the_verdict_with_the_suite_vocabulary(config, conn):
    conn.execute(
        "insert into raw.golden_suites (suite, suite_version, kind, verdicts, passing_verdicts,"
        " issue_tags, item_count) values ('intro-python', 'sv1', 'grader', '{pass,revise,fail}',"
        " '{pass}', '{off_by_one}', 0)"
    )
    original = _original(conn, suite_version="sv1")
    _, new = replay_run(config, original.run_id, model="tutor-2", conn=conn)
    assert (new["model"], new["verdict"], new["passed"], new["score"]) == (
        "tutor-2",
        "pass",
        True,
        0.9,
    )
    assert new["feedback"]["suggestion"] == "keep going"


def test_replay_with_another_prompt_re_renders_the_stored_inputs_and_diff_shows_it(
    config,
    conn,
    tmp_path: Path,
    fake_openai,
):
    original = _original(conn)
    prompt = tmp_path / "grader_v2.j2"
    prompt.write_text(TEMPLATE_V1)
    _, new = replay_run(config, original.run_id, prompt_file=prompt, conn=conn)
    assert new["prompt_name"] == "rubric_grader_test" and new["prompt_version"] != "v0"
    assert new["messages"][0]["content"] == "Grade strictly. Verdicts: pass, revise, fail."
    assert TRICKY.strip() in new["messages"][1]["content"]
    assert fake_openai.requests[-1]["json"]["messages"] == new["messages"]
    stored = conn.execute(
        "select template from raw.prompt_versions where prompt_version = %s",
        (new["prompt_version"],),
    ).fetchone()
    assert stored == (TEMPLATE_V1,)

    # Replaying again with that stored version renders the very same messages.
    _, again = replay_run(config, original.run_id, prompt_version=new["prompt_version"], conn=conn)
    assert again["messages"] == new["messages"]

    diffs = diff_runs(conn, original.run_id, new["run_id"])
    assert (
        "-Grade strictly.  " in diffs["messages"]
        and "+Grade strictly. Verdicts" in diffs["messages"]
    )
    assert "+{% block system %}" in diffs["prompt"]
    assert '-{"verdict": "revise"}' in diffs["output"]
    assert "-verdict: revise" in diffs["verdict"]
    assert diffs["params"] == ""
    assert all(text == "" for text in diff_runs(conn, original.run_id, original.run_id).values())


def test_show_prints_the_whole_record_and_json_carries_reviews_and_children(
    config, conn, warehouse_url, monkeypatch, tmp_path: Path
):
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(tmp_path / "evalhouse.yaml"))
    original = _original(conn)
    conn.execute(
        "insert into raw.human_reviews (review_id, run_id, reviewer, verdict, notes)"
        " values (%s, %s, 'ana', 'pass', 'fine really')",
        (uuid.uuid4(), original.run_id),
    )
    runner = CliRunner()
    replayed = runner.invoke(app, ["replay", str(original.run_id)])
    assert replayed.exit_code == 0, replayed.output
    assert "original" in replayed.output and "messages: identical" in replayed.output

    shown = runner.invoke(app, ["show", str(original.run_id), "--json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.output)
    assert view["run"]["messages"] == original.messages
    assert view["reviews"][0]["reviewer"] == "ana"
    assert view["children"][0]["source"] == "replay"

    human = runner.invoke(app, ["show", str(original.run_id)], terminal_width=160)
    assert human.exit_code == 0, human.output
    for needle in (
        "learner-9",
        "fine really",
        "rubric_grader_test @ v0",
        "message 1 · user",
        "replay",
    ):
        assert needle in human.output

    child = view["children"][0]["run_id"]
    diffed = runner.invoke(app, ["diff", str(original.run_id), child])
    assert diffed.exit_code == 0 and "output" in diffed.output

    missing = runner.invoke(app, ["show", str(uuid.uuid4())])
    assert missing.exit_code == 2 and "no run" in missing.output
    assert runner.invoke(app, ["show", "not-a-uuid"]).exit_code == 2


_ENTRY = st.one_of(
    st.uuids().map(lambda value: ("id", str(value))),
    st.just(("blank", "   ")),
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs",),
            blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
        )
    ).map(lambda note: ("comment", "# " + note)),
)


@given(st.lists(_ENTRY, max_size=20))
def test_a_runs_file_gives_its_run_ids_in_order_past_blanks_and_comments(
    entries: list[tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.txt"
        path.write_text("\n".join(text for _, text in entries), encoding="utf-8")
        assert read_run_ids(path) == tuple(text for kind, text in entries if kind == "id")


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (f"{uuid.UUID(int=1)}\nnot-a-run\n", 2),
        (f"# flagged\n\n{uuid.UUID(int=1)}  # fine\n{uuid.UUID(int=2)}\x00\n", 4),
        ("\U0001f600 emoji\n", 1),
    ],
)
def test_a_bad_line_in_a_runs_file_is_named_by_file_and_line_and_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, line: int
) -> None:
    path = tmp_path / "runs.txt"
    path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("EVALHOUSE_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    result = CliRunner().invoke(app, ["replay-many", "--runs-file", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}: not a run id" in result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit: a reported line, no traceback


def test_a_runs_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.txt"
    path.write_bytes(b"\xf0\x9f\x98\n")  # an emoji cut short
    with pytest.raises(ReplayError, match=f"{path}: cannot read the runs file"):
        read_run_ids(path)
