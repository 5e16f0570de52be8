"""The web app under bad input and a warehouse that goes away: a 4xx that says why, a 503 while
Postgres is down, never a 500 or a traceback.

One warehouse for the module: test_web's realistic seed plus the absurd rows a careless import
leaves (a call dated 9999-12-31, an imported verdict that matched nothing), marts built once.
The warehouse-outage tests run their own embedded Postgres, so they can stop and move it.
"""

from __future__ import annotations

import csv
import io
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from conftest import REPO_ROOT, create_database, drop_database
from fastapi.testclient import TestClient
from test_web import BEARER, HTML, TOKEN, build_marts, seed_warehouse

from evals import warehouse
from evals.config import load_config
from evals.runlog import RunRecord, write_runs
from evals.warehouse.embedded import EmbeddedPostgres
from evals.web.app import create_app
from evals.web.db import WebDatabase, web_conninfo
from evals.web.security import SESSION_COOKIE, Guard

ABSURD_DAY = datetime(9999, 12, 31, 12, tzinfo=UTC)
RAW_VERDICT = "<b>mostly</b> fine-ish"


def _absurd_rows() -> list[RunRecord]:
    """A production call dated 9999-12-31, and an imported grade whose verdict matched nothing."""
    far_future = RunRecord(
        idempotency_key="robust-far-future",
        source="production",
        role="grader",
        model="tutor-small",
        started_at=ABSURD_DAY,
        status="ok",
        suite="intro-python",
        stage="loops",
        verdict="pass",
        passed=True,
    )
    unparsed = RunRecord(
        idempotency_key="robust-unparsed",
        source="import",
        role="grader",
        model="tutor-small",
        started_at=datetime(2026, 3, 10, 9, tzinfo=UTC),
        status="parse_error",
        suite="intro-python",
        output_text="Good loop, but the bounds are off by one.",
        attributes={"raw_verdict": RAW_VERDICT},
    )
    return [far_future, unparsed]


@pytest.fixture(scope="module")
def robust(pg_server, tmp_path_factory) -> Iterator[dict]:
    name = create_database(pg_server)
    url = pg_server.url(name)
    try:
        seed_warehouse(url)
        far_future, unparsed = _absurd_rows()
        with psycopg.connect(url, autocommit=True) as conn:
            write_runs(conn, [far_future, unparsed])
        build_marts(url, tmp_path_factory.mktemp("dbt-target"))
        yield {"url": url, "unparsed": unparsed.run_id}
    finally:
        warehouse._engine_for(url).dispose()
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def app_client(robust) -> Iterator[TestClient]:
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    app = create_app(config, TOKEN, database=WebDatabase(web_conninfo(config, robust["url"])))
    with TestClient(app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def client(app_client) -> TestClient:
    app_client.cookies.clear()
    return app_client


# --- bad input: a 4xx that says why -------------------------------------------------------------


def test_a_non_ascii_session_signature_is_refused_not_a_server_error(client):
    body, _, _ = Guard(TOKEN).session_cookie("mallory").partition(".")
    cookie = {"cookie": f"{SESSION_COOKIE}={body}.sïgnature".encode()}  # as a browser sends it
    assert client.get("/runs", headers=cookie).status_code == 401
    assert client.get("/runs", headers={**cookie, **HTML}).status_code == 303  # to the login


def test_non_ascii_basic_credentials_are_refused_not_a_server_error(client):
    assert client.get("/runs", headers={"authorization": "Basic dïgïts".encode()}).status_code == 401


def test_a_non_ascii_csrf_token_is_forbidden_not_a_server_error(client):
    client.post("/login", data={"token": TOKEN, "name": "carol", "next": "/"})
    response = client.post("/logout", data={"csrf": "tökén"})
    assert response.status_code == 403 and response.text == "CSRF token missing or invalid"


@pytest.mark.parametrize("path", ["/runs", "/runs.csv", "/runs.json", "/", "/alerts"])
def test_a_nul_in_a_filter_is_a_400_that_names_the_problem(client, path):
    response = client.get(f"{path}?suite=%00&stage=a%00b", headers=BEARER)
    assert response.status_code == 400
    assert response.text == "NUL characters are not allowed in a request (parameter suite)"


def test_a_nul_in_a_review_note_is_a_400_not_a_server_error(client, robust):
    response = client.post(
        f"/runs/{robust['unparsed']}/reviews",
        data={"verdict": "pass", "notes": "fine\x00"},
        headers=BEARER,
    )
    assert response.status_code == 400
    assert "NUL" in response.text and "Traceback" not in response.text


def test_the_last_representable_day_is_a_valid_date_filter(client):
    runs = client.get("/runs?date_from=2026-03-14&date_to=9999-12-31&limit=500", headers=BEARER)
    assert runs.status_code == 200
    assert runs.text.count('<a class="mono" href="/runs/') == 49  # 48 seeded + the absurd row
    overview = client.get("/?date_from=0001-01-01&date_to=9999-12-31", headers=BEARER)
    assert overview.status_code == 200 and "0001-01-01" in overview.text


def test_a_window_that_ends_before_it_starts_is_a_400(client):
    response = client.get("/?date_from=2026-03-10&date_to=2026-03-01", headers=BEARER)
    assert response.status_code == 400 and response.text == "date_from is after date_to"


def test_an_export_that_cannot_run_answers_an_error_not_an_empty_200(client, monkeypatch):
    def broken(*args, **kwargs):
        raise psycopg.errors.DataError("invalid input syntax")

    monkeypatch.setattr("evals.web.runs.export_query", broken)
    response = client.get("/runs.csv?stage=loops", headers=BEARER)
    assert response.status_code == 400 and "invalid input syntax" in response.text


def test_an_export_with_filters_streams_every_matching_row(client):
    rows = list(csv.DictReader(io.StringIO(client.get("/runs.csv?stage=loops&source=production",
                                                      headers=BEARER).text)))
    assert rows and {row["stage"] for row in rows} == {"loops"}


# --- absurd rows --------------------------------------------------------------------------------


def test_one_call_dated_9999_does_not_move_the_default_window(client):
    page = client.get("/", headers=BEARER).text
    assert "9999" not in page.split("Every figure covers")[0]
    assert "2026-03-14" in page  # the window ends at the newest plausible day
    assert "1 call dated after today is outside the default window" in page


def test_a_parse_error_run_shows_its_raw_verdict_escaped(client, robust):
    page = client.get(f"/runs/{robust['unparsed']}", headers=BEARER).text
    assert "Raw verdict" in page
    assert "&lt;b&gt;mostly&lt;/b&gt; fine-ish" in page and RAW_VERDICT not in page


# --- a warehouse that goes away -----------------------------------------------------------------


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
    database = WebDatabase(web_conninfo(config, own_server.url()))
    app = create_app(config, TOKEN, database=database)
    with TestClient(app) as client:
        assert client.get("/alerts", headers=BEARER).status_code == 200
        own_server.ensure_running(tcp_port=_free_port())  # moves the server to a TCP port
        assert client.get("/alerts", headers=BEARER).status_code == 200
        own_server.stop()
        down = client.get("/alerts", headers={**BEARER, **HTML})
        assert down.status_code == 503 and "Warehouse unavailable" in down.text
        assert "Traceback" not in down.text
        assert client.get("/alerts", headers=BEARER).text == "warehouse unavailable"
        own_server.ensure_running()
        for _ in range(5):  # no burst of errors from the pool's stale connections
            assert client.get("/alerts", headers=BEARER).status_code == 200


def test_the_socket_url_stays_the_same_when_tcp_is_turned_on(own_server):
    before = own_server.url()
    own_server.ensure_running(tcp_port=_free_port())
    assert own_server.url() == before
    with psycopg.connect(before, connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)

