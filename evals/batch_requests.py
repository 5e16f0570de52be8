"""Evaluations started over HTTP (raw.batch_requests): queued, run by a worker, called back once.

`POST /api/v1/batches` only inserts a row (`submit`) and answers with its id. Where the Dagster
code location is deployed, the server launches its `api_batch` job for the request
(`evals.batch_launch`), whose op runs it here (`run_by_id`); else a `BatchWorker` thread in the
server claims queued rows (`FOR UPDATE SKIP LOCKED`, so two servers never run one request).
Either way the suite runs through `evals.runner` under the batch key `api:<request id>`, and the
end is one transaction: the summary is stored and a `batch_completed` / `batch_failed` alert is
recorded in the alert outbox (evals.alerts), so every configured webhook hears the result once,
by the same delivery as any alert. Then the callback is delivered.

The callback follows the alert outbox (evals.alerts): the row is locked while it is posted and
marked delivered in the same transaction on a 2xx, so it is sent once; a failure is recorded and
retried with exponential back-off until it lands. While a request runs, the worker beats its
`heartbeat_at`; a `running` row whose heartbeat is older than STALE_AFTER (a worker killed with
kill -9) is shown as stale and claimed again, and the runner's idempotency keys make the re-run
call only what never settled. This module is the table's one writer.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from evals.alerts import AlertDraft, Poster, deliver_pending, post_json, record_alerts
from evals.redact import scrub

if TYPE_CHECKING:
    import psycopg

    from evals.config import Config

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=60)
HEARTBEAT_S = 10.0
CALLBACK_BACKOFF_BASE_S = 5.0
CALLBACK_BACKOFF_MAX_S = 900.0
CALLBACK_TIMEOUT_S = 10.0
COLUMNS = (
    "request_id, created_at, requested_by, suite, model, judge, baseline, item_limit, trials,"
    " batch_key,"
    " callback_url is not null as has_callback, status, started_at, heartbeat_at, finished_at,"
    " summary, error, callback_attempts, callback_last_error, callback_delivered_at,"
    " dagster_run_id,"
    f" (status = 'running' and heartbeat_at < now() - interval '{STALE_AFTER.seconds} seconds')"
    " as stale"
)
"""What a reader may see of a request (never the callback URL, which may carry a token)."""


@dataclass(frozen=True)
class BatchSpec:
    """What to run: a configured suite and model, an optional judge, limit and trials;
    `baseline` adds a release-gate decision (candidate = `model`) to the summary."""

    suite: str
    model: str
    judge: str | None = None
    limit: int | None = None
    trials: int = 1
    callback_url: str | None = None
    baseline: str | None = None


def batch_key(request_id: uuid.UUID) -> str:
    """The run log's batch id of a request's calls."""
    return f"api:{request_id}"


def submit(conn: psycopg.Connection, spec: BatchSpec, requested_by: str) -> uuid.UUID:
    """Queue a request; the id is also its batch key's suffix."""
    request_id = uuid.uuid4()
    conn.execute(
        "insert into raw.batch_requests (request_id, requested_by, suite, model, judge,"
        " item_limit, trials, batch_key, callback_url, baseline)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            request_id,
            requested_by,
            spec.suite,
            spec.model,
            spec.judge,
            spec.limit,
            spec.trials,
            batch_key(request_id),
            spec.callback_url,
            spec.baseline,
        ),
    )
    return request_id


def launched(conn: psycopg.Connection, request_id: uuid.UUID, dagster_run_id: str) -> None:
    """Record the Dagster run launched for a request (its op records it too, on claiming)."""
    conn.execute(
        "update raw.batch_requests set dagster_run_id = %s where request_id = %s",
        (dagster_run_id, request_id),
    )


def _claim(
    conn: psycopg.Connection,
    request_id: uuid.UUID | None = None,
    dagster_run_id: str | None = None,
) -> dict[str, Any] | None:
    """The oldest queued (or stale running) request — or that one, `request_id` — now running
    and ours; None when there is none (or it is finished, or another process runs it). Claimed
    in a Dagster run, the request names that run."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """
            update raw.batch_requests set status = 'running', heartbeat_at = now(),
                started_at = coalesce(started_at, now()),
                dagster_run_id = coalesce(%s, dagster_run_id)
            where request_id = (
                select request_id from raw.batch_requests
                where (status = 'queued' or (status = 'running' and heartbeat_at < now() - %s))
                    and (%s::uuid is null or request_id = %s)
                order by created_at limit 1 for update skip locked
            )
            returning request_id, suite, model, judge, item_limit, trials, batch_key, baseline
            """,
            (dagster_run_id, STALE_AFTER, request_id, request_id),
        ).fetchone()


def _beat(conn: psycopg.Connection, request_id: uuid.UUID) -> None:
    conn.execute(
        "update raw.batch_requests set heartbeat_at = now() where request_id = %s", (request_id,)
    )


def _finish(
    conn: psycopg.Connection,
    request_id: uuid.UUID,
    summary: dict | None,
    error: str | None,
    orchestrator_run_id: str | None = None,
) -> None:
    """Store the end of a request and, in the same transaction, its alert for the webhooks."""
    from psycopg.rows import dict_row

    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "update raw.batch_requests set status = %s, finished_at = now(),"
            " heartbeat_at = now(), summary = %s, error = %s where request_id = %s returning *",
            (
                "failed" if error else "completed",
                json.dumps(summary) if summary is not None else None,
                error,
                request_id,
            ),
        ).fetchone()
        record_alerts(conn, [_result_alert(row, orchestrator_run_id)])


def _result_alert(row: dict[str, Any], orchestrator_run_id: str | None = None) -> AlertDraft:
    """The webhooks' message on a finished request: one incident per request (its id is in the
    subject), `info` when it completed, `warning` when it failed."""
    summary = row["summary"] or {}
    accuracy = summary.get("accuracy")
    figures = (
        f"accuracy {accuracy:.1%} on {summary.get('scored')} outcomes"
        if accuracy is not None
        else "no accuracy"
    )
    gate = f"; release gate: {summary['gate']['decision']}" if "gate" in summary else ""
    failed = row["status"] == "failed"
    return AlertDraft(
        kind="batch_failed" if failed else "batch_completed",
        severity="warning" if failed else "info",
        subject=f"{row['model']} on {row['suite']} ({row['batch_key']})",
        message=f"Evaluation {row['batch_key']} {row['status']}: {figures}{gate}"
        + (f". Error: {row['error']}" if failed else ""),
        statistic="accuracy" if accuracy is not None else None,
        observed=accuracy,
        evidence=callback_payload(row),
        orchestrator_run_id=orchestrator_run_id,
    )


def run_request(config: Config, request: dict[str, Any]) -> tuple[dict | None, str | None]:
    """Run one claimed request: (summary, None) when every call settled, else (summary or None,
    the reason). The summary is the runner's, plus accuracy and the gate decision if asked."""
    from evals.runner import RunnerError, RunRequest, run_suite

    try:
        summary = run_suite(
            config,
            RunRequest(
                request["suite"],
                request["model"],
                request["judge"],
                trials=request["trials"],
                limit=request["item_limit"],
                batch_key=request["batch_key"],
                started_by=request["batch_key"],  # api:<request id>, as batch_key() names it
            ),
        )
    except (RunnerError, ValueError) as exc:
        return None, scrub(str(exc))[:500]
    result = {**summary.as_dict(), "accuracy": summary.accuracy}
    if baseline := request["baseline"]:
        from evals.gate import evaluate_gate

        decision = evaluate_gate(config, request["suite"], baseline, request["model"])
        result["gate"] = {
            "decision": decision.decision,
            "decision_id": decision.decision_id,
            "baseline": decision.baseline,
            "candidate": decision.candidate,
            "exit_code": decision.exit_code,
        }
    if summary.unsettled_calls:
        return result, f"{summary.unsettled_calls} calls did not settle; run again to retry"
    return result, None


def callback_payload(row: dict[str, Any]) -> dict[str, Any]:
    """What the callback receives: the request's id, status, batch key, summary and error."""
    return {
        "request_id": str(row["request_id"]),
        "status": row["status"],
        "batch_key": row["batch_key"],
        "suite": row["suite"],
        "model": row["model"],
        "summary": row["summary"],
        "error": row["error"],
    }


def deliver_callbacks(
    conn: psycopg.Connection,
    *,
    post: Poster = post_json,
    backoff_base_s: float = CALLBACK_BACKOFF_BASE_S,
    limit: int = 20,
) -> int:
    """Post every due callback of a finished request (autocommit connection); returns how many
    were delivered. A failed one is retried after `backoff_base_s * 2^(attempts-1)`."""
    delivered = 0
    for _ in range(limit):
        outcome = _deliver_one(conn, post, backoff_base_s)
        if outcome is None:
            break
        delivered += outcome
    return delivered


def _deliver_one(conn: psycopg.Connection, post: Poster, backoff_base_s: float) -> bool | None:
    """Claim, post and settle one due callback: None when none is due, else whether it landed."""
    from psycopg.rows import dict_row

    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """
            select * from raw.batch_requests
            where status in ('completed', 'failed') and callback_url is not null
              and callback_delivered_at is null
              and (callback_last_attempt_at is null or callback_last_attempt_at + make_interval(
                   secs => least(%s * power(2, greatest(callback_attempts - 1, 0)), %s)) <= now())
            order by finished_at limit 1
            for update skip locked
            """,
            (backoff_base_s, CALLBACK_BACKOFF_MAX_S),
        ).fetchone()
        if row is None:
            return None
        headers = {"Idempotency-Key": f"evalhouse-batch-{row['request_id']}"}
        try:
            status = post(row["callback_url"], callback_payload(row), headers, CALLBACK_TIMEOUT_S)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except Exception as exc:  # any transport failure is retried later
            error = type(exc).__name__
        cur.execute(
            "update raw.batch_requests set callback_attempts = callback_attempts + 1,"
            " callback_last_attempt_at = now(), callback_last_error = %s,"
            " callback_delivered_at = case when %s::text is null then now() end"
            " where request_id = %s",
            (error, error, row["request_id"]),
        )
    if error is not None:
        log.warning("batch %s: callback failed (%s); retried later", row["request_id"], error)
    return error is None


def _run_claimed(
    config: Config,
    connect: Callable[[], psycopg.Connection],
    request: dict[str, Any],
    *,
    heartbeat_s: float = HEARTBEAT_S,
    orchestrator_run_id: str | None = None,
) -> None:
    """Run a claimed request while a thread beats its heartbeat, then `_finish` it."""
    done = threading.Event()

    def beat() -> None:
        with connect() as beat_conn:
            while not done.wait(heartbeat_s):
                _beat(beat_conn, request["request_id"])

    beater = threading.Thread(target=beat, name="evalhouse-batch-heartbeat", daemon=True)
    beater.start()
    try:
        summary, error = run_request(config, request)
    except Exception as exc:
        log.exception("batch %s failed", request["request_id"])
        summary, error = None, scrub(f"{type(exc).__name__}: {exc}")[:500]
    finally:
        done.set()
        beater.join()
    with connect() as conn:
        _finish(conn, request["request_id"], summary, error, orchestrator_run_id)


def run_by_id(
    config: Config,
    connect: Callable[[], psycopg.Connection],
    request_id: uuid.UUID,
    *,
    orchestrator_run_id: str | None = None,
) -> str | None:
    """Run one request (a Dagster run launched for it): its final status, or None when it was
    not queued (already finished, or running elsewhere with a live heartbeat)."""
    with connect() as conn:
        request = _claim(conn, request_id, orchestrator_run_id)
    if request is None:
        return None
    _run_claimed(config, connect, request, orchestrator_run_id=orchestrator_run_id)
    with connect() as conn:
        return conn.execute(
            "select status from raw.batch_requests where request_id = %s", (request_id,)
        ).fetchone()[0]


def _deliver(
    conn: psycopg.Connection,
    config: Config,
    *,
    callback_backoff_base_s: float = CALLBACK_BACKOFF_BASE_S,
) -> None:
    """Deliver what is due: the callbacks, and the alert outbox to the configured webhooks."""
    deliver_callbacks(conn, backoff_base_s=callback_backoff_base_s)
    if config.alerts.webhooks:
        deliver_pending(conn, config.alerts)


class BatchWorker:
    """The server's background worker: runs queued requests one at a time, delivers callbacks
    and (with webhooks configured) the alert outbox — where no Dagster daemon delivers it, the
    server does; two deliverers never send one alert twice. Beside a Dagster launcher it claims
    nothing queued (`claim_queued=False`, the runs do) and runs only what it is handed (`take`).

    `connect` opens an autocommit connection as the warehouse owner (the runner writes the run
    log with the warehouse's credentials, like `evalhouse run`; request handlers keep the web
    role).
    """

    def __init__(
        self,
        config: Config,
        connect: Callable[[], psycopg.Connection],
        *,
        poll_s: float = 1.0,
        heartbeat_s: float = HEARTBEAT_S,
        callback_backoff_base_s: float = CALLBACK_BACKOFF_BASE_S,
        claim_queued: bool = True,
    ) -> None:
        self.config = config
        self._connect = connect
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.callback_backoff_base_s = callback_backoff_base_s
        self.claim_queued = claim_queued
        self._taken: queue.SimpleQueue[uuid.UUID] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evalhouse-batches", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A request was queued: look now rather than at the next poll."""
        self._wake.set()

    def take(self, request_id: uuid.UUID) -> None:
        """Run this request even when not claiming queued ones (its Dagster launch failed)."""
        self._taken.put(request_id)
        self.wake()

    def _next(self, conn: psycopg.Connection) -> dict[str, Any] | None:
        while not self._taken.empty():
            if (request := _claim(conn, self._taken.get())) is not None:
                return request
        return _claim(conn) if self.claim_queued else None

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the worker must outlive a bad tick (the warehouse restarting)
                log.exception("batch worker: tick failed; retrying")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def step(self) -> None:
        """Run every queued request, then deliver what callbacks and alerts are due."""
        with self._connect() as conn:
            while not self._stop.is_set() and (request := self._next(conn)) is not None:
                _run_claimed(self.config, self._connect, request, heartbeat_s=self.heartbeat_s)
            _deliver(conn, self.config, callback_backoff_base_s=self.callback_backoff_base_s)
