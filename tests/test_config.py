"""evalhouse.yaml: bad configuration is refused with the key path or line, exit 2, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
