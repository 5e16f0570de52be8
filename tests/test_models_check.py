"""`evalhouse models check` and `evalhouse api token`: real LiteLLM calls to the simulated
provider and to a loopback fake OpenAI server that answers 401, 404, 429 or is not there."""

from __future__ import annotations

import json
import socket

import psycopg
import pytest
from conftest import REPO_ROOT
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)
from psycopg.rows import dict_row
from typer.testing import CliRunner

from evals.cli import app
from evals.model_checks import error_class

KEY = "sk-proj-CheckKey0123456789abcdefXYZ"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _checks(url: str) -> dict[str, dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("select * from raw.model_checks order by check_id").fetchall()
    return {row["model_name"]: row for row in rows}


def test_every_simulated_model_answers_and_the_results_are_stored(warehouse_url, monkeypatch):
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(REPO_ROOT / "evalhouse.yaml"))
    result = CliRunner().invoke(app, ["models", "check", "--json"])
    assert result.exit_code == 0, result.output
    checks = json.loads(result.output)
    configured = ["tutor-small", "tutor-large", "judge", "pairwise-judge", "longer-judge"]
    assert [c["model_name"] for c in checks] == configured
    assert all(c["ok"] and c["error_class"] is None for c in checks)
    stored = _checks(warehouse_url)
    assert sorted(stored) == sorted(configured)
    assert stored["judge"]["litellm_model"] == "evalhouse-sim/judge"
    assert stored["judge"]["latency_ms"] >= 0


def test_failures_are_classed_the_command_exits_1_and_no_key_is_printed(
    warehouse_url,
    monkeypatch,
    tmp_path,
    fake_openai: FakeOpenAI,
):
    fake_openai.script("m-auth", ["auth"])
    fake_openai.script("m-missing", ["not_found"])
    fake_openai.script("m-limited", ["rate_limit"])
    fake_openai.script("m-leaky", ["server_error"])
    models = {
        name: {
            "model": f"openai/{name}",
            "api_base": fake_openai.api_base,
            "api_key_env": "CHECK_KEY",
        }
        for name in ("m-good", "m-auth", "m-missing", "m-limited", "m-leaky")
    }
    models["m-down"] = {
        "model": "openai/m-down",
        "api_base": f"http://127.0.0.1:{_closed_port()}/v1",
        "api_key_env": "CHECK_KEY",
    }
    config = tmp_path / "evalhouse.yaml"
    config.write_text(json.dumps({"models": models}))  # JSON is YAML
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(config))
    monkeypatch.setenv("CHECK_KEY", KEY)
    result = CliRunner().invoke(app, ["models", "check"])
    assert result.exit_code == 1
    assert KEY not in result.output
    stored = _checks(warehouse_url)
    assert {name: row["error_class"] for name, row in stored.items()} == {
        "m-good": None,
        "m-auth": "auth",
        "m-missing": "not_found",
        "m-limited": "rate_limited",
        "m-leaky": "error",
        "m-down": "unreachable",
    }
    assert stored["m-good"]["ok"] is True
    assert stored["m-good"]["response_model"].startswith("m-good")
    assert all(KEY not in (row["error_message"] or "") for row in stored.values())
    assert fake_openai.behaviour_counts["rate_limit"] == 1  # one attempt: a check never retries
    only = CliRunner().invoke(app, ["models", "check", "m-good", "--no-store"])
    assert only.exit_code == 0, only.output
    assert "m-good" in only.output and "m-auth" not in only.output


def test_an_unknown_model_name_is_bad_input(warehouse_url, monkeypatch):
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(REPO_ROOT / "evalhouse.yaml"))
    result = CliRunner().invoke(app, ["models", "check", "no-such-model"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("name", "message", "expected"),
    [
        ("AuthenticationError", "", "auth"),
        ("PermissionDeniedError", "", "auth"),
        ("NotFoundError", "", "not_found"),
        ("RateLimitError", "", "rate_limited"),
        ("APIConnectionError", "", "unreachable"),
        ("DeadlineExceeded", "", "unreachable"),
        ("InternalServerError", "Connection refused", "unreachable"),
        ("InternalServerError", "boom", "error"),
        (None, None, "error"),
    ],
)
def test_error_classes_follow_litellm_exceptions(name, message, expected):
    assert error_class(name, message) == expected


def test_api_tokens_are_printed_once_listed_by_prefix_and_revoked(warehouse_url, monkeypatch):
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(REPO_ROOT / "evalhouse.yaml"))
    runner = CliRunner()
    created = runner.invoke(app, ["api", "token", "create", "ci deploy"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("eh_") and len(token) == 46
    listed = runner.invoke(app, ["api", "token", "list"])
    assert token[:10] in listed.output and token not in listed.output
    assert "live" in listed.output and "ci deploy" in listed.output
    with psycopg.connect(warehouse_url) as conn:
        token_id = conn.execute("select token_id from raw.api_tokens").fetchone()[0]
    assert runner.invoke(app, ["api", "token", "revoke", str(token_id)]).exit_code == 0
    assert runner.invoke(app, ["api", "token", "revoke", str(token_id)]).exit_code == 2
    assert "revoked" in runner.invoke(app, ["api", "token", "list"]).output
