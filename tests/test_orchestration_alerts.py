"""The alert outbox end to end: a check's alert row, the delivery sensor, a webhook that is down
and then up, and a failed run turned into an alert."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from evals.alerts import AlertDraft, record_alerts, resolve_cleared, slack_payload
from evals.config import load_config
from orchestration.defs.alerts.sensors import alert_delivery, run_failure_alerts
from orchestration.lib.resources import Evalhouse

SECRET = "s3cr3t-webhook-token-123456"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int) -> tuple[HTTPServer, list[dict]]:
    """A webhook receiver on 127.0.0.1:port; returns it and the list of requests it received."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {
                    "path": self.path,
                    "json": json.loads(body),
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                }
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


@pytest.fixture
def webhook_port() -> int:
    return _free_port()


@pytest.fixture
def ops_hook():
    """A second webhook, up all along."""
    server, received = _serve(_free_port())
    yield server.server_address[1], received
    server.shutdown()


@pytest.fixture
def config_file(
    tmp_path: Path, webhook_port: int, ops_hook, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("TEAM_HOOK_URL", f"http://127.0.0.1:{webhook_port}/hook?token={SECRET}")
    path = tmp_path / "evalhouse.yaml"
    path.write_text(
        "alerts:\n"
        "  base_url: http://evalhouse.example\n"
        "  dagster_url: http://dagster.example\n"
        "  webhooks:\n"
        "    - {name: team, url_env: TEAM_HOOK_URL, timeout_s: 2}\n"
        f"    - {{name: ops, url: 'http://127.0.0.1:{ops_hook[0]}/ops', timeout_s: 2}}\n"
    )
    return path


def _raise_alert(url: str) -> int:
    draft = AlertDraft(
        kind="pass_rate_shift",
        severity="critical",
        subject="stage=loops",
        message="Pass rate of stage loops moved up: 81% vs 66%",
        statistic="two_proportion_z",
        observed=0.81,
        expected_low=0.61,
        expected_high=0.71,
        window_start=datetime(2026, 11, 20, tzinfo=UTC),
        window_end=datetime(2026, 11, 21, tzinfo=UTC),
        evidence={"z": 5.2},
        example_run_ids=["00000000-0000-0000-0000-00000000000a"],
        orchestrator_run_id="dagster-run-1",
    )
    with psycopg.connect(url) as conn, conn.transaction():
        ids = record_alerts(conn, [draft])
        again = record_alerts(conn, [draft])
    assert again == [], "the same check, subject and window must not raise a second alert"
    return ids[0]


def _deliveries(url: str, webhook: str = "team") -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select webhook, attempts, delivered_at is not null, last_error"
            " from raw.alert_deliveries where webhook = %s",
            (webhook,),
        ).fetchall()


def _tick(config_file: Path):
    context = dg.build_sensor_context(resources={"evalhouse": Evalhouse(load_config(config_file))})
    return alert_delivery(context)


def test_an_alert_reaches_a_webhook_that_was_down_exactly_once_with_every_attempt_recorded(
    warehouse_url, config_file, webhook_port, ops_hook, caplog
):
    caplog.set_level(logging.DEBUG)
    alert_id = _raise_alert(warehouse_url)

    _tick(config_file)  # nothing listens on the team's webhook yet; ops is up
    [(webhook, attempts, delivered, error)] = _deliveries(warehouse_url)
    assert (webhook, attempts, delivered) == ("team", 1, False)
    assert error == "URLError"  # the exception's name only: never the URL, which holds a token
    assert _deliveries(warehouse_url, "ops") == [("ops", 1, True, None)]

    _tick(config_file)  # too soon: the backoff holds the retry back
    assert _deliveries(warehouse_url)[0][1] == 1

    server, received = _serve(webhook_port)
    try:
        with psycopg.connect(warehouse_url) as conn:  # time passes beyond the backoff
            conn.execute(
                "update raw.alert_deliveries set last_attempt_at = now() - interval '1 hour'"
            )
        _tick(config_file)
        _tick(config_file)
    finally:
        server.shutdown()

    assert len(received) == 1
    assert _deliveries(warehouse_url) == [("team", 2, True, None)]
    assert len(ops_hook[1]) == 1, "the webhook that was up got the alert once, not on every tick"
    with psycopg.connect(warehouse_url) as conn:
        delivered_at, attempts = conn.execute(
            "select delivered_at, delivery_attempts from raw.alerts where alert_id = %s",
            (alert_id,),
        ).fetchone()
    assert delivered_at is not None and attempts == 3, "two tries to team, one to ops"

    [request] = received
    message = request["json"]
    assert request["idempotency_key"] == f"evalhouse-alert-{alert_id}-r1"
    assert message["text"].startswith("[CRITICAL] pass_rate_shift: stage=loops")
    links = json.dumps(message["blocks"])
    assert f"http://evalhouse.example/alerts/{alert_id}" in links
    assert "http://evalhouse.example/runs/00000000-0000-0000-0000-00000000000a" in links
    assert "http://dagster.example/runs/dagster-run-1" in links
    assert SECRET not in json.dumps(message)
    assert SECRET not in caplog.text


def test_the_sensor_skips_when_no_webhook_is_configured(warehouse_url, tmp_path):
    path = tmp_path / "quiet.yaml"
    path.write_text("alerts: {webhooks: []}\n")
    _raise_alert(warehouse_url)
    result = _tick(path)
    assert (type(result), result.skip_message) == (
        dg.SkipReason,
        "no webhooks configured under alerts.webhooks",
    )
    assert _deliveries(warehouse_url) == []


def test_the_payload_is_slack_shaped_and_scrubbed(config_file):
    alerts = load_config(config_file).alerts
    row = {
        "alert_id": 7,
        "kind": "cost_spike",
        "severity": "warning",
        "subject": "model=m",
        "message": "cost doubled; key=sk-abcdefghijklmnopqrstuvwx leaked",
        "statistic": "ratio",
        "observed": 2.0,
        "expected_low": 0.0,
        "expected_high": 1.5,
        "window_start": None,
        "window_end": None,
        "example_run_ids": [],
        "orchestrator_run_id": None,
    }
    payload = slack_payload(alerts, row)
    assert set(payload) == {"text", "blocks"}
    assert [block["type"] for block in payload["blocks"]] == [
        "header",
        "section",
        "section",
        "context",
    ]
    assert "sk-abcdefghijklmnopqrstuvwx" not in json.dumps(payload)


def test_a_failed_run_becomes_a_critical_alert_linking_the_dagster_run(warehouse_url, config_file):
    @dg.op
    def explode():
        raise RuntimeError("boom")

    @dg.job
    def doomed():
        explode()

    with dg.instance_for_test() as instance:
        result = doomed.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
            resources={"evalhouse": Evalhouse(load_config(config_file))},
        ).for_run_failure()
        run_failure_alerts(context)
        run_failure_alerts(context)  # a second tick over the same failure adds nothing

    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute("select kind, severity, orchestrator_run_id from raw.alerts").fetchall()
    assert rows == [("run_failure", "critical", result.run_id)]


def _shift_on(night: int, observed: float) -> AlertDraft:
    """The stage-shift finding of 2026-11-<night> on stage loops."""
    start = datetime(2026, 11, night, tzinfo=UTC)
    return AlertDraft(
        kind="pass_rate_shift",
        severity="critical",
        subject="stage=loops",
        message=f"loops at {observed:.0%} on night {night}",
        statistic="two_proportion_z",
        observed=observed,
        window_start=start,
        window_end=start + timedelta(days=1),
        evidence={"night": night},
    )


def _record_night(url: str, night: int, drafts: list[AlertDraft]) -> tuple[list[int], list[int]]:
    """What a drift check does for one night: record its findings, then resolve the quiet."""
    end = datetime(2026, 11, night, tzinfo=UTC) + timedelta(days=1)
    with psycopg.connect(url) as conn, conn.transaction():
        return record_alerts(conn, drafts), resolve_cleared(conn, ["pass_rate_shift"], end)


def _alerts(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select alert_id, status, revision, occurrences, observed, window_end::date"
            " from raw.alerts order by alert_id"
        ).fetchall()


def test_consecutive_nights_on_one_subject_renew_one_alert_and_a_quiet_night_resolves_it(
    warehouse_url,
):
    [first] = _record_night(warehouse_url, 20, [_shift_on(20, 0.81)])[0]
    assert _record_night(warehouse_url, 21, [_shift_on(21, 0.84)]) == ([first], [])
    assert _record_night(warehouse_url, 20, [_shift_on(20, 0.81)]) == ([], []), (
        "re-running an older night adds nothing"
    )
    assert _alerts(warehouse_url) == [(first, "firing", 2, 2, 0.84, datetime(2026, 11, 22).date())]

    assert _record_night(warehouse_url, 22, []) == ([], [first])
    [second] = _record_night(warehouse_url, 25, [_shift_on(25, 0.9)])[0]
    assert _alerts(warehouse_url) == [
        (first, "resolved", 3, 2, 0.84, datetime(2026, 11, 22).date()),
        (second, "firing", 1, 1, 0.9, datetime(2026, 11, 26).date()),
    ]
    with psycopg.connect(warehouse_url) as conn:
        history = conn.execute(
            "select alert_id, observed, window_start::date from raw.alert_occurrences"
            " order by window_start"
        ).fetchall()
    assert history == [
        (first, 0.81, datetime(2026, 11, 20).date()),
        (first, 0.84, datetime(2026, 11, 21).date()),
        (second, 0.9, datetime(2026, 11, 25).date()),
    ]


def test_a_webhook_hears_opened_still_firing_and_resolved_once_each(
    warehouse_url, config_file, webhook_port
):
    server, received = _serve(webhook_port)
    try:
        _record_night(warehouse_url, 20, [_shift_on(20, 0.81)])
        _tick(config_file)
        _record_night(warehouse_url, 21, [_shift_on(21, 0.84)])
        _tick(config_file)
        _tick(config_file)
        _record_night(warehouse_url, 22, [])
        _tick(config_file)
        _tick(config_file)
    finally:
        server.shutdown()

    [(alert_id, *_)] = _alerts(warehouse_url)
    assert [(r["json"]["text"].split(" — ")[0], r["idempotency_key"]) for r in received] == [
        ("[CRITICAL] pass_rate_shift: stage=loops", f"evalhouse-alert-{alert_id}-r1"),
        (
            "[CRITICAL] still firing (2 nights) pass_rate_shift: stage=loops",
            f"evalhouse-alert-{alert_id}-r2",
        ),
        ("[RESOLVED] pass_rate_shift: stage=loops", f"evalhouse-alert-{alert_id}-r3"),
    ]
    assert "Quiet again after 2 night(s)" in received[2]["json"]["text"]
