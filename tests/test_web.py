"""HTTP tests of `evalhouse serve`: every route, the auth and CSRF rules, least privilege, scrubbing.

One warehouse per module: a realistic run log (the shipped intro-python suite graded by two
simulated models over two weeks, two prompt versions, judges, errors, human reviews, alerts, and
the absurd rows a careless import leaves) written through evals.runlog, and the marts built once
by dbt. The app runs in-process (Starlette's TestClient) as the least-privilege role
`evalhouse_web`.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import html
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
import pytest
import web_fuzz
from conftest import REPO_ROOT, create_database, drop_database, role_url
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from evals import reviews, warehouse
from evals.config import load_config
from evals.golden import load_suite, store_suite
from evals.prompts import PromptTemplate, ensure_prompt_version, load_prompt, prompt_version
from evals.runlog import RunRecord, idempotency_key, write_runs
from evals.warehouse.roles import WEB_ROLE
from evals.web import sessions
from evals.web.app import create_app
from evals.web.db import WebDatabase
from evals.web.run_queries import LIST_COLUMNS, RunFilters
from evals.web.security import SESSION_COOKIE, CsrfError, Guard

TOKEN = "test-web-token-5f0c2a9e71d4"
SECRET = "sk-proj-ZZtopSecretKey1234567890abcdef"
LAST_DAY = date(2026, 3, 14)
DAYS = 14
MODELS = ("tutor-small", "tutor-large")
BEARER = {"authorization": f"Bearer {TOKEN}"}
HTML = {"accept": "text/html"}
RAW_VERDICT = "<b>mostly</b> fine-ish"


@dataclass
class Seeded:
    """What the seed wrote, so tests can compare pages with an independent count."""

    url: str
    web_url: str = ""  # the same database as the app's role, with its password
    runs: list[RunRecord] = field(default_factory=list)
    target: RunRecord | None = None  # a golden grader run with a judge child, reviews, an alert
    alert_id: int = 0
    other_alert_id: int = 0
    versions: tuple[str, str] = ("", "")
    unparsed: RunRecord | None = None  # an imported grade whose verdict matched nothing


def _grader_vars(suite, item) -> dict:
    return {
        "rubric": item.rubric,
        "submission": item.submission,
        "prior_context": item.prior_context,
        "stage": item.stage,
        "verdicts": list(suite.verdicts),
        "passing_verdicts": list(suite.passing_verdicts),
        "issue_tags": list(suite.issue_tags),
    }


def seed_warehouse(url: str) -> Seeded:
    """Write the module's run log, reviews and alerts into the (migrated) database at `url`."""
    rng = random.Random(7)
    suite = load_suite(REPO_ROOT / "golden_sets" / "intro_python_grader.yaml")
    v1 = load_prompt("rubric_grader")
    v2 = PromptTemplate.from_text(
        "rubric_grader",
        v1.text.replace(
            "be specific and kind, never vague", "be specific, kind and brief; never vague"
        ),
    )
    seeded = Seeded(url=url, versions=(v1.version, v2.version))
    seeded.runs = _graded_runs(rng, suite, v1, v2)
    seeded.target = target = _leaky_target(seeded.runs)
    seeded.runs.append(_judge_of(target))
    with psycopg.connect(url, autocommit=True) as conn:
        store_suite(conn, suite)
        for template in (v1, v2):
            ensure_prompt_version(conn, template.name, template.version, template.text)
        write_runs(conn, seeded.runs)
        _insert_reviews(conn, seeded.runs, target)
        seeded.alert_id, seeded.other_alert_id = _insert_alerts(conn, target)
    return seeded


def _graded_runs(
    rng: random.Random, suite, v1: PromptTemplate, v2: PromptTemplate
) -> list[RunRecord]:
    """Both models grade 24 items a day; the prompt moves from v1 to v2 halfway through."""
    runs = []
    items = list(suite.items)
    for offset in range(DAYS):
        day = LAST_DAY - timedelta(days=DAYS - 1 - offset)
        template = v1 if offset < DAYS // 2 else v2
        for number, item in enumerate(rng.sample(items, 24)):
            for model in MODELS:
                runs.append(_graded_run(rng, suite, item, model, day, number, template))
    return runs


def _graded_run(
    rng: random.Random, suite, item, model: str, day: date, number: int, template: PromptTemplate
) -> RunRecord:
    """One grader call: every third one in production, some failing with the key in the error."""
    started = datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(
        minutes=number * 7 + (model == "tutor-large") * 3
    )
    variables = _grader_vars(suite, item)
    status, output = _grader_reply(rng, suite, item, model)
    record = RunRecord(
        idempotency_key=idempotency_key("web-seed", item.item_hash, model, str(day)),
        source="golden" if number % 3 else "production",
        role="grader",
        model=model,
        started_at=started,
        status=status,
        batch_id=f"seed-{day}",
        suite=suite.name,
        suite_version=suite.version,
        item_id=item.item_id,
        item_hash=item.item_hash,
        stage=item.stage,
        category=item.category,
        subject_id=None if number % 3 else f"learner-{number:03d}",
        orchestrator_run_id=f"dagster-{day:%Y%m%d}" if number % 3 else None,
        rubric=item.rubric,
        submission=item.submission,
        prior_context=item.prior_context,
        inputs=variables,
        messages=template.render(**variables),
        params={"temperature": 0},
        response_model=f"evalhouse-sim/{model}",
        provider="evalhouse-sim",
        prompt_name=template.name,
        prompt_version=template.version,
        latency_ms=rng.lognormvariate(6.8, 0.3),
        input_tokens=rng.randint(300, 900),
        output_tokens=rng.randint(60, 200),
        cost_usd=rng.uniform(1e-4, 6e-4),
        expected_verdict=item.expected_verdict,
    )
    if status == "ok":
        record.output_text = json.dumps(output)
        record.verdict, record.passed = output["verdict"], suite.passes(output["verdict"])
        record.score, record.feedback = output["score"], output["feedback"]
        record.issue_tags = output["issue_tags"]
    elif status == "parse_error":
        record.output_text = "I think this is mostly fine?"
    else:
        record.output_text = None
        record.error_class = "AuthenticationError"
        record.error_message = f"Incorrect API key provided: {SECRET}"
    return record


def _grader_reply(rng: random.Random, suite, item, model: str) -> tuple[str, dict]:
    """(status, reply): ~4 % errors, ~3 % unparseable; tutor-large is right 90 % of the time."""
    status = "ok"
    if rng.random() < 0.04:
        status = "error"
    elif rng.random() < 0.03:
        status = "parse_error"
    correct = rng.random() < (0.9 if model == "tutor-large" else 0.8)
    verdict = item.expected_verdict if correct else rng.choice(suite.verdicts)
    tags = list(item.expected_issue_tags) if correct else []
    output = {
        "verdict": verdict,
        "score": round(rng.random(), 2),
        "feedback": {
            "strengths": ["clear names"],
            "problems": ["misses an edge case"] if tags else [],
            "suggestion": "test the empty input",
        },
        "issue_tags": tags,
    }
    return status, output


def _leaky_target(runs: list[RunRecord]) -> RunRecord:
    """The last golden tutor-small grade, with a key planted in its output for the scrub tests."""
    target = next(
        r
        for r in reversed(runs)
        if r.status == "ok" and r.source == "golden" and r.model == "tutor-small"
    )
    target.output_text = json.dumps({**json.loads(target.output_text), "debug": SECRET})
    return target


def _judge_of(target: RunRecord) -> RunRecord:
    return RunRecord(
        idempotency_key=idempotency_key("web-seed-judge", str(target.run_id)),
        source="golden",
        role="judge",
        model="judge",
        started_at=target.started_at + timedelta(seconds=2),
        status="ok",
        parent_run_id=target.run_id,
        suite=target.suite,
        stage=target.stage,
        item_id=target.item_id,
        verdict="pass",
        passed=True,
        output_text='{"verdict": "pass"}',
        messages=[{"role": "user", "content": "Is the grade right?"}],
    )


def _insert_reviews(conn, runs: list[RunRecord], target: RunRecord) -> None:
    """Two reviewers on every ninth settled grade and on the target; every fourth says fail."""
    graders = [r for r in runs if r.status == "ok" and r.role == "grader"]
    reviewed = [r for r in graders[::9] if r is not target] + [target]  # its page shows them
    for index, run in enumerate(reviewed):
        human = run.expected_verdict if index % 4 else "fail"
        for reviewer in ("alice", "bob"):
            conn.execute(
                "insert into raw.human_reviews (review_id, run_id, reviewer, verdict, notes)"
                " values (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), run.run_id, reviewer, human, "checked by hand"),
            )


def _insert_alerts(conn, target: RunRecord) -> tuple[int, int]:
    """A stage-band warning citing the target (a key in its evidence) and a bare cost alert."""
    alert_id = conn.execute(
        "insert into raw.alerts (dedupe_key, kind, severity, subject, message, statistic,"
        " observed, expected_low, expected_high, window_start, window_end, evidence,"
        " example_run_ids, orchestrator_run_id) values ('stage-band|loops|w11', 'stage_band',"
        " 'warning', 'stage loops stalling', 'Pass rate of loops fell below its band',"
        " 'wilson_high', 0.31, 0.35, 0.95, %s, %s, %s, %s, 'dagster-run-42')"
        " returning alert_id",
        (
            datetime(2026, 3, 13, tzinfo=UTC),
            datetime(2026, 3, 14, tzinfo=UTC),
            json.dumps({"n": 48, "passed": 9, "webhook_token": SECRET}),
            [target.run_id],
        ),
    ).fetchone()[0]
    other_alert_id = conn.execute(
        "insert into raw.alerts (dedupe_key, kind, severity, subject, message)"
        " values ('cost|w11', 'cost_spike', 'critical', 'cost spike tutor-large',"
        " 'Cost per call doubled') returning alert_id"
    ).fetchone()[0]
    return alert_id, other_alert_id


def _add_absurd_rows(url: str, seeded: Seeded) -> None:
    """What a careless import leaves: a production call dated 9999-12-31, and a grade whose
    verdict matched nothing (its raw text kept in attributes, as evals.importers keeps it)."""
    far_future = RunRecord(
        idempotency_key="web-seed-far-future",
        source="production",
        role="grader",
        model="tutor-small",
        started_at=datetime(9999, 12, 31, 12, tzinfo=UTC),
        status="ok",
        suite="intro-python",
        stage="loops",
        verdict="pass",
        passed=True,
    )
    seeded.unparsed = RunRecord(
        idempotency_key="web-seed-unparsed",
        source="import",
        role="grader",
        model="tutor-small",
        started_at=datetime(2026, 3, 10, 9, tzinfo=UTC),
        status="parse_error",
        suite="intro-python",
        output_text="Good loop, but the bounds are off by one.",
        attributes={"raw_verdict": RAW_VERDICT},
    )
    with psycopg.connect(url, autocommit=True) as conn:
        write_runs(conn, [far_future, seeded.unparsed])
    seeded.runs += [far_future, seeded.unparsed]


def build_marts(url: str, target_path, select: str | None = None) -> None:
    """Run the dbt project (or the `select`ed models) against `url` (models only; dbt's tests
    are the dbt suite's)."""
    from evals.dbt import dbt_env, run_dbt

    config = load_config(REPO_ROOT / "evalhouse.yaml")
    args = ["run", "--quiet", *(["--select", *select.split()] if select else [])]
    result = run_dbt(args, env=dbt_env(url, config, target_path=target_path))
    assert result.success, result.exception


@pytest.fixture(scope="module")
def seeded(pg_server, tmp_path_factory) -> Iterator[Seeded]:
    name = create_database(pg_server)
    url = pg_server.url(name)
    try:
        data = seed_warehouse(url)
        data.web_url = role_url(pg_server, url, WEB_ROLE)
        _add_absurd_rows(url, data)
        build_marts(url, tmp_path_factory.mktemp("dbt-target"))
        yield data
    finally:
        warehouse._engine_for(url).dispose()
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def app_client(seeded) -> Iterator[TestClient]:
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    app = create_app(config, TOKEN, database=WebDatabase(seeded.web_url))
    with TestClient(app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def client(app_client) -> TestClient:
    app_client.cookies.clear()
    return app_client


def _login(client: TestClient, name: str = "carol") -> str:
    """Sign in through the form; returns the CSRF token the pages embed."""
    response = client.post("/login", data={"token": TOKEN, "name": name, "next": "/runs"})
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    page = client.get("/alerts")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def _owner(url: str):
    return psycopg.connect(url, autocommit=True)


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/runs", "/runs.csv", "/alerts", "/alerts/1", f"/runs/{uuid.uuid4()}"]
)
def test_every_page_refuses_a_caller_without_credentials(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    assert SECRET not in response.text


def test_a_browser_without_a_session_is_sent_to_the_login_form_and_back(client):
    response = client.get("/runs?stage=loops", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Fstage%3Dloops"
    assert "Token" in client.get("/login").text


def test_a_wrong_token_is_refused_by_bearer_basic_and_the_login_form(client):
    assert client.get("/runs", headers={"authorization": "Bearer not-the-token"}).status_code == 401
    assert client.get("/runs", auth=("ops", "not-the-token")).status_code == 401
    response = client.post("/login", data={"token": "nope", "name": "eve", "next": "/"})
    assert response.status_code == 401 and SESSION_COOKIE not in response.cookies


def test_basic_auth_with_the_token_as_password_is_accepted(client):
    assert client.get("/runs", auth=("ops", TOKEN)).status_code == 200


def test_login_sets_a_signed_http_only_cookie_and_never_redirects_off_site(client):
    response = client.post(
        "/login", data={"token": TOKEN, "name": "dan", "next": "//evil.example/"}
    )
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert client.get("/runs").status_code == 200


def test_a_tampered_or_expired_session_cookie_is_refused(client):
    guard = Guard(TOKEN)
    forged = Guard("another-token-of-sufficient-length").session_cookie("mallory", "s1")
    client.cookies.set(SESSION_COOKIE, forged)
    assert client.get("/runs").status_code == 401
    client.cookies.set(SESSION_COOKIE, guard.session_cookie("old", "s2", now=1_000_000))
    assert client.get("/runs").status_code == 401
    body, _, signature = guard.session_cookie("bob", "s3").partition(".")
    client.cookies.set(SESSION_COOKIE, f"{body}x.{signature}")
    assert client.get("/runs").status_code == 401


def test_a_post_without_or_with_a_wrong_csrf_token_is_forbidden(client, seeded):
    _login(client)
    target = seeded.target.run_id
    for data in ({"verdict": "pass"}, {"verdict": "pass", "csrf": "forged"}):
        assert client.post(f"/runs/{target}/reviews", data=data).status_code == 403
        assert client.post(f"/alerts/{seeded.other_alert_id}/ack", data=data).status_code == 403
        assert client.post(f"/runs/{target}/replay", data=data).status_code == 403
        assert client.post("/logout", data=data).status_code == 403
    with _owner(seeded.url) as conn:
        assert (
            conn.execute(
                "select count(*) from raw.human_reviews where reviewer = 'carol'"
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                "select acknowledged_at from raw.alerts where alert_id = %s",
                (seeded.other_alert_id,),
            ).fetchone()[0]
            is None
        )


def test_a_csrf_token_from_another_session_is_refused(client, seeded):
    stolen = _login(client, "alice-web")
    client.cookies.clear()
    _login(client, "carol")
    response = client.post(f"/alerts/{seeded.other_alert_id}/ack", data={"csrf": stolen})
    assert response.status_code == 403


def test_pages_send_security_headers(client):
    response = client.get("/runs", headers=BEARER)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_logout_ends_the_session(client):
    csrf = _login(client)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/runs").status_code == 401


def test_a_session_cookie_copied_before_logout_is_refused_after_it(client, seeded):
    csrf = _login(client, "erin")
    copied = client.cookies.get(SESSION_COOKIE)
    session_id = json.loads(base64.urlsafe_b64decode(copied.split(".")[0] + "=="))["n"]
    with _owner(seeded.url) as conn:  # the server keeps the id's hash, never the id
        stored = conn.execute(
            "select session_hash from raw.web_sessions where user_name = 'erin'"
        ).fetchall()
    assert stored == [(hashlib.sha256(session_id.encode()).hexdigest(),)]
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    client.cookies.set(SESSION_COOKIE, copied)
    assert client.get("/runs").status_code == 401
    page = client.get("/runs", headers=HTML)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fruns"
    with _owner(seeded.url) as conn:
        sessions = conn.execute("select count(*) from raw.web_sessions where user_name = 'erin'")
        assert sessions.fetchone() == (0,)


# --- least privilege and scrubbing --------------------------------------------------------------


def test_the_app_connects_as_the_least_privilege_role(app_client, seeded):
    database = app_client.app.state.web.db
    assert database.one("select current_user as u")["u"] == "evalhouse_web"
    for statement in (
        "delete from raw.eval_runs",
        "update raw.eval_runs set verdict = 'pass'",
        "update raw.alerts set severity = 'info'",
        "truncate raw.human_reviews",
        "delete from raw.human_reviews",
        "create table raw.x (a int)",
        "drop table marts.fct_trend_daily",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            database.rows(statement)
    with _owner(seeded.url) as owner:  # the app's role reads every row the owner reads
        rows = owner.execute("select count(*) from marts.fct_stage_daily").fetchone()[0]
    assert database.one("select count(*) as n from marts.fct_stage_daily")["n"] == rows


def test_postgres_refuses_the_web_role_any_run_but_a_replay_and_any_review_but_its_own(seeded):
    """Row-level security (migration 0011): what the role may write is decided by Postgres
    (besides replays, production rows: the JSON API's ingest)."""
    forged = RunRecord(
        idempotency_key="web-forged-golden",
        source="golden",
        role="grader",
        model="tutor-small",
        started_at=datetime.now(UTC),
        status="ok",
        verdict="pass",
    )
    target = seeded.target.run_id
    with psycopg.connect(seeded.web_url, autocommit=True) as web:
        assert web.execute("select current_user").fetchone() == ("evalhouse_web",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            write_runs(web, [forged])  # COPY, then INSERT … SELECT: both refused
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            web.execute(
                "insert into raw.eval_runs (run_id, idempotency_key, source, role, model,"
                " started_at, status) values (gen_random_uuid(), 'web-forged-sql', 'ci',"
                " 'candidate', 'tutor-small', now(), 'ok')"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            reviews.write_reviews(web, [reviews.Review(target, "mallory", "pass", source="cli")])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            ensure_prompt_version(web, "rubric_grader", "0123456789abcdef", "not that text")
        wording = "A wording a replay used."
        assert ensure_prompt_version(web, "rubric_grader", prompt_version(wording), wording)
        replayed = dataclasses.replace(
            forged, idempotency_key="web-replay-by-role", source="replay", run_id=uuid.uuid4()
        )
        assert write_runs(web, [replayed]) == 1
    with _owner(seeded.url) as conn:
        stored = conn.execute(
            "select idempotency_key, source from raw.eval_runs"
            " where idempotency_key like 'web-forged%%' or idempotency_key = 'web-replay-by-role'"
        ).fetchall()
        assert stored == [("web-replay-by-role", "replay")]
        assert conn.execute(
            "select count(*) from raw.human_reviews where reviewer = 'mallory'"
        ).fetchone() == (0,)


def test_no_secret_is_rendered_on_any_page_or_export(client, seeded):
    error_run = next(r for r in seeded.runs if r.status == "error")
    pages = [
        f"/runs/{seeded.target.run_id}",
        f"/runs/{error_run.run_id}",
        "/runs?status=error",
        "/runs.csv?status=error",
        "/runs.json?status=error",
        f"/alerts/{seeded.alert_id}",
        "/",
    ]
    for path in pages:
        response = client.get(path, headers=BEARER)
        assert response.status_code == 200, path
        assert SECRET not in response.text, path
        assert TOKEN not in response.text, path
    assert "[REDACTED]" in client.get(f"/runs/{error_run.run_id}", headers=BEARER).text


# --- /runs --------------------------------------------------------------------------------------


def _all_pages(client, query: str) -> list[str]:
    ids, url = [], f"/runs?{query}&limit=37"
    while url:
        page = client.get(url, headers=BEARER)
        assert page.status_code == 200
        ids += re.findall(r'<a class="mono" href="/runs/([0-9a-f-]{36})"', page.text)
        found = re.search(r'<a class="button" href="(/runs\?[^"]+)">Older', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    return ids


def test_keyset_pages_walk_every_matching_run_once_newest_first(client, seeded):
    expected = sorted(
        (r for r in seeded.runs if r.stage == "loops" and r.model == "tutor-small"),
        key=lambda r: (r.started_at, str(r.run_id)),
        reverse=True,
    )
    assert _all_pages(client, "stage=loops&model=tutor-small") == [str(r.run_id) for r in expected]


def test_run_filters_combine_status_source_prompt_version_and_dates(client, seeded):
    version = seeded.versions[1]
    start, end = LAST_DAY - timedelta(days=3), LAST_DAY - timedelta(days=1)
    query = (
        f"status=ok&source=golden&prompt_version={version}&verdict=pass"
        f"&date_from={start}&date_to={end}&suite=intro-python&role=grader"
    )
    expected = {
        str(r.run_id)
        for r in seeded.runs
        if r.status == "ok"
        and r.source == "golden"
        and r.prompt_version == version
        and r.verdict == "pass"
        and start <= r.started_at.date() <= end
        and r.role == "grader"
    }
    assert expected and set(_all_pages(client, query)) == expected


def test_filter_values_are_bound_parameters_not_sql(client):
    response = client.get(
        "/runs?stage=' or 1=1 --&model=x\"); drop table raw.eval_runs; --", headers=BEARER
    )
    assert response.status_code == 200 and "No runs match" in response.text
    assert client.get("/runs?date_from=yesterday", headers=BEARER).status_code == 400
    assert client.get("/runs?cursor=garbage!", headers=BEARER).status_code == 400


def test_exports_give_the_filtered_rows_as_csv_and_json(client, seeded):
    expected = {str(r.run_id) for r in seeded.runs if r.stage == "functions"}
    response = client.get("/runs.csv?stage=functions", headers=BEARER)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {row["run_id"] for row in rows} == expected
    data = client.get("/runs.json?stage=functions", headers=BEARER).json()
    assert {row["run_id"] for row in data} == expected
    assert all(row["stage"] == "functions" for row in data)
    assert len(client.get("/runs.json?limit=5", headers=BEARER).json()) == 5
    assert client.get("/runs.xml", headers=BEARER).status_code == 404


def test_the_csv_export_defuses_spreadsheet_formulas_and_the_json_keeps_them(client, seeded):
    formulas = [
        '=HYPERLINK("http://evil.example","open")',
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
    ]
    runs = [
        RunRecord(
            idempotency_key=f"web-formula-{number}",
            source="ci",
            role="candidate",
            model="tutor-small",
            suite="formula-probe",
            item_id=formula,
            error_class=formula,
            score=-0.5,
            started_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=number),
            status="error",
        )
        for number, formula in enumerate(formulas)
    ]
    with _owner(seeded.url) as conn:
        write_runs(conn, runs)
    exported = client.get("/runs.csv?suite=formula-probe", headers=BEARER).text
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert sorted((row["item_id"], row["error_class"]) for row in rows) == sorted(
        ("'" + formula, "'" + formula) for formula in formulas
    )
    assert {row["score"] for row in rows} == {"-0.5"}  # numbers stay numbers
    data = client.get("/runs.json?suite=formula-probe", headers=BEARER).json()
    assert sorted(row["item_id"] for row in data) == sorted(formulas)


# --- /runs/{id} ---------------------------------------------------------------------------------


def test_the_run_page_shows_the_whole_record(client, seeded):
    run = seeded.target
    page = client.get(f"/runs/{run.run_id}", headers=BEARER).text
    assert "Messages as sent" in page and "SUBMISSION" in page  # the rendered user message
    assert run.item_id in page and run.stage in page
    assert "evalhouse-sim/tutor-small" in page  # answered by
    assert f"rubric_grader@{run.prompt_version}" in page
    assert "test the empty input" in page  # structured feedback
    assert "http://127.0.0.1:3000/runs/" + run.orchestrator_run_id in page
    assert f"/alerts/{seeded.alert_id}" in page  # the alert that cites it
    child = next(r for r in seeded.runs if r.parent_run_id == run.run_id)
    assert f'href="/runs/{child.run_id}"' in page
    assert "<strong>alice</strong>" in page and "<strong>bob</strong>" in page
    assert "Human reviews <small>(2)</small>" in page and "No human has reviewed" not in page
    child_page = client.get(f"/runs/{child.run_id}", headers=BEARER).text
    assert f'href="/runs/{run.run_id}"' in child_page  # parent link


def test_the_prompt_section_diffs_against_another_version(client, seeded):
    v1, v2 = seeded.versions
    run = next(r for r in seeded.runs if r.prompt_version == v2)
    page = client.get(f"/runs/{run.run_id}?against={v1}", headers=BEARER).text
    assert '<div class="del">-Judge only what the rubric asks for; be specific and kind' in page
    assert "be specific, kind and brief" in page
    assert '<div class="add">+' in page


def test_unknown_or_malformed_run_ids_are_404(client):
    assert client.get(f"/runs/{uuid.uuid4()}", headers=BEARER).status_code == 404
    assert client.get("/runs/not-a-uuid", headers=BEARER).status_code == 404


def test_a_review_added_on_the_page_is_stored_once_and_shown(client, seeded):
    csrf = _login(client, "rita")
    run = next(
        r for r in seeded.runs if r.status == "ok" and r.role == "grader" and r.stage == "loops"
    )
    response = client.post(
        f"/runs/{run.run_id}/reviews",
        data={
            "csrf": csrf,
            "verdict": "revise",
            "score": "0.4",
            "issue_tags": ["off_by_one"],
            "notes": "Loop stops one short.",
        },
    )
    assert response.status_code == 303 and "flash=reviewed" in response.headers["location"]
    page = client.get(response.headers["location"]).text
    assert "Review saved." in page and "Loop stops one short." in page and "rita" in page
    again = client.post(f"/runs/{run.run_id}/reviews", data={"csrf": csrf, "verdict": "pass"})
    assert "already-reviewed" in again.headers["location"]
    with _owner(seeded.url) as conn:
        rows = conn.execute(
            "select verdict, score, issue_tags, source from raw.human_reviews"
            " where run_id = %s and reviewer = 'rita'",
            (run.run_id,),
        ).fetchall()
    assert rows == [("revise", 0.4, ["off_by_one"], "web")]


def test_a_review_outside_the_suite_vocabulary_is_rejected(client, seeded):
    csrf = _login(client, "victor")
    run = seeded.target
    for data, flash in (
        ({"verdict": "excellent"}, "bad-verdict"),
        ({"verdict": "pass", "score": "7"}, "bad-score"),
        ({"verdict": "pass", "issue_tags": ["no_such_tag"]}, "bad-tags"),
    ):
        response = client.post(f"/runs/{run.run_id}/reviews", data={"csrf": csrf, **data})
        assert f"flash={flash}" in response.headers["location"]
    with _owner(seeded.url) as conn:
        assert (
            conn.execute(
                "select count(*) from raw.human_reviews where reviewer = 'victor'"
            ).fetchone()[0]
            == 0
        )


def test_replay_with_another_model_and_prompt_version_shows_old_vs_new(client, seeded):
    csrf = _login(client, "rita")
    run = seeded.target
    response = client.post(
        f"/runs/{run.run_id}/replay",
        data={"csrf": csrf, "model": "tutor-large", "prompt_version": seeded.versions[0]},
    )
    assert response.status_code == 303
    location = response.headers["location"]
    new_id = re.search(r"compare=([0-9a-f-]{36})", location).group(1)
    page = client.get(location).text
    assert "Old vs new" in page and "Replayed" in page
    assert "tutor-large" in page and SECRET not in page
    with _owner(seeded.url) as conn:
        row = conn.execute(
            "select source, parent_run_id, model, prompt_version from"
            " raw.eval_runs where run_id = %s",
            (new_id,),
        ).fetchone()
    assert row == ("replay", run.run_id, "tutor-large", seeded.versions[0])


def test_replay_refuses_a_model_or_prompt_version_it_does_not_know(client, seeded):
    csrf = _login(client)
    for data in ({"model": "gpt-imaginary"}, {"prompt_version": "deadbeefdeadbeef"}):
        response = client.post(f"/runs/{seeded.target.run_id}/replay", data={"csrf": csrf, **data})
        assert "flash=bad-replay" in response.headers["location"]


# --- /alerts ------------------------------------------------------------------------------------


def test_the_alert_list_and_page_show_statistic_window_evidence_and_examples(client, seeded):
    listing = client.get("/alerts", headers=BEARER).text
    assert "stage loops stalling" in listing and "cost spike tutor-large" in listing
    page = client.get(f"/alerts/{seeded.alert_id}", headers=BEARER).text
    assert "wilson_high" in page and "0.3100" in page and "0.3500 – 0.9500" in page
    assert "2026-03-13" in page and '"passed": 9' in html.unescape(page)
    assert '<dt>passed</dt><dd class="mono">9</dd>' in page  # flat evidence as a table
    assert f'href="/runs/{seeded.target.run_id}"' in page
    assert "http://127.0.0.1:3000/runs/dagster-run-42" in page
    assert client.get("/alerts/999999", headers=BEARER).status_code == 404
    assert client.get("/alerts?show=bogus", headers=BEARER).status_code == 400


def test_a_version_change_alert_links_to_the_prompt_diff_of_its_versions(client, seeded):
    v1, v2 = seeded.versions
    run = next(r for r in seeded.runs if r.prompt_version == v2)
    with _owner(seeded.url) as conn:
        alert_id = conn.execute(
            "insert into raw.alerts (dedupe_key, kind, severity, subject, message, evidence,"
            " example_run_ids) values ('version-change|loops', 'version_change_effect', 'warning',"
            " %s, 'Version change moved loops', %s, %s) returning alert_id",
            (
                f"stage=loops prompt={v1}→{v2}",
                json.dumps({"prompt_diff_against": v1}),
                [run.run_id],
            ),
        ).fetchone()[0]
    page = client.get(f"/alerts/{alert_id}", headers=BEARER).text
    diff = f"/runs/{run.run_id}?against={v1}#prompt"
    assert f'href="{diff}"' in page
    assert "be specific, kind and brief" in client.get(diff, headers=BEARER).text


def test_acknowledging_an_alert_records_who_and_moves_it_out_of_the_open_list(client, seeded):
    csrf = _login(client, "olga")
    response = client.post(f"/alerts/{seeded.alert_id}/ack", data={"csrf": csrf})
    assert response.status_code == 303
    assert "acknowledged by olga" in client.get(response.headers["location"]).text
    assert "stage loops stalling" not in client.get("/alerts?show=open").text
    assert "stage loops stalling" in client.get("/alerts?show=acknowledged").text
    client.post(f"/alerts/{seeded.alert_id}/ack", data={"csrf": _login(client, "pete")})
    with _owner(seeded.url) as conn:
        assert (
            conn.execute(
                "select acknowledged_by from raw.alerts where alert_id = %s", (seeded.alert_id,)
            ).fetchone()[0]
            == "olga"
        )


# --- / ------------------------------------------------------------------------------------------


def _kpi(page: str, label: str) -> str:
    found = re.search(rf'<div class="label">{label}</div><div class="value">([^<]+)</div>', page)
    return found.group(1)


def test_the_overview_shows_production_graded_calls_unless_asked_otherwise(client, seeded):
    page = client.get("/", headers=BEARER).text
    window = [  # the 30 days ending at the newest day not in the future (not 9999-12-31)
        r
        for r in seeded.runs
        if LAST_DAY - timedelta(days=30) < r.started_at.date() <= LAST_DAY
        and r.source == "production"
        and r.role != "judge"
    ]
    assert "Every figure covers: <strong>production, graded calls, all suites" in page
    assert _kpi(page, "Calls") == f"{len(window):,}"
    graded = [r for r in window if r.status == "ok" and r.passed is not None]
    assert _kpi(page, "Pass rate") == f"{100 * sum(r.passed for r in graded) / len(graded):.1f} %"
    failed = [r for r in window if r.status in ("error", "timeout", "parse_error")]
    assert _kpi(page, "Error rate") == f"{100 * len(failed) / len(window):.2f} %"
    assert page.count('<svg class="chart"') == 5  # pass rate, calls, failures, cost, issues
    assert "loops" in page and "Issue distribution" in page and "tutor-large" in page
    assert "By source" in page and "<td>production</td>" in page


def test_the_overview_filters_by_source_and_date_range(client, seeded):
    start, end = LAST_DAY - timedelta(days=4), LAST_DAY - timedelta(days=2)
    page = client.get(
        f"/?source=production&date_from={start}&date_to={end}&suite=intro-python", headers=BEARER
    ).text
    expected = [
        r for r in seeded.runs if r.source == "production" and start <= r.started_at.date() <= end
    ]
    assert _kpi(page, "Calls") == f"{len(expected):,}"
    pooled = client.get(
        f"/?source=all&role=all&date_from={start}&date_to={end}", headers=BEARER
    ).text
    assert "Every figure covers: <strong>all sources (pooled), all roles" in pooled
    every = [r for r in seeded.runs if start <= r.started_at.date() <= end]
    assert _kpi(pooled, "Calls") == f"{len(every):,}"
    assert client.get("/?date_from=soon", headers=BEARER).status_code == 400
    v1 = seeded.versions[0]
    narrowed = client.get(f"/?model=tutor-large&prompt_version={v1}", headers=BEARER).text
    assert f"model tutor-large, prompt {v1[:10]}" in narrowed
    default = client.get("/", headers=BEARER).text  # each stage row links its model's overview
    assert f"model=tutor-large&amp;prompt_version={v1}" in default
    assert client.get("/?source=everything", headers=BEARER).status_code == 400
    assert client.get("/?role=boss", headers=BEARER).status_code == 400


def test_the_overview_of_an_empty_window_says_so(client):
    page = client.get("/?date_from=2020-01-01&date_to=2020-01-31", headers=BEARER).text
    assert _kpi(page, "Calls") == "0" and "No data in this window" in page


def test_a_call_answered_by_another_model_family_is_flagged(client, seeded):
    dated, rerouted = (
        RunRecord(
            idempotency_key=f"web-answered-{name}",
            source="ci",
            role="candidate",
            model="tutor-small",
            response_model=name,
            started_at=datetime.now(UTC),
            status="ok",
        )
        for name in ("tutor-small-2026-03-01", "other-vendor/mystery-model")
    )
    with _owner(seeded.url) as conn:
        write_runs(conn, [dated, rerouted])
    assert "not the model asked" not in client.get(f"/runs/{dated.run_id}", headers=BEARER).text
    assert "not the model asked" in client.get(f"/runs/{rerouted.run_id}", headers=BEARER).text


def test_the_role_migration_is_a_notice_not_a_failure_where_create_role_is_refused(seeded):
    """A managed Postgres gives the migrating user no CREATEROLE: the migration must go on."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from evals.warehouse.roles import create_role_sql, web_grants_sql

    suffix = uuid.uuid4().hex[:8]
    owner, probe = f"web_owner_{suffix}", f"web_probe_{suffix}"
    notices: list[str] = []
    with _owner(seeded.url) as admin:
        admin.execute(f"create role {owner} login nocreaterole password 'probe-password'")
        try:
            limited = make_conninfo(
                **{**conninfo_to_dict(seeded.url), "user": owner, "password": "probe-password"}
            )
            with psycopg.connect(limited, autocommit=True) as conn:
                conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
                conn.execute(create_role_sql(probe, login=True))
                conn.execute(web_grants_sql(probe))
            assert (
                admin.execute(
                    "select count(*) from pg_roles where rolname = %s", (probe,)
                ).fetchone()[0]
                == 0
            )
        finally:
            admin.execute(f"drop role if exists {owner}")
    assert len(notices) == 2
    assert notices[0].startswith(f"evalhouse: role {probe} not created (permission denied")
    assert notices[1] == f"evalhouse: role {probe} is missing; its grants were skipped"
    with _owner(seeded.url) as admin:  # and on a server that allows it, a re-run changes nothing
        admin.execute(create_role_sql(WEB_ROLE, login=True))
        admin.execute(web_grants_sql(WEB_ROLE))


# --- evalhouse serve ----------------------------------------------------------------------------


def _serve(port: int, seeded: Seeded, token: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "EVALHOUSE_DATABASE_URL": seeded.url,
        "EVALHOUSE_WEB_DATABASE_URL": seeded.web_url,
        "EVALHOUSE_WEB_TOKEN": token,
        "EVALHOUSE_CONFIG": str(REPO_ROOT / "evalhouse.yaml"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "evals.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_evalhouse_serve_answers_on_its_port_and_only_with_the_token(seeded):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = _serve(port, seeded, TOKEN)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "evalhouse serve did not start"
                time.sleep(0.3)
        assert response.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/runs").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/runs", headers=BEARER).status_code == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert TOKEN not in output


def test_evalhouse_serve_refuses_a_short_token(seeded):
    server = _serve(1, seeded, "short")
    assert server.wait(timeout=60) == 2
    assert "at least 16 characters" in server.stdout.read()


def test_a_browser_gets_an_error_page_and_a_script_a_plain_message(client):
    page = client.get(f"/runs/{uuid.uuid4()}", headers={**BEARER, **HTML})
    assert page.status_code == 404 and "404 · Not Found" in page.text and "no such run" in page.text
    plain = client.get("/alerts/424242", headers=BEARER)
    assert plain.status_code == 404 and plain.text == "no such alert"


def test_band_flags_count_only_days_with_enough_verdicts(seeded):
    """The seed has a handful of verdicts per stage and day: too few to call a day "too easy"."""
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    lenient = config.model_copy(
        update={"drift": config.drift.model_copy(update={"min_daily_n": 1})}
    )
    for cfg, expect_band_flags in ((config, False), (lenient, True)):
        app = create_app(cfg, TOKEN, database=WebDatabase(seeded.web_url))
        with TestClient(app) as client:
            page = client.get("/", headers=BEARER).text
        assert ('title="days below the band"' in page) is expect_band_flags
        assert f"with ≥ {cfg.drift.min_daily_n} verdicts" in page


def test_the_csrf_token_may_come_as_a_header_for_scripts_using_the_session(client, seeded):
    csrf = _login(client, "sam")
    response = client.post(f"/alerts/{seeded.other_alert_id}/ack", headers={"x-csrf-token": csrf})
    assert response.status_code == 303


def test_a_warehouse_without_marts_gets_a_pointer_to_dbt_not_an_error(pg_server, warehouse_url):
    config = load_config(REPO_ROOT / "evalhouse.yaml")
    app = create_app(
        config, TOKEN, database=WebDatabase(role_url(pg_server, warehouse_url, WEB_ROLE))
    )
    with TestClient(app) as client:
        page = client.get("/", headers=BEARER)
        assert page.status_code == 503 and "evalhouse dbt build" in page.text
        assert client.get("/runs", headers=BEARER).status_code == 200
        assert client.get("/alerts", headers=BEARER).status_code == 200


def test_evalhouse_serve_says_plainly_when_the_web_role_cannot_connect(seeded, tmp_path):
    config = tmp_path / "evalhouse.yaml"
    config.write_text("web:\n  role: no_such_web_role\n")
    env = {
        **os.environ,
        "EVALHOUSE_DATABASE_URL": seeded.url,
        "EVALHOUSE_WEB_TOKEN": TOKEN,
        "EVALHOUSE_CONFIG": str(config),
    }
    result = subprocess.run(
        [sys.executable, "-m", "evals.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot connect as the web role" in result.stderr and "docs/web.md" in result.stderr


# --- bad input and absurd rows: a 4xx that says why, never a 500 (issue 14) --------------------


def test_a_non_ascii_session_signature_is_refused_not_a_server_error(client):
    body, _, _ = Guard(TOKEN).session_cookie("mallory", "s1").partition(".")
    cookie = {"cookie": f"{SESSION_COOKIE}={body}.sïgnature".encode()}  # as a browser sends it
    assert client.get("/runs", headers=cookie).status_code == 401
    assert client.get("/runs", headers={**cookie, **HTML}).status_code == 303  # to the login


def test_non_ascii_basic_credentials_are_refused_not_a_server_error(client):
    assert (
        client.get("/runs", headers={"authorization": "Basic dïgïts".encode()}).status_code == 401
    )


def test_a_non_ascii_csrf_token_is_forbidden_not_a_server_error(client):
    _login(client)
    response = client.post("/logout", data={"csrf": "tökén"})
    assert response.status_code == 403 and response.text == "CSRF token missing or invalid"


def test_credentials_with_lone_surrogates_are_refused_not_raised():
    """What a JSON body can carry (json.loads keeps a lone "\\ud83d"): refused like any other."""
    guard = Guard(TOKEN)
    principal = guard.read_session(guard.session_cookie("sam", "s1"))
    assert not guard.token_matches("\ud83d")
    assert guard.read_session(guard.session_cookie("sam", "s1").split(".")[0] + ".\ud83d") is None
    with pytest.raises(CsrfError):
        guard.check_csrf(principal, "\ud83d")


@pytest.mark.parametrize("path", ["/runs", "/runs.csv", "/runs.json", "/", "/alerts"])
def test_a_nul_in_a_filter_is_a_400_that_names_the_problem(client, path):
    response = client.get(f"{path}?suite=%00&stage=a%00b", headers=BEARER)
    assert response.status_code == 400
    assert response.text == "NUL characters are not allowed in a request (parameter suite)"


def test_a_nul_in_a_review_note_is_a_400_not_a_server_error(client, seeded):
    response = client.post(
        f"/runs/{seeded.unparsed.run_id}/reviews",
        data={"verdict": "pass", "notes": "fine\x00"},
        headers=BEARER,
    )
    assert response.status_code == 400
    assert response.text == (
        "the warehouse cannot take a value of this request:"
        " PostgreSQL text fields cannot contain NUL (0x00) bytes"
    )


def test_the_last_representable_day_is_a_valid_date_filter(client, seeded):
    runs = _all_pages(client, "date_from=9999-12-31&date_to=9999-12-31")
    assert runs == [str(r.run_id) for r in seeded.runs if r.started_at.year == 9999]
    assert len(runs) == 1
    overview = client.get("/?date_from=0001-01-01&date_to=9999-12-31", headers=BEARER)
    assert overview.status_code == 200 and "0001-01-01 → 9999-12-31" in overview.text


def test_a_window_that_ends_before_it_starts_is_a_400(client):
    for path in ("/", "/runs", "/runs.csv"):
        response = client.get(f"{path}?date_from=2026-03-10&date_to=2026-03-01", headers=BEARER)
        assert response.status_code == 400 and response.text == "date_from is after date_to"


def test_an_export_whose_query_fails_answers_an_error_not_an_empty_200(client, monkeypatch):
    def unrunnable(*args, **kwargs):
        raise psycopg.errors.DataError("invalid input syntax")

    monkeypatch.setattr("evals.web.runs.export_query", unrunnable)
    response = client.get("/runs.csv?stage=loops", headers=BEARER)
    assert response.status_code == 400
    assert (
        response.text == "the warehouse cannot take a value of this request: invalid input syntax"
    )


def test_an_export_that_matches_nothing_is_a_header_only_csv_and_an_empty_json_list(client):
    assert client.get("/runs.csv?stage=nowhere", headers=BEARER).text.splitlines() == [
        ",".join(LIST_COLUMNS)
    ]
    assert client.get("/runs.json?stage=nowhere", headers=BEARER).json() == []


def test_one_call_dated_9999_does_not_move_the_default_window(client):
    page = client.get("/", headers=BEARER).text
    assert "2026-02-13 → 2026-03-14 (UTC)" in page  # 30 days to the newest plausible day
    assert "1 call dated after today is outside the default window" in page
    explicit = client.get("/?date_to=2026-03-14", headers=BEARER).text
    assert "dated after today" not in explicit


def test_a_parse_error_run_shows_its_raw_verdict_escaped(client, seeded):
    page = client.get(f"/runs/{seeded.unparsed.run_id}", headers=BEARER).text
    assert "<dt>Raw verdict</dt><dd><code>&lt;b&gt;mostly&lt;/b&gt; fine-ish</code>" in page
    assert RAW_VERDICT not in page


# --- web fuzz: every route, every parameter, adversarial values (tests/web_fuzz.py) -------------

IDENTITIES = ("anonymous", "session", "bearer", "non-ascii cookie", "non-ascii authorization")


@pytest.fixture(scope="module")
def fuzz_known(seeded) -> dict[str, str]:
    """Real values for path parameters and form fields the sweep does not vary: a run and an
    alert of the fuzz's own (a POST may act on them; no other test counts them), the login
    form's token, and a signed-in session with its CSRF token (a POST gets past the check)."""
    run = RunRecord(  # a pairwise judgment with odd links, so its run view is swept too
        idempotency_key="web-fuzz-run",
        source="ci",
        role="judge",
        model="fuzz-model",
        started_at=datetime(2019, 6, 1, tzinfo=UTC),
        status="ok",
        suite="intro-python",
        item_id="fuzz-item",
        verdict="a",
        inputs={"response_a": ["not", "text"], "question": 7},
        attributes={
            "position": "ba",
            "contestant_a": "fuzz-a",
            "contestant_b": 7,
            "response_a_run_id": "not-a-uuid",
            "response_b_run_id": str(uuid.uuid4()),
        },
    )
    with _owner(seeded.url) as conn:
        write_runs(conn, [run])
        alert_id = conn.execute(
            "insert into raw.alerts (dedupe_key, kind, severity, subject, message)"
            " values ('fuzz', 'cost_spike', 'info', 'fuzz', 'fuzz') returning alert_id"
        ).fetchone()[0]
    guard = Guard(TOKEN)
    database = WebDatabase(seeded.web_url, min_size=1, max_size=1)
    database.open()
    try:
        session = guard.session_cookie("fuzz", sessions.start(database, "fuzz", ttl_s=3600))
    finally:
        database.close()
    return {
        "run_id": str(run.run_id),
        "alert_id": str(alert_id),
        "fmt": "csv",
        "token": TOKEN,
        "session": session,
        "csrf": guard.csrf_token(guard.read_session(session)),
    }


def _identity(name: str, known: dict[str, str]) -> dict[str, bytes]:
    """Headers that make a request come from `name`."""
    return {
        "anonymous": {},
        "session": {"cookie": f"{SESSION_COOKIE}={known['session']}".encode()},
        "bearer": {"authorization": f"Bearer {TOKEN}".encode()},
        "non-ascii cookie": {"cookie": f"{SESSION_COOKIE}=ä.ö; other=ü".encode()},
        "non-ascii authorization": {"authorization": "Bearer tökén-ünïcode".encode()},
    }[name]


def _send(client: TestClient, call: web_fuzz.Call) -> None:
    client.cookies.clear()  # only the identity's headers speak for the caller
    try:
        response = client.request(**call.kwargs())
    except Exception as exc:  # the app raised: the TestClient re-raises what a server 500s on
        pytest.fail(f"{call}: raised {exc!r}")
    assert (why := web_fuzz.problem(response)) is None, f"{call}: {why}"


def _sweep(client: TestClient, known: dict[str, str], identity: str, values) -> None:
    headers = _identity(identity, known)
    for op, chosen in web_fuzz.each_parameter_alone(web_fuzz.operations(client.app), values):
        _send(client, web_fuzz.build_call(op, chosen, known=known, headers=headers))


def test_the_sweep_sees_every_route_and_every_declared_filter(app_client):
    ops = web_fuzz.operations(app_client.app)
    assert {(op.method, op.path) for op in ops} >= {
        ("GET", "/static/{path}"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/"),
        ("GET", "/runs"),
        ("GET", "/runs.{fmt}"),
        ("GET", "/runs/{run_id}"),
        ("POST", "/runs/{run_id}/reviews"),
        ("POST", "/runs/{run_id}/replay"),
        ("GET", "/alerts"),
        ("GET", "/alerts/{alert_id}"),
        ("POST", "/alerts/{alert_id}/ack"),
    }
    runs = next(op for op in ops if (op.method, op.path) == ("GET", "/runs"))
    assert {f.name for f in fields(RunFilters)} | {"cursor", "limit"} == set(runs.query)
    review = next(op for op in ops if op.path == "/runs/{run_id}/reviews")
    assert review.path_params == ("run_id",) and "notes" in review.form and "csrf" in review.form


class _ApiReview(BaseModel):
    verdict: str
    score: float | None = None


def test_a_json_route_is_swept_from_its_schema_without_editing_the_sweep():
    """The shape the JSON API will have: a path id, a query flag and a JSON body model."""
    api = FastAPI(openapi_url=None)
    seen: list[dict] = []

    @api.post("/api/v1/runs/{run_id}/reviews")
    def review(run_id: str, review: _ApiReview, dry_run: bool = False):
        seen.append(review.model_dump())
        return {"ok": True}

    (op,) = web_fuzz.operations(api)
    assert (op.method, op.path_params, op.query) == ("POST", ("run_id",), ("dry_run",))
    assert op.json_fields == ("verdict", "score")
    call = web_fuzz.build_call(op, {("json", "verdict"): "\ud83d"}, known={"run_id": "r1"})
    assert call.url == "/api/v1/runs/r1/reviews" and call.content == b'{"verdict": "\\ud83d"}'
    with TestClient(api) as client:
        assert client.request(**call.kwargs()).status_code == 200
        broken = web_fuzz.build_call(op, {}, known={"run_id": "r1"}, json_body=b'{"a":')
        assert client.request(**broken.kwargs()).status_code == 422
    assert seen == [{"verdict": "\ud83d", "score": None}]


def test_every_parameter_of_every_route_survives_the_values_that_broke_it(app_client, fuzz_known):
    _sweep(app_client, fuzz_known, "session", web_fuzz.SHARP)


def test_a_method_a_route_does_not_serve_is_refused_not_an_error(app_client):
    for method, path in web_fuzz.wrong_methods(web_fuzz.operations(app_client.app)):
        response = app_client.request(
            method, path.replace("{", "").replace("}", ""), headers=BEARER
        )
        assert response.status_code in (401, 404, 405), (method, path)


def _generated_requests(app_client, fuzz_known, data) -> None:
    ops = web_fuzz.operations(app_client.app)
    op = data.draw(st.sampled_from(ops), label="operation")
    headers = _identity(data.draw(st.sampled_from(IDENTITIES), label="identity"), fuzz_known)
    if data.draw(st.booleans(), label="browser"):
        headers["accept"] = b"text/html"
    chosen = (
        data.draw(st.sets(st.sampled_from(op.parameters)), label="parameters")
        if (op.parameters)
        else set()
    )
    values = {p: data.draw(web_fuzz.values_strategy(), label=str(p)) for p in sorted(chosen)}
    broken = None
    if op.json_fields is not None and data.draw(st.booleans(), label="broken json"):
        broken = data.draw(st.sampled_from(web_fuzz.BROKEN_JSON))
    call = web_fuzz.build_call(op, values, known=fuzz_known, headers=headers, json_body=broken)
    _send(app_client, call)


@given(data=st.data())
def test_generated_requests_never_get_a_500_or_a_traceback(app_client, fuzz_known, data):
    _generated_requests(app_client, fuzz_known, data)


@pytest.mark.fuzz
@settings(parent=settings.get_profile("fuzz"))
@given(data=st.data())
def test_generated_requests_never_get_a_500_or_a_traceback_long(app_client, fuzz_known, data):
    _generated_requests(app_client, fuzz_known, data)


@pytest.mark.fuzz
@pytest.mark.parametrize("identity", ["session", "bearer", "anonymous"])
def test_every_parameter_meets_every_adversarial_value(app_client, fuzz_known, identity):
    _sweep(app_client, fuzz_known, identity, web_fuzz.ADVERSARIAL)


def test_the_sweep_covers_the_mounted_json_api(app_client):
    swept = {(op.method, op.path) for op in web_fuzz.operations(app_client.app)}
    assert {
        ("GET", "/api/v1/runs"),
        ("POST", "/api/v1/runs"),
        ("GET", "/api/v1/runs/{run_id}"),
        ("POST", "/api/v1/alerts/{alert_id}/ack"),
        ("POST", "/api/v1/batches"),
        ("GET", "/api/v1/compare"),
    } <= swept
