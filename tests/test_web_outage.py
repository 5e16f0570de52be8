"""The web app while its warehouse goes away: `db up --tcp` moving the server, `db down`, a
restart. A 503 while Postgres is down, pages again as soon as it is back; never a 500 or a hang.

Each test runs an embedded Postgres of its own (migrated), so it can stop and move it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest
from conftest import REPO_ROOT
from fastapi.testclient import TestClient
from test_web import BEARER, HTML, TOKEN

from evals import warehouse
from evals.config import load_config
from evals.warehouse.embedded import EmbeddedPostgres
from evals.warehouse.roles import WEB_ROLE
from evals.web.app import create_app
from evals.web.db import WebDatabase


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def own_server(tmp_path, monkeypatch) -> Iterator[EmbeddedPostgres]:
    """An embedded Postgres of this test's own (migrated), so it can be stopped and moved."""
    server = EmbeddedPostgres(tmp_path / "pg")
    server.ensure_running()
    monkeypatch.setenv(warehouse.URL_ENV, server.url())
    try:
        warehouse.migrate()
        yield server
    finally:
        warehouse._engine_for(server.url()).dispose()
        server.stop()


def test_the_web_survives_db_up_tcp_and_a_restart_with_a_503_while_down(own_server):
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    database = WebDatabase(own_server.url(role=WEB_ROLE))
    app = create_app(config, TOKEN, database=database)
    with TestClient(app) as client:
        assert client.get("/alerts", headers=BEARER).status_code == 200
        own_server.ensure_running(tcp_port=_free_port())  # moves the server to a TCP port
        assert client.get("/alerts", headers=BEARER).status_code == 200
        own_server.stop()
        down = client.get("/alerts", headers={**BEARER, **HTML})  # each costs the pool's wait
        assert down.status_code == 503 and "503 · Service Unavailable" in down.text
        assert "warehouse unavailable: Postgres does not answer" in down.text
        own_server.ensure_running()
        for _ in range(5):  # no burst of errors from the pool's stale connections
            assert client.get("/alerts", headers=BEARER).status_code == 200


def test_the_socket_url_stays_the_same_when_tcp_is_turned_on(own_server):
    before = own_server.url()
    own_server.ensure_running(tcp_port=_free_port())
    assert own_server.url() == before
    with psycopg.connect(before, connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
