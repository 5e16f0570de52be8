"""Shared fixtures: one real embedded Postgres per test session, a fresh database per test.

Each test that touches the warehouse gets its own database, cloned from a migrated template
(a file copy inside Postgres, ~50 ms), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from evals import warehouse
from evals.golden.outcomes import ensure_outcomes_view
from evals.warehouse.embedded import EmbeddedPostgres

TEMPLATE_DB = "evalhouse_template"

# Property-based tests: bounded in `make test`; `-m fuzz` tests load the long profile themselves
# (`settings.get_profile("fuzz")`). No deadline: a warehouse round trip on 2 busy cores varies.
settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("fuzz", parent=settings.get_profile("default"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Each session gets a temp root of its own unless --basetemp names one.

    pytest's shared root (/tmp/pytest-of-<user>) is reset to mode 0700 by every session that
    starts, while the embedded Postgres of a running session (a separate system user when run
    as root) needs to traverse it: two test sessions on one machine would cut each other's
    servers off ("Permission denied" on pgdata).
    """
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="evalhouse-pytest-")
        config.add_cleanup(lambda: shutil.rmtree(config.option.basetemp, ignore_errors=True))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """The session's embedded Postgres, with a migrated template database."""
    home = tmp_path_factory.mktemp("pg")
    server = EmbeddedPostgres(home)
    server.ensure_running()
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'create database "{TEMPLATE_DB}"')
    template_url = server.url(TEMPLATE_DB)
    os.environ[warehouse.URL_ENV] = template_url
    try:
        warehouse.migrate()
        with warehouse.connect() as conn:  # the golden-outcomes view, as a first read creates it
            ensure_outcomes_view(conn)
    finally:
        del os.environ[warehouse.URL_ENV]
        warehouse._engine_for(template_url).dispose()  # a template must have no open connections
    yield server
    server.stop()


def create_database(server: EmbeddedPostgres) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{TEMPLATE_DB}"')
    return name


def role_url(server: EmbeddedPostgres, url: str, role: str) -> str:
    """The database of `url` on `server`, as `role` with its password (non-owners need one)."""
    from psycopg.conninfo import conninfo_to_dict

    return server.url(conninfo_to_dict(url)["dbname"], role=role)


def drop_database(server: EmbeddedPostgres, name: str) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def warehouse_url(pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated warehouse database, selected through EVALHOUSE_DATABASE_URL."""
    name = create_database(pg_server)
    url = pg_server.url(name)
    monkeypatch.setenv(warehouse.URL_ENV, url)
    yield url
    warehouse._engine_for(url).dispose()
    drop_database(pg_server, name)


@pytest.fixture(scope="session", autouse=True)
def _repo_home_untouched() -> Iterator[None]:
    """A fresh checkout's ./.evalhouse is still absent after the suite: no test (nor a thread
    or fixture outside `_isolated_home`'s reach) started the default embedded warehouse there,
    which would outlive the run."""
    home = REPO_ROOT / ".evalhouse"
    absent = not home.exists()
    yield
    if absent:
        assert not home.exists(), f"the suite made {home}: something used the default warehouse"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the developer's ./.evalhouse or ./evalhouse.yaml: each runs in a tmp dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(warehouse.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(warehouse.URL_ENV, raising=False)
    monkeypatch.delenv("EVALHOUSE_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def _fake_provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key variable tests' fake OpenAI models name (FAKE_PROVIDER_API_KEY), set: a model
    whose key variable is unset is refused before any call."""
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", "fake-provider-key-0123456789")
