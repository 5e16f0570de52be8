"""The warehouse: embedded lifecycle under concurrency and kill -9, URLs, migrations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from evals import warehouse
from evals.warehouse.embedded import EmbeddedPostgres

EVALHOUSE = [sys.executable, "-m", "evals.cli"]


def _cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EVALHOUSE, *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=120,
        **kwargs,
    )


def _postgres_pids(pgdata: Path) -> list[int]:
    import psutil

    return [
        proc.pid
        for proc in psutil.process_iter(["name", "cmdline"])
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or [])
    ]


def _postmasters(pgdata: Path) -> list[int]:
    """Server processes of this data dir whose parent is not one of them."""
    import psutil

    pids = set(_postgres_pids(pgdata))
    return [pid for pid in pids if psutil.Process(pid).ppid() not in pids]


def test_two_parallel_db_up_on_a_fresh_home_start_one_server(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    env = {**os.environ, "EVALHOUSE_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [*EVALHOUSE, "db", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        results = [proc.communicate(timeout=120) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], results
        postmasters = _postmasters(home / "pgdata")
        assert len(postmasters) == 1
        assert EmbeddedPostgres(home).status().pid == postmasters[0]
    finally:
        assert _cli("db", "down", env=env).returncode == 0
    assert not EmbeddedPostgres(home).status().running


def test_status_tells_the_truth_and_down_stops_after_the_starter_is_killed(tmp_path: Path) -> None:
    home = tmp_path / "killed"
    env = {**os.environ, "EVALHOUSE_HOME": str(home)}
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from evals import warehouse; warehouse.engine().connect(); time.sleep(600)",
        ],
        env=env,
    )
    try:
        for _ in range(600):
            if EmbeddedPostgres(home).status().running:
                break
            import time

            time.sleep(0.1)
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(10)
        status = _cli("db", "status", env=env)
        assert status.returncode == 0, status.stderr
        assert "running" in status.stdout
        down = _cli("db", "down", env=env)
        assert down.returncode == 0 and "stopped" in down.stdout
        after = _cli("db", "status", env=env)
        assert after.returncode == 1 and "stopped" in after.stdout
        assert _postgres_pids(home / "pgdata") == []
    finally:
        starter.kill()


def test_db_url_is_accepted_by_psql_psycopg_and_sqlalchemy(pg_server: EmbeddedPostgres) -> None:
    env = {**os.environ, "EVALHOUSE_HOME": str(pg_server.home)}
    url = _cli("db", "url", env=env).stdout.strip()
    psql = subprocess.run(["psql", url, "-tAc", "select 41 + 1"], capture_output=True, text=True)
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == "42"
    with psycopg.connect(url) as conn:
        assert conn.execute("select current_database()").fetchone() == ("evalhouse",)
    import sqlalchemy as sa

    with sa.create_engine(warehouse.sqlalchemy_url(url)).connect() as conn:
        assert conn.execute(text("select 1")).scalar() == 1


def test_db_url_tcp_serves_loopback_for_jdbc_tools(tmp_path: Path) -> None:
    home = tmp_path / "tcp"
    env = {**os.environ, "EVALHOUSE_HOME": str(home)}
    port = "55433"
    try:
        up = _cli("db", "up", "--tcp", port, env=env)
        assert up.returncode == 0, up.stderr
        url = _cli("db", "url", "--tcp", env=env).stdout.strip()
        password = EmbeddedPostgres(home).passwords.load()["postgres"]
        assert url == f"postgresql://postgres:{password}@127.0.0.1:{port}/evalhouse"
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from raw.eval_runs").fetchone() == (0,)
    finally:
        _cli("db", "down", env=env)


def _tables(conn) -> set[str]:
    return set(
        conn.execute(
            text(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'raw'"
                " and c.relkind in ('r', 'p') and not c.relispartition"
            )
        ).scalars()
    )


def test_migrations_go_empty_to_head_to_base_and_back(warehouse_url: str) -> None:
    head = warehouse.head_revision()
    with warehouse.engine().connect() as conn:
        assert _tables(conn) == {
            "eval_runs",
            "eval_run_keys",
            "prompt_versions",
            "golden_items",
            "golden_suites",
            "human_reviews",
            "review_queue",
            "alerts",
            "alert_occurrences",
            "alert_deliveries",
            "gate_decisions",
            "web_sessions",
            "data_erasures",
            "api_tokens",
            "model_checks",
            "batch_requests",
            "eval_batches",
            "call_pacing",
        }
    assert warehouse.migrate("base") is None
    with warehouse.engine().connect() as conn:
        assert _tables(conn) == set()
    assert warehouse.migrate() == head
    assert warehouse.migrate() == head  # idempotent


def test_ensure_migrated_upgrades_an_empty_warehouse_and_then_only_checks(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert warehouse.file_head() == warehouse.head_revision()
    assert warehouse.migrate("base") is None
    warehouse.ensure_migrated()
    assert warehouse.current_revision() == warehouse.head_revision()
    upgrades = []
    monkeypatch.setattr(warehouse, "migrate", lambda: upgrades.append("migrate"))
    warehouse.ensure_migrated()  # at head: one query, no Alembic
    assert upgrades == []


def _previous_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(warehouse.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(config).get_revision(warehouse.head_revision()).down_revision


@pytest.mark.parametrize("start", ["0001", "previous"])
def test_upgrading_an_older_warehouse_keeps_every_row(warehouse_url: str, start: str) -> None:
    warehouse.migrate(_previous_revision() if start == "previous" else start)
    run_ids = [uuid.uuid4() for _ in range(50)]
    with warehouse.engine().begin() as conn:
        for i, run_id in enumerate(run_ids):
            conn.execute(
                text(
                    "insert into raw.eval_runs (run_id, idempotency_key, source, role, model,"
                    " started_at, status, submission) values (:id, :key, 'golden', 'grader',"
                    " 'm', :at, 'ok', :sub)"
                ),
                {"id": run_id, "key": f"k{i}", "at": datetime.now(UTC), "sub": f"café {i} ✓"},
            )
    assert warehouse.migrate() == warehouse.head_revision()
    with warehouse.engine().connect() as conn:
        rows = conn.execute(
            text("select run_id, submission from raw.eval_runs order by idempotency_key")
        ).all()
    assert sorted(row.run_id for row in rows) == sorted(run_ids)
    assert {row.submission for row in rows} == {f"café {i} ✓" for i in range(50)}


def test_the_run_log_rejects_values_outside_its_enumerations(warehouse_url: str) -> None:
    with pytest.raises(Exception, match="check constraint"), warehouse.engine().begin() as conn:
        conn.execute(
            text(
                "insert into raw.eval_runs (run_id, idempotency_key, source, role, model, started_at,"
                " status) values (gen_random_uuid(), 'x', 'golden', 'grader', 'm', now(), 'maybe')"
            )
        )


def test_concurrent_migrations_of_an_empty_warehouse_all_succeed(
    pg_server: EmbeddedPostgres,
) -> None:
    name = f"empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        env = {**os.environ, warehouse.URL_ENV: pg_server.url(name)}
        procs = [
            subprocess.Popen(
                [*EVALHOUSE, "db", "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
        with psycopg.connect(pg_server.url(name)) as conn:
            version = conn.execute("select version_num from public.alembic_version").fetchall()
        assert version == [(warehouse.head_revision(),)]
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database "{name}" with (force)')
