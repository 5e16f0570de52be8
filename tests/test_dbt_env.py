"""`evals.dbt` derives dbt's whole environment from the warehouse URL and evalhouse.yaml, and
`evalhouse dbt ARGS…` passes every argument through to dbt on that warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

from conftest import REPO_ROOT
from typer.testing import CliRunner

from evals.cli import app
from evals.config import Config, DriftConfig, StageBand
from evals.dbt import DBT_PROJECT_DIR, connection_env, dbt_env


def test_a_socket_url_gives_its_directory_as_host_and_its_query_port():
    env = connection_env("postgresql://postgres@/evalhouse?host=/tmp/pg%20data&port=5433")
    assert env == {
        "EVALHOUSE_DBT_HOST": "/tmp/pg data",
        "EVALHOUSE_DBT_PORT": "5433",
        "EVALHOUSE_DBT_USER": "postgres",
        "EVALHOUSE_DBT_PASSWORD": "",
        "EVALHOUSE_DBT_DBNAME": "evalhouse",
    }


def test_a_tcp_url_with_a_driver_suffix_and_password_is_understood():
    env = connection_env("postgresql+psycopg://ana:s3cr%40t@db.internal:6543/warehouse")
    assert env["EVALHOUSE_DBT_HOST"] == "db.internal"
    assert env["EVALHOUSE_DBT_PORT"] == "6543"
    assert (env["EVALHOUSE_DBT_USER"], env["EVALHOUSE_DBT_PASSWORD"]) == ("ana", "s3cr@t")
    assert env["EVALHOUSE_DBT_DBNAME"] == "warehouse"


def test_dbt_env_carries_project_offline_flags_and_the_configured_bands(tmp_path):
    config = Config(
        drift=DriftConfig(
            baseline_days=7,
            stage_bands={"loops": StageBand(too_easy_above=0.9, stalling_below=0.2)},
        )
    )
    env = dbt_env("postgresql://u@h/d", config, target_path=tmp_path)
    assert env["DBT_PROJECT_DIR"] == env["DBT_PROFILES_DIR"] == str(DBT_PROJECT_DIR)
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert env["DBT_TARGET_PATH"] == str(tmp_path)
    assert env["EVALHOUSE_DBT_BASELINE_DAYS"] == "7"
    assert json.loads(env["EVALHOUSE_DBT_STAGE_BANDS"]) == {
        "loops": {"too_easy_above": 0.9, "stalling_below": 0.2}
    }
    assert env["EVALHOUSE_DBT_ALERTS_BASE_URL"] == config.alerts.base_url


def test_evalhouse_dbt_without_a_command_is_bad_input():
    result = CliRunner().invoke(app, ["dbt"])
    assert result.exit_code == 2


def test_evalhouse_dbt_passes_arguments_through_to_dbt_on_the_warehouse(warehouse_url, tmp_path):
    env = {**os.environ, "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "evals.cli", "dbt", "debug", "--no-version-check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "All checks passed!" in result.stdout
    assert f"database: {urlsplit(warehouse_url).path.lstrip('/')}" in result.stdout


def test_the_golden_outcomes_view_is_created_on_first_read_of_a_warehouse_without_it(warehouse_url):
    import psycopg

    from evals.golden.outcomes import ensure_outcomes_view, outcomes_view

    with psycopg.connect(warehouse_url) as conn:
        conn.execute(f"drop view {outcomes_view()}")
        conn.commit()
        ensure_outcomes_view(conn)
        assert conn.execute(f"select count(*) from {outcomes_view()}").fetchone() == (0,)
