"""HTTP tests of the JSON API (/api/v1): every route, the auth rules, limits, idempotent
ingestion, stable pages while rows arrive, batches with an exactly-once callback.

One warehouse per module, seeded as tests/test_web.py seeds it (two simulated graders over two
weeks, alerts, reviews) with the marts built once; the app runs in-process as the web role.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import psycopg
import pytest
from conftest import REPO_ROOT, create_database, drop_database, role_url
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from test_web import SECRET, TOKEN, build_marts, seed_warehouse

from evals import api_tokens, warehouse
from evals.batch_requests import BatchWorker
from evals.config import load_config
from evals.model_checks import ModelCheck, store_checks
from evals.warehouse.roles import WEB_ROLE
from evals.web.app import create_app
from evals.web.db import WebDatabase

OPERATOR = {"authorization": f"Bearer {TOKEN}"}
ROUTES = [
    ("GET", "/api/v1/runs"),
    ("GET", f"/api/v1/runs/{uuid.uuid4()}"),
    ("POST", "/api/v1/runs"),
    ("GET", "/api/v1/batches"),
    ("POST", "/api/v1/batches"),
    ("GET", f"/api/v1/batches/{uuid.uuid4()}"),
    ("GET", "/api/v1/compare?a=x&b=y"),
    ("GET", "/api/v1/leaderboard"),
    ("GET", "/api/v1/pairwise/ratings"),
    ("GET", "/api/v1/pairwise/matrix"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/alerts/1"),
    ("POST", "/api/v1/alerts/1/ack"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
]


@pytest.fixture(scope="module")
def seeded(pg_server, tmp_path_factory):
    name = create_database(pg_server)
    url = pg_server.url(name)
    try:
        data = seed_warehouse(url)
        data.web_url = role_url(pg_server, url, WEB_ROLE)
        build_marts(url, tmp_path_factory.mktemp("dbt-target"))
        yield data
    finally:
        warehouse._engine_for(url).dispose()
        drop_database(pg_server, name)


def _app(web_url: str, config=None, worker: BatchWorker | None = None, batch_launcher=None):
    """The app as `evalhouse serve` builds it, connected as the web role (`web_url`)."""
    config = config or load_config(REPO_ROOT / "evalhouse.yaml")
    database = WebDatabase(web_url)
    return create_app(
        config, TOKEN, database=database, batch_worker=worker, batch_launcher=batch_launcher
    )


@pytest.fixture(scope="module")
def client(seeded) -> Iterator[TestClient]:
    with TestClient(_app(seeded.web_url), follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="module")
def api_token(seeded) -> str:
    with psycopg.connect(seeded.url, autocommit=True) as conn:
        return api_tokens.create_token(conn, "ci-bot")[1]


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _record(key: str, **columns) -> dict:
    return {
        "idempotency_key": key,
        "model": "rules-v2",
        "started_at": "2026-03-20T10:00:00+00:00",
        "stage": "loops",
        "output_text": "fine",
        **columns,
    }


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_caller_without_a_token_as_problem_json(client, method, path):
    response = client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_wrong_token(client, method, path):
    headers = _bearer("eh_" + "x" * 43)
    response = client.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert response.status_code == 401
    # the docs and schema also accept the pages' credentials, so they say which they wanted
    docs = path in ("/api/v1/openapi.json", "/api/v1/docs")
    expected = "authentication required" if docs else "invalid or revoked token"
    assert response.json()["detail"] == expected


@pytest.mark.parametrize("name", ["token", "access_token", "api_key"])
def test_a_token_in_the_query_string_is_refused_even_beside_a_valid_header(client, api_token, name):
    response = client.get(f"/api/v1/runs?{name}={api_token}", headers=_bearer(api_token))
    assert response.status_code == 400
    assert response.json()["type"].endswith("/credentials-in-query")


def test_api_routes_accept_no_cookie_session_and_no_basic_auth(client):
    response = client.post("/login", data={"token": TOKEN, "name": "carol", "next": "/"})
    assert response.status_code == 303
    assert client.get("/runs").status_code == 200  # the session works on the pages
    assert client.get("/api/v1/runs").status_code == 401  # but not on the API
    client.cookies.clear()
    assert client.get("/api/v1/runs", auth=("carol", TOKEN)).status_code == 401


def test_an_api_token_works_until_it_is_revoked(client, seeded):
    with psycopg.connect(seeded.url, autocommit=True) as conn:
        stored, token = api_tokens.create_token(conn, "notebook")
        assert conn.execute(
            "select token_hash from raw.api_tokens where token_id = %s", (stored.token_id,)
        ).fetchone()[0] == api_tokens.token_hash(token)
        assert client.get("/api/v1/models", headers=_bearer(token)).status_code == 200
        assert api_tokens.revoke_token(conn, stored.token_id)
    assert client.get("/api/v1/models", headers=_bearer(token)).status_code == 401


def test_the_operator_web_token_is_a_bearer_token_too(client):
    assert client.get("/api/v1/models", headers=OPERATOR).status_code == 200


def test_a_token_over_its_rate_gets_429_with_retry_after(seeded, api_token):
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    config = config.model_copy(
        update={"api": config.api.model_copy(update={"rate_per_minute": 60, "burst": 3})}
    )
    with TestClient(_app(seeded.web_url, config)) as limited:
        answers = [limited.get("/api/v1/models", headers=_bearer(api_token)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers.get("ratelimit-remaining") for a in answers[:3]] == ["2", "1", "0"]
    assert answers[3].headers["retry-after"] == "1"
    assert answers[3].json()["type"].endswith("/rate-limited")


# --- schema and docs --------------------------------------------------------------------------


def test_the_openapi_schema_validates_and_names_every_route(client, api_token):
    from openapi_spec_validator import validate

    schema = client.get("/api/v1/openapi.json", headers=_bearer(api_token)).json()
    validate(schema)
    assert schema["servers"] == [{"url": "/api/v1"}]
    assert set(schema["paths"]) == {
        "/runs",
        "/runs/{run_id}",
        "/batches",
        "/batches/{request_id}",
        "/compare",
        "/leaderboard",
        "/pairwise/ratings",
        "/pairwise/matrix",
        "/alerts",
        "/alerts/{alert_id}",
        "/alerts/{alert_id}/ack",
        "/models",
        "/health",
    }
    assert schema["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["token"]["description"],
    }


def test_the_interactive_docs_load_their_scripts_from_the_server_itself(client, api_token):
    page = client.get("/api/v1/docs", headers=_bearer(api_token))
    assert page.status_code == 200
    assert "https://" not in page.text
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
        assert client.get(f"/api/v1/docs/static/{name}", headers=OPERATOR).status_code == 200
    browser = client.get("/api/v1/docs", headers={"accept": "text/html"})
    assert browser.status_code == 303
    assert browser.headers["location"] == "/login?next=/api/v1/docs"


# --- runs ---------------------------------------------------------------------------------------


def test_run_pages_stay_stable_while_runs_are_inserted(client, seeded, api_token):
    """Every run that existed when paging began is seen exactly once, newest first, although
    runs newer and older than the cursor arrive between pages."""
    headers = _bearer(api_token)
    existing = sorted(
        (r for r in seeded.runs if r.model == "tutor-large"),
        key=lambda r: (r.started_at, str(r.run_id)),
        reverse=True,
    )
    seen: list[str] = []
    cursor, page = None, 0
    while True:
        query = "model=tutor-large&limit=40" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"/api/v1/runs?{query}", headers=headers).json()
        seen += [run["run_id"] for run in body["runs"]]
        page += 1
        arriving = [
            _record(
                f"arrival-{page}-{offset}",
                model="tutor-large",
                started_at=(existing[0].started_at + timedelta(hours=offset)).isoformat(),
            )
            for offset in (-400, 1)  # one behind the cursor (already paged), one newer
        ]
        assert (
            client.post("/api/v1/runs", json={"runs": arriving}, headers=headers).status_code == 201
        )
        cursor = body["next_cursor"]
        if cursor is None:
            break
    original = [str(r.run_id) for r in existing]
    assert [run_id for run_id in seen if run_id in set(original)] == original
    assert len(seen) == len(set(seen))


def test_one_run_is_returned_whole_and_scrubbed(client, seeded, api_token):
    run = client.get(f"/api/v1/runs/{seeded.target.run_id}", headers=_bearer(api_token)).json()
    assert run["run_id"] == str(seeded.target.run_id)
    assert run["item_id"] == seeded.target.item_id
    assert SECRET not in json.dumps(run)
    missing = client.get(f"/api/v1/runs/{uuid.uuid4()}", headers=_bearer(api_token))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_repeated_key_returns_the_stored_id_and_writes_nothing(client, seeded, api_token):
    headers = _bearer(api_token)
    first = client.post("/api/v1/runs", json={"runs": [_record("repeat-1")]}, headers=headers)
    assert first.status_code == 201
    stored = first.json()["runs"][0]
    assert stored["created"] is True
    again = client.post(
        "/api/v1/runs",
        json={"runs": [_record("repeat-1", started_at="2026-03-21T00:00:00Z")]},
        headers=headers,
    )
    assert again.status_code == 200
    assert again.json() == {
        "created": 0,
        "existing": 1,
        "runs": [{"run_id": stored["run_id"], "idempotency_key": "repeat-1", "created": False}],
    }
    with psycopg.connect(seeded.url) as conn:
        count = conn.execute(
            "select count(*) from raw.eval_runs where idempotency_key = 'repeat-1'"
        ).fetchone()[0]
    assert count == 1


def test_ingested_records_are_redacted_and_default_to_production_graders(client, seeded, api_token):
    leaky = _record(
        "leaky-1",
        output_text=f"the key is {SECRET}",
        params={"temperature": 0, "api_key": SECRET},
        error_message=None,
    )
    response = client.post("/api/v1/runs", json={"runs": [leaky]}, headers=_bearer(api_token))
    run_id = response.json()["runs"][0]["run_id"]
    with psycopg.connect(seeded.url, row_factory=dict_row) as conn:
        row = conn.execute("select * from raw.eval_runs where run_id = %s", (run_id,)).fetchone()
    assert row["output_text"] == "the key is [REDACTED]"
    assert row["params"] == {"temperature": 0}
    assert (row["source"], row["role"], row["status"]) == ("production", "grader", "ok")


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"status": "weird"}, "runs[1].status"),
        ({"started_at": "2026-03-20T10:00:00"}, "runs[1].started_at"),
        ({"no_such_column": 1}, "runs[1].no_such_column"),
        ({"idempotency_key": ""}, "runs[1].idempotency_key"),
    ],
)
def test_a_bad_record_gets_422_naming_its_field(client, api_token, record, field):
    runs = [_record("good-1"), {**_record("bad-1"), **record}]
    response = client.post("/api/v1/runs", json={"runs": runs}, headers=_bearer(api_token))
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == field
    assert problem["detail"].startswith(f"{field}: ")


def test_too_many_records_or_too_large_a_body_gets_413(client, api_token):
    headers = _bearer(api_token)
    many = [_record(f"many-{n}") for n in range(1001)]
    assert client.post("/api/v1/runs", json={"runs": many}, headers=headers).status_code == 413
    huge = json.dumps({"runs": [_record("huge", output_text="x" * 8_100_000)]})
    response = client.post(
        "/api/v1/runs", content=huge, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/too-large")


# --- alerts, models, health, leaderboard, compare ------------------------------------------------


def test_alerts_list_page_and_acknowledge_as_the_token_name(client, seeded, api_token):
    headers = _bearer(api_token)
    first = client.get("/api/v1/alerts?show=all&limit=1", headers=headers).json()
    assert [a["alert_id"] for a in first["alerts"]] == [seeded.other_alert_id]
    second = client.get(
        f"/api/v1/alerts?show=all&limit=1&cursor={first['next_cursor']}", headers=headers
    ).json()
    assert [a["alert_id"] for a in second["alerts"]] == [seeded.alert_id]
    assert second["next_cursor"] is None
    acked = client.post(f"/api/v1/alerts/{seeded.other_alert_id}/ack", headers=headers).json()
    assert acked["acknowledged_by"] == "ci-bot"
    again = client.post(f"/api/v1/alerts/{seeded.other_alert_id}/ack", headers=OPERATOR).json()
    assert again["acknowledged_by"] == "ci-bot"  # the first acknowledgement is kept
    open_ids = [
        a["alert_id"] for a in client.get("/api/v1/alerts", headers=headers).json()["alerts"]
    ]
    assert seeded.other_alert_id not in open_ids
    assert client.post("/api/v1/alerts/999999/ack", headers=headers).status_code == 404


def test_models_show_the_configuration_and_the_last_check_never_a_key(
    client, seeded, api_token, monkeypatch
):
    with psycopg.connect(seeded.url) as conn:
        store_checks(
            conn, [ModelCheck("judge", "evalhouse-sim/judge", False, None, 12.0, "auth", "bad key")]
        )
        store_checks(
            conn, [ModelCheck("judge", "evalhouse-sim/judge", True, "judge-v1", 8.5, None, None)]
        )
    body = client.get("/api/v1/models", headers=_bearer(api_token)).json()
    by_name = {model["name"]: model for model in body["models"]}
    assert sorted(by_name) == [
        "judge",
        "longer-judge",
        "pairwise-judge",
        "tutor-large",
        "tutor-small",
    ]
    assert by_name["judge"]["last_check"]["ok"] is True
    assert by_name["judge"]["last_check"]["response_model"] == "judge-v1"
    assert by_name["tutor-small"]["last_check"] is None
    assert by_name["tutor-small"]["is_default"] is True
    assert by_name["tutor-small"]["api_key_set"] is False


def test_health_reports_the_warehouse_the_migration_head_and_the_marts_age(client, api_token):
    body = client.get("/api/v1/health", headers=_bearer(api_token)).json()
    assert body["status"] == "ok"
    assert body["warehouse"] == {"reachable": True}
    assert body["migrations"]["at_head"] is True
    assert body["migrations"]["current"] == warehouse.head_revision()
    assert body["marts"]["built"] is True
    assert body["marts"]["age_s"] > 0


def test_the_leaderboard_is_the_marts_all_category_rows(client, seeded, api_token):
    rows = client.get("/api/v1/leaderboard?role=grader", headers=_bearer(api_token)).json()["rows"]
    with psycopg.connect(seeded.url) as conn:
        expected = conn.execute(
            "select model, n_judged, n_correct from marts.fct_leaderboard"
            " where category = '(all)' and role = 'grader' order by accuracy_rank, model"
        ).fetchall()
    assert [(r["model"], r["n_judged"], r["n_correct"]) for r in rows] == [
        tuple(row) for row in expected
    ]
    assert all(r["accuracy_ci_low"] <= r["accuracy"] <= r["accuracy_ci_high"] for r in rows)


def test_compare_pairs_two_models_and_matches_statsmodels_mcnemar(client, seeded, api_token):
    from statsmodels.stats.contingency_tables import mcnemar

    batch = "seed-2026-03-14"
    body = client.get(
        f"/api/v1/compare?a={batch}&a_model=tutor-small&b={batch}&b_model=tutor-large",
        headers=_bearer(api_token),
    ).json()
    # Independently: a golden grader call is right when its verdict is the expected one.
    right: dict[str, dict] = {"tutor-small": {}, "tutor-large": {}}
    for run in seeded.runs:
        graded = run.batch_id == batch and run.source == "golden" and run.role == "grader"
        if graded and run.status in ("ok", "parse_error"):
            right[run.model][run.item_id] = (
                run.status == "ok" and run.verdict == run.expected_verdict
            )
    items = sorted(right["tutor-small"].keys() & right["tutor-large"].keys())
    cells = Counter((right["tutor-small"][i], right["tutor-large"][i]) for i in items)
    table = [[cells[True, True], cells[True, False]], [cells[False, True], cells[False, False]]]
    assert body["paired"] == len(items)
    assert (body["a_only"], body["b_only"]) == (table[0][1], table[1][0])
    assert body["mcnemar_p"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert body["delta_ci"]["low"] <= body["delta"] <= body["delta_ci"]["high"]
    assert body["flipped_total"] == table[0][1] + table[1][0]


# --- batches ------------------------------------------------------------------------------------


class _Callbacks(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append(
            {
                "json": json.loads(body),
                "key": self.headers.get("idempotency-key"),
                "path": self.path,
            }
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _receiver(port: int = 0) -> HTTPServer:
    """A webhook / callback receiver on loopback, serving until shut down."""
    server = HTTPServer(("127.0.0.1", port), _Callbacks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _with_webhook(config, server: HTTPServer):
    """`config` with one alert webhook, posting to `server` at /slack."""
    from evals.config import AlertsConfig, WebhookConfig

    url = f"http://127.0.0.1:{server.server_port}/slack"
    return config.model_copy(
        update={"alerts": AlertsConfig(webhooks=[WebhookConfig(name="ops", url=url)])}
    )


def _announcements(request_id: str) -> list[dict]:
    """What the webhook received about one request (the seeded alerts arrive there too)."""
    return [
        r for r in _Callbacks.received if r["path"] == "/slack" and request_id in r["json"]["text"]
    ]


def _wait(predicate, timeout_s: float = 90.0):
    deadline = time.monotonic() + timeout_s
    while not (found := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def _request_row(url: str, request_id: str) -> dict:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "select * from raw.batch_requests where request_id = %s", (request_id,)
        ).fetchone()


def test_unknown_suite_or_model_in_a_batch_is_a_422_naming_the_field(client, api_token):
    response = client.post(
        "/api/v1/batches",
        json={"suite": "nope", "model": "tutor-small"},
        headers=_bearer(api_token),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "suite"
    response = client.post(
        "/api/v1/batches",
        json={"suite": "intro-python", "model": "tutor-small", "trials": 0},
        headers=_bearer(api_token),
    )
    assert response.json()["errors"][0]["field"] == "trials"


def test_a_batch_runs_in_the_background_and_its_callback_arrives_once(
    seeded, api_token, monkeypatch, tmp_path
):
    """The callback server is down for the first attempts; it still gets the result exactly once,
    the alert webhook hears it once, and the batch's figures (the marts', once dbt has built
    them) match its run-log rows."""
    monkeypatch.setenv(warehouse.URL_ENV, seeded.url)
    _Callbacks.received = []
    webhook = _receiver()
    config = _with_webhook(load_config(REPO_ROOT / "evalhouse.yaml"), webhook)
    worker = BatchWorker(
        config,
        lambda: psycopg.connect(seeded.url, autocommit=True),
        poll_s=0.1,
        callback_backoff_base_s=0.1,
    )
    port = _free_port()
    server = None
    with TestClient(_app(seeded.web_url, config, worker)) as client:
        started = client.post(
            "/api/v1/batches",
            json={
                "suite": "intro-python",
                "model": "tutor-small",
                "limit": 12,
                "trials": 2,
                "callback_url": f"http://127.0.0.1:{port}/hook",
            },
            headers=_bearer(api_token),
        )
        assert started.status_code == 202
        assert started.json()["runner"] == "server"
        request_id = started.json()["request_id"]
        _wait(lambda: (_request_row(seeded.url, request_id)["callback_attempts"] or 0) >= 2)
        server = _receiver(port)  # the receiver comes up
        _wait(lambda: _request_row(seeded.url, request_id)["callback_delivered_at"])
        _wait(lambda: _announcements(request_id))
        time.sleep(0.5)  # more worker ticks: none may deliver it again
        unbuilt = client.get(f"/api/v1/batches/{request_id}", headers=_bearer(api_token)).json()
        build_marts(seeded.url, tmp_path, select="+fct_eval_batches +fct_eval_batch_breakdown")
        detail = client.get(f"/api/v1/batches/{request_id}", headers=_bearer(api_token)).json()
        listed = client.get("/api/v1/batches?status=completed", headers=_bearer(api_token)).json()
    server.shutdown()
    webhook.shutdown()
    assert unbuilt["status"] == "completed" and unbuilt["figures"] is None
    callbacks = [r for r in _Callbacks.received if r["path"] == "/hook"]
    assert len(callbacks) == 1
    callback = callbacks[0]
    (announced,) = _announcements(request_id)
    assert announced["json"]["text"].startswith(
        f"[INFO] batch_completed: tutor-small on intro-python (api:{request_id})"
    )
    assert callback["key"] == f"evalhouse-batch-{request_id}"
    assert callback["json"]["status"] == "completed"
    assert detail["status"] == "completed" and detail["stale"] is False
    (in_list,) = [b for b in listed["batches"] if b["request_id"] == request_id]
    with psycopg.connect(seeded.url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "select status, verdict, expected_verdict from raw.eval_runs where batch_id = %s",
            (f"api:{request_id}",),
        ).fetchall()
    settled = [r for r in rows if r["status"] in ("ok", "parse_error")]
    assert len(settled) == 24
    figures = detail["figures"]
    assert figures["batch_id"] == detail["summary"]["batch_id"]
    assert figures["links"]["page"] == f"/batches/{figures['batch_id']}"
    assert (figures["calls"], figures["settled"], figures["n_graded"]) == (len(rows), 24, 24)
    correct = sum(r["status"] == "ok" and r["verdict"] == r["expected_verdict"] for r in settled)
    assert figures["n_correct"] == correct
    assert figures["accuracy"] == pytest.approx(correct / 24)
    assert callback["json"]["summary"]["accuracy"] == pytest.approx(correct / 24)
    assert detail["summary"]["accuracy"] == pytest.approx(correct / 24)
    by_stage = [b for b in figures["breakdown"] if b["dimension"] == "stage"]
    assert sum(b["n_graded"] for b in by_stage) == 24
    assert sum(b["n_correct"] for b in by_stage) == correct
    assert in_list["figures"] == {k: v for k, v in figures.items() if k != "breakdown"}
    with psycopg.connect(seeded.url, row_factory=dict_row) as conn:
        record = conn.execute(  # the evaluation-run record the summary links (/batches/{id})
            "select status, started_by, calls from raw.eval_batches where batch_id = %s",
            (detail["summary"]["batch_id"],),
        ).fetchone()
    assert record == {"status": "completed", "started_by": f"api:{request_id}", "calls": len(rows)}


def test_a_batch_handed_to_dagster_runs_as_the_api_batch_job_and_is_announced_once(
    seeded, monkeypatch
):
    """The Dagster path: the `api_batch` job on a real instance runs the request, calls back
    once, and its alert (naming the run) reaches the webhook once; running the job again for the
    same request does nothing."""
    import dagster as dg

    from evals import batch_launch, batch_requests
    from evals.alerts import deliver_pending
    from orchestration.defs.batches.jobs import api_batch_job
    from orchestration.lib.resources import Evalhouse

    monkeypatch.setenv(warehouse.URL_ENV, seeded.url)
    _Callbacks.received = []
    receiver = _receiver()
    config = _with_webhook(load_config(REPO_ROOT / "evalhouse.yaml"), receiver)
    spec = batch_requests.BatchSpec(
        "intro-python",
        "tutor-large",
        limit=6,
        callback_url=f"http://127.0.0.1:{receiver.server_port}/hook",
    )
    with psycopg.connect(seeded.url, autocommit=True) as conn:
        request_id = batch_requests.submit(conn, spec, "ci-bot")
    run_config = {"ops": {batch_launch.OP: {"config": {"request_id": str(request_id)}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        runs = [
            api_batch_job.execute_in_process(
                run_config=run_config,
                instance=instance,
                resources={"evalhouse": Evalhouse(config)},
            )
            for _ in range(2)
        ]
    with psycopg.connect(seeded.url, autocommit=True) as conn:
        for _ in range(2):
            deliver_pending(conn, config.alerts)
        alert = conn.execute(
            "select kind, severity, orchestrator_run_id from raw.alerts where subject = %s",
            (f"tutor-large on intro-python (api:{request_id})",),
        ).fetchone()
        settled = conn.execute(
            "select count(*), count(distinct idempotency_key) from raw.eval_runs"
            " where batch_id = %s and status in ('ok', 'parse_error')",
            (f"api:{request_id}",),
        ).fetchone()
    receiver.shutdown()
    row = _request_row(seeded.url, str(request_id))
    assert [run.success for run in runs] == [True, True]
    assert row["status"] == "completed" and row["callback_attempts"] == 1
    assert row["dagster_run_id"] == runs[0].run_id  # its op names the run that claimed it
    assert settled == (6, 6)  # the second run found nothing queued and called nothing
    assert alert == ("batch_completed", "info", runs[0].run_id)
    callbacks = [r for r in _Callbacks.received if r["path"] == "/hook"]
    assert [c["json"]["request_id"] for c in callbacks] == [str(request_id)]
    assert len(_announcements(str(request_id))) == 1


def test_where_no_dagster_webserver_answers_auto_falls_back_to_the_server_and_dagster_refuses():
    from evals.batch_launch import LaunchError, dagster_launcher

    nowhere = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    assert dagster_launcher(nowhere, "auto") is None
    assert dagster_launcher(nowhere, "server") is None
    with pytest.raises(LaunchError, match="no Dagster webserver serving job 'api_batch'"):
        dagster_launcher(nowhere, "dagster")


@pytest.fixture
def dagster_webserver(tmp_path) -> Iterator[TestClient]:
    """A real Dagster webserver (GraphQL) over a code location with the `api_batch` job, whose
    instance runs a launched run at once, in this process."""
    import dagster as dg
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster_webserver.app import create_app_from_workspace_process_context

    from evals.batch_launch import LOCATION

    instance = dg.DagsterInstance.local_temp(
        str(tmp_path),
        overrides={
            "run_coordinator": {
                "module": "dagster._core.run_coordinator",
                "class": "DefaultRunCoordinator",
            },
            "run_launcher": {
                "module": "dagster._core.launcher.sync_in_memory_run_launcher",
                "class": "SyncInMemoryRunLauncher",
            },
            "telemetry": {"enabled": False},
        },
    )
    origin = LoadableTargetOrigin(
        module_name="tests.dagster_batches_location",
        attribute="defs",
        working_directory=str(REPO_ROOT),
    )
    target = InProcessWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(origin, location_name=LOCATION)
    )
    with (
        instance,
        WorkspaceProcessContext(instance, target) as context,
        TestClient(create_app_from_workspace_process_context(context)) as client,
    ):
        client.instance = instance
        yield client


@pytest.mark.slow
def test_a_batch_is_launched_as_a_dagster_run_through_the_webserver(
    seeded, api_token, monkeypatch, dagster_webserver
):
    from evals.batch_launch import DagsterLauncher, dagster_launcher

    monkeypatch.setenv(warehouse.URL_ENV, seeded.url)
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    url = str(dagster_webserver.base_url)
    launcher = dagster_launcher(url, "auto", dagster_webserver)
    assert launcher == DagsterLauncher(url, dagster_webserver)
    assert dagster_launcher(url, "server", dagster_webserver) is None
    with TestClient(_app(seeded.web_url, config, batch_launcher=launcher)) as client:
        started = client.post(
            "/api/v1/batches",
            json={"suite": "intro-python", "model": "tutor-small", "limit": 3},
            headers=_bearer(api_token),
        ).json()
        detail = client.get(
            f"/api/v1/batches/{started['request_id']}", headers=_bearer(api_token)
        ).json()
        client.post("/login", data={"token": TOKEN, "name": "carol", "next": "/batches"})
        page = client.get("/batches").text
    run_id = started["links"]["dagster_run"].rsplit("/", 1)[1]
    run = dagster_webserver.instance.get_run_by_id(run_id)
    assert started["runner"] == "dagster"
    assert run.tags["evalhouse/batch_request"] == started["request_id"]
    assert run.is_success
    row = _request_row(seeded.url, started["request_id"])
    assert (row["status"], row["dagster_run_id"]) == ("completed", run_id)
    assert detail["dagster_run_id"] == run_id
    assert detail["dagster_run_url"] == f"{config.alerts.dagster_url}/runs/{run_id}"
    assert f'href="{config.alerts.dagster_url}/runs/{run_id}"' in page


def test_a_batch_dagster_cannot_launch_is_run_by_the_server_which_claims_nothing_else(
    seeded, api_token, monkeypatch
):
    from evals import batch_requests
    from evals.batch_launch import DagsterLauncher

    monkeypatch.setenv(warehouse.URL_ENV, seeded.url)
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    with psycopg.connect(seeded.url, autocommit=True) as conn:  # Dagster's to run, not ours
        left = batch_requests.submit(
            conn, batch_requests.BatchSpec("intro-python", "tutor-small", limit=1), "ci-bot"
        )
    worker = BatchWorker(
        config, lambda: psycopg.connect(seeded.url, autocommit=True), poll_s=0.1, claim_queued=False
    )
    down = DagsterLauncher(f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    app = create_app(
        config,
        TOKEN,
        database=WebDatabase(seeded.web_url),
        batch_worker=worker,
        batch_launcher=down,
    )
    with TestClient(app) as client:
        started = client.post(
            "/api/v1/batches",
            json={"suite": "intro-python", "model": "tutor-small", "limit": 2},
            headers=_bearer(api_token),
        ).json()
        request_id = started["request_id"]
        _wait(lambda: _request_row(seeded.url, request_id)["status"] == "completed")
    assert (started["runner"], set(started["links"])) == ("server", {"self"})
    assert _request_row(seeded.url, str(left))["status"] == "queued"


def test_a_batch_whose_worker_died_is_stale_and_is_completed_by_the_next_worker(
    seeded, api_token, monkeypatch
):
    monkeypatch.setenv(warehouse.URL_ENV, seeded.url)
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    with TestClient(_app(seeded.web_url, config)) as client:
        request_id = client.post(
            "/api/v1/batches",
            json={"suite": "intro-python", "model": "tutor-large", "limit": 5},
            headers=_bearer(api_token),
        ).json()["request_id"]
        with psycopg.connect(seeded.url, autocommit=True) as conn:  # a worker killed mid-run
            conn.execute(
                "update raw.batch_requests set status = 'running', started_at = %s,"
                " heartbeat_at = %s where request_id = %s",
                (datetime.now(UTC) - timedelta(minutes=5),) * 2 + (request_id,),
            )
        stale = client.get(f"/api/v1/batches/{request_id}", headers=_bearer(api_token)).json()
    assert (stale["status"], stale["stale"], stale["figures"]) == ("running", True, None)
    worker = BatchWorker(config, lambda: psycopg.connect(seeded.url, autocommit=True))
    worker.step()
    row = _request_row(seeded.url, request_id)
    assert row["status"] == "completed"
    with psycopg.connect(seeded.url) as conn:
        keys = conn.execute(
            "select count(*), count(distinct idempotency_key) from raw.eval_runs"
            " where batch_id = %s and status in ('ok', 'parse_error')",
            (f"api:{request_id}",),
        ).fetchone()
    assert keys == (5, 5)


def _walk(client, path: str, key: str, token: str, between) -> list:
    """Every item of a list endpoint, page by page, calling `between(page)` after each page."""
    seen, cursor, page = [], None, 0
    while True:
        sep = "&" if "?" in path else "?"
        body = client.get(
            path + (f"{sep}cursor={cursor}" if cursor else ""), headers=_bearer(token)
        ).json()
        seen += body[key]
        page += 1
        between(page)
        if (cursor := body["next_cursor"]) is None:
            return seen


def test_alert_and_batch_pages_stay_stable_while_rows_are_inserted(client, seeded, api_token):
    def new_alert(page: int) -> None:
        with psycopg.connect(seeded.url, autocommit=True) as conn:
            conn.execute(
                "insert into raw.alerts (dedupe_key, kind, severity, subject, message)"
                " values (%s, 'cost_spike', 'info', %s, 'arrived while paging')",
                (f"paging-{page}", f"paging {page}"),
            )

    with psycopg.connect(seeded.url) as conn:
        before = [r[0] for r in conn.execute("select alert_id from raw.alerts order by 1 desc")]
    alerts = _walk(client, "/api/v1/alerts?show=all&limit=1", "alerts", api_token, new_alert)
    assert [a["alert_id"] for a in alerts] == before

    def start(page: int) -> None:
        response = client.post(
            "/api/v1/batches",
            json={"suite": "intro-python", "model": "tutor-small", "limit": 1},
            headers=_bearer(api_token),
        )
        assert response.status_code == 202

    for _ in range(3):
        start(0)
    with psycopg.connect(seeded.url) as conn:
        before = [
            str(r[0])
            for r in conn.execute(
                "select request_id from raw.batch_requests order by created_at desc, request_id desc"
            )
        ]
    batches = _walk(client, "/api/v1/batches?limit=2", "batches", api_token, start)
    assert [b["request_id"] for b in batches] == before


def test_health_is_degraded_on_a_warehouse_without_marts(pg_server, warehouse_url):
    with TestClient(_app(role_url(pg_server, warehouse_url, WEB_ROLE))) as bare:
        body = bare.get("/api/v1/health", headers=OPERATOR).json()
    assert body["status"] == "degraded"
    assert body["marts"] == {"built": False, "runs_loaded_through": None, "age_s": None}
    assert body["migrations"]["at_head"] is True


def test_a_batch_with_a_baseline_carries_the_release_gate_decision(seeded, monkeypatch):
    from evals.batch_requests import run_request

    monkeypatch.setenv(warehouse.URL_ENV, seeded.url)
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    request = {
        "suite": "intro-python",
        "model": "tutor-large",
        "judge": None,
        "item_limit": 5,
        "trials": 1,
        "batch_key": "api:gate-test",
        "baseline": "tutor-small",
    }
    summary, error = run_request(config, request)
    assert error is None
    with psycopg.connect(seeded.url) as conn:
        stored = conn.execute(
            "select decision, baseline, candidate from raw.gate_decisions where decision_id = %s",
            (summary["gate"]["decision_id"],),
        ).fetchone()
    assert stored == (summary["gate"]["decision"], "tutor-small", "tutor-large")
    assert (
        summary["gate"]["exit_code"]
        == {"deploy": 0, "no-deploy": 1, "insufficient-data": 3}[stored[0]]
    )


def test_ingest_takes_production_rows_only(client, api_token):
    """Golden, CI, sample and rejudge rows feed accuracy, the gate and agreement: an app may not
    send them (and the web role's row policy would refuse them in the database)."""
    forged = _record("ingest-forged-golden", source="golden")
    response = client.post("/api/v1/runs", json={"runs": [forged]}, headers=_bearer(api_token))
    assert response.status_code == 422
    assert "runs[0].source" in response.text
