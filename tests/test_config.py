"""evalhouse.yaml: bad configuration is refused with the key path or line, exit 2, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.cli import app
from evals.config import ConfigError, load_config
from tests.conftest import REPO_ROOT


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    config = tmp_path / "evalhouse.yaml"
    config.write_text(text)
    env = {**os.environ, "EVALHOUSE_CONFIG": str(config), "EVALHOUSE_HOME": str(tmp_path / "h")}
    return subprocess.run(
        [sys.executable, "-m", "evals.cli", "config", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_the_shipped_config_is_valid() -> None:
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    assert config.default_model in config.models
    assert config.reference_judge in config.judges


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  m:\n    model: openai/x\n    concurency: 3\n",
            "models.m.concurency: unknown key",
        ),
        ("drift:\n  baseline_days: fourteen\n", "drift.baseline_days"),
        ("alerts:\n  webhooks:\n    - name: ops\n", "alerts.webhooks.0"),
        ("default_model: ghost\n", "default_model: model 'ghost' is not defined"),
        ("models: [\n  broken\n", "broken YAML"),
        ("models:\n  m:\n    model: a\n   bad_indent: 1\n", ":4:"),
    ],
)
def test_a_bad_config_names_the_key_path_or_line_and_exits_2(
    tmp_path: Path, text: str, expected: str
) -> None:
    result = _check(tmp_path, text)
    assert result.returncode == 2
    assert expected in result.stderr
    assert str(tmp_path / "evalhouse.yaml") in result.stderr.replace("\n", "")
    assert not (tmp_path / "h").exists(), "nothing may be started or written"


def test_secrets_come_from_the_environment_not_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_PROVIDER_KEY", "sk-secret")
    config = (
        load_config(REPO_ROOT / "evalhouse.yaml")
        .model("openai/gpt-4o-mini")
        .model_copy(update={"api_key_env": "SOME_PROVIDER_KEY"})
    )
    assert config.api_key() == "sk-secret"
    assert "sk-secret" not in config.model_dump_json()


def test_an_explicitly_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.yaml")


def _check_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: str
) -> tuple[int, str]:
    config = tmp_path / "evalhouse.yaml"
    config.write_text("models:\n" + models)
    monkeypatch.setenv("EVALHOUSE_CONFIG", str(config))
    result = CliRunner().invoke(app, ["config", "check"])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (
            "  m:\n    model: openai/gpt-4o-mini\n    api_key_env: MY_LLM_CREDENTIAL\n",
            "models.m.api_key_env: environment variable MY_LLM_CREDENTIAL is not set",
        ),
        ("  m:\n    model: foo/bar\n", "models.m.model: LiteLLM cannot route 'foo/bar'"),
        (
            "  m:\n    model: openai/gpt-4o-mnii\n",
            "models.m.model: 'openai/gpt-4o-mnii' is not in LiteLLM's model list",
        ),
    ],
    ids=["unset key variable", "unknown provider", "misspelt model"],
)
def test_config_check_refuses_what_would_fail_or_leak_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: str, expected: str
) -> None:
    monkeypatch.delenv("MY_LLM_CREDENTIAL", raising=False)
    code, output = _check_in_process(tmp_path, monkeypatch, models)
    assert code == 2
    assert expected in output


def test_config_check_accepts_a_known_model_with_its_key_or_a_price_or_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_CREDENTIAL", "qz81Mx9CRED7734llm")
    models = (
        "  known:\n    model: openai/gpt-4o-mini\n    api_key_env: MY_LLM_CREDENTIAL\n"
        "  priced:\n    model: openai/brand-new\n    input_cost_per_token: 1.0e-6\n"
        "  local:\n    model: openai/llama\n    api_base: http://127.0.0.1:9/v1\n"
    )
    code, output = _check_in_process(tmp_path, monkeypatch, models)
    assert code == 0, output
    assert "models: known, priced, local" in output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("retention:\n  prod: 30\n", "retention: Value error, 'prod' is not a run-log source"),
        ("retention:\n  production: 0\n", "retention.production.constrained-int"),
        ("retention:\n  golden: always\n", "retention.golden.literal['forever']"),
        ("capture:\n  redact_patterns: ['(']\n", "'(' is not a regular expression"),
        ("capture:\n  redact_pii: [ssn]\n", "capture.redact_pii.0: Input should be 'email'"),
    ],
)
def test_lifecycle_settings_are_refused_with_their_key_path(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "evalhouse.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert expected in str(refused.value)


def test_retention_is_days_or_forever_and_capture_redacts_email_and_phone_by_default(
    tmp_path: Path,
) -> None:
    path = tmp_path / "evalhouse.yaml"
    path.write_text("retention:\n  production: 180\n  golden: forever\n")
    config = load_config(path)
    assert config.retention == {"production": 180, "golden": "forever"}
    assert config.capture.redact_pii == ["email", "phone"]
