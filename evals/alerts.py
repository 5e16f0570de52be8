"""The alert outbox: checks write alert rows, a sensor delivers them to webhooks.

Why an outbox: a check decides an alert in the same transaction that writes it (so an alert
exists exactly when its decision committed), and delivery happens later, elsewhere, as often as
needed. Nothing is lost while a webhook is down — the row waits and every attempt is recorded in
raw.alert_deliveries — and nothing is sent twice to one webhook: a delivery row is locked
(`FOR UPDATE SKIP LOCKED`) while it is being posted and marked delivered in that same transaction
on a 2xx, so two sensors ticking at once cannot both send it. (Only a crash in the instant
between the webhook's 2xx and the commit can repeat a message; receivers that honour the
`Idempotency-Key` header see it as the same alert.)

An alert is an incident: one firing alert per (kind, subject). A finding on a subject that is
already firing is an occurrence of that alert (raw.alert_occurrences, keyed by check, subject and
window, so re-running a night, or the whole demo, adds nothing) and moves its revision; a check
that evaluates a night and finds the subject quiet resolves it. Webhooks hear each revision once:
opened, "still firing (N nights)", resolved — never the same night twice, never a new critical
alert per night for one ongoing problem.

This module is the one writer of raw.alerts, raw.alert_occurrences and raw.alert_deliveries (the
web's acknowledge button calls `acknowledge`). Secrets never reach a row, a payload or a log
line: webhook URLs (which often embed a token) are referred to by webhook name only, and texts
pass the shared scrubber.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from evals.config import AlertsConfig, WebhookConfig
from evals.redact import scrub

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
MAX_AGE = timedelta(days=7)
"""A webhook added later receives alerts of the last week, not the whole history."""
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 3600.0
MAX_EXAMPLE_LINKS = 3


@dataclass(frozen=True)
class AlertDraft:
    """What a check decided: one alert, before it is written (the columns of raw.alerts)."""

    kind: str
    severity: str
    subject: str
    message: str
    statistic: str | None = None
    observed: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    example_run_ids: Sequence[uuid.UUID | str] = ()
    orchestrator_run_id: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @property
    def dedupe_key(self) -> str:
        """Same check, same subject, same window → same alert (the run that found it is not part)."""
        start = self.window_start.isoformat() if self.window_start else "-"
        end = self.window_end.isoformat() if self.window_end else "-"
        return f"{self.kind}:{self.subject}:{start}:{end}"

    @classmethod
    def from_finding(cls, finding: Any, orchestrator_run_id: str | None = None) -> AlertDraft:
        """From an `evals.drift.Finding` (its `alert_row()` has the columns of raw.alerts)."""
        row = finding.alert_row()
        return cls(
            kind=row["kind"],
            severity=row["severity"],
            subject=row["subject"],
            message=row["message"],
            statistic=row["statistic"],
            observed=row["observed"],
            expected_low=row["expected_low"],
            expected_high=row["expected_high"],
            window_start=row["window_start"],
            window_end=row["window_end"],
            evidence=row["evidence"],
            example_run_ids=tuple(row["example_run_ids"]),
            orchestrator_run_id=orchestrator_run_id,
        )


def record_alerts(conn: psycopg.Connection, drafts: Iterable[AlertDraft]) -> list[int]:
    """Record findings on the caller's psycopg connection; returns the ids of the alerts that
    were opened or moved on (a new occurrence of the newest window).

    It does not commit: call it inside the transaction that read the data and decided, so the
    decision and its alerts commit (or roll back) together. A subject that already has a firing
    alert of the same kind gets an occurrence on that alert instead of a second alert; a window
    already recorded (the same check re-run) changes nothing.
    """
    changed: list[int] = []
    for draft in drafts:
        if (
            conn.execute(
                "select from raw.alert_occurrences where dedupe_key = %s", (draft.dedupe_key,)
            ).fetchone()
            is not None
        ):
            continue
        alert_id = _update_firing(conn, draft)
        if alert_id is None:
            alert_id = _open(conn, draft)
        if alert_id is None:  # another transaction opened this incident first: join it
            alert_id = _update_firing(conn, draft)
        if alert_id is not None:
            _add_occurrence(conn, alert_id, draft)
            changed.append(alert_id)
    return changed


def resolve_cleared(
    conn: psycopg.Connection,
    kinds: Sequence[str],
    night_end: datetime,
    *,
    subject: str | None = None,
) -> list[int]:
    """Resolve the firing alerts of `kinds` that no finding renewed for the night ending at
    `night_end`: the check evaluated that night and the subject was quiet.

    Call it after `record_alerts` for that night, in the same transaction. An alert last seen
    at or after `night_end` (a re-run of an older night) is left alone. A check that watches one
    subject (one asset's quality, say) passes it, so it never resolves another check's alerts.
    """
    watched = scrub(subject) if subject else None
    rows = conn.execute(
        """
        update raw.alerts
        set status = 'resolved', resolved_at = now(), updated_at = now(), revision = revision + 1
        where status = 'firing' and kind = any(%s) and window_end < %s
            and (%s::text is null or subject = %s)
        returning alert_id
        """,
        (list(kinds), night_end, watched, watched),
    ).fetchall()
    return [row[0] for row in rows]


def _update_firing(conn: psycopg.Connection, draft: AlertDraft) -> int | None:
    """Renew the firing alert of the draft's kind and subject; its latest evidence (and the
    revision webhooks hear about) moves only when the draft's window is the newest."""
    row = conn.execute(
        """
        update raw.alerts a
        set occurrences = a.occurrences + 1,
            updated_at = now(),
            revision = a.revision + newest.is_newest::int,
            severity = case when newest.is_newest then %(severity)s else a.severity end,
            message = case when newest.is_newest then %(message)s else a.message end,
            statistic = case when newest.is_newest then %(statistic)s else a.statistic end,
            observed = case when newest.is_newest then %(observed)s else a.observed end,
            expected_low = case when newest.is_newest then %(expected_low)s else a.expected_low end,
            expected_high = case when newest.is_newest then %(expected_high)s
                else a.expected_high end,
            evidence = case when newest.is_newest then %(evidence)s::jsonb else a.evidence end,
            example_run_ids = case when newest.is_newest then %(example_run_ids)s::uuid[]
                else a.example_run_ids end,
            orchestrator_run_id = case when newest.is_newest then %(orchestrator_run_id)s
                else a.orchestrator_run_id end,
            window_end = greatest(a.window_end, %(window_end)s)
        from (
            select alert_id, coalesce(%(window_end)s >= window_end, true) as is_newest
            from raw.alerts
            where kind = %(kind)s and subject = %(subject)s and status = 'firing'
            for update
        ) as newest
        where a.alert_id = newest.alert_id
        returning a.alert_id
        """,
        _columns(draft),
    ).fetchone()
    return row[0] if row else None


def _open(conn: psycopg.Connection, draft: AlertDraft) -> int | None:
    """A new firing alert; None when another one of this kind and subject is already firing."""
    row = conn.execute(
        """
        insert into raw.alerts (
            dedupe_key, kind, severity, subject, message, statistic, observed,
            expected_low, expected_high, window_start, window_end, evidence,
            example_run_ids, orchestrator_run_id
        ) values (
            %(dedupe_key)s, %(kind)s, %(severity)s, %(subject)s, %(message)s, %(statistic)s,
            %(observed)s, %(expected_low)s, %(expected_high)s, %(window_start)s, %(window_end)s,
            %(evidence)s::jsonb, %(example_run_ids)s::uuid[], %(orchestrator_run_id)s
        )
        on conflict do nothing
        returning alert_id
        """,
        _columns(draft),
    ).fetchone()
    return row[0] if row else None


def _add_occurrence(conn: psycopg.Connection, alert_id: int, draft: AlertDraft) -> None:
    conn.execute(
        """
        insert into raw.alert_occurrences (
            dedupe_key, alert_id, severity, message, statistic, observed, window_start,
            window_end, evidence, orchestrator_run_id
        ) values (
            %(dedupe_key)s, %(alert_id)s, %(severity)s, %(message)s, %(statistic)s, %(observed)s,
            %(window_start)s, %(window_end)s, %(evidence)s::jsonb, %(orchestrator_run_id)s
        )
        on conflict (dedupe_key) do nothing
        """,
        {**_columns(draft), "alert_id": alert_id},
    )


def _columns(draft: AlertDraft) -> dict[str, Any]:
    """The draft as raw.alerts values: texts scrubbed, statistics finite, evidence strict JSON."""
    return {
        "dedupe_key": draft.dedupe_key,
        "kind": draft.kind,
        "severity": draft.severity,
        "subject": scrub(draft.subject),
        "message": scrub(draft.message),
        "statistic": draft.statistic,
        "observed": _finite(draft.observed),
        "expected_low": _finite(draft.expected_low),
        "expected_high": _finite(draft.expected_high),
        "window_start": draft.window_start,
        "window_end": draft.window_end,
        "evidence": scrub(json.dumps(_json_safe(draft.evidence), default=str, sort_keys=True)),
        "example_run_ids": [str(run_id) for run_id in draft.example_run_ids],
        "orchestrator_run_id": draft.orchestrator_run_id,
    }


def acknowledge(conn: psycopg.Connection, alert_id: int, by: str) -> bool:
    """Mark an alert acknowledged by `by`; a second acknowledgement keeps the first.

    Returns whether this call acknowledged it. Only the two acknowledgement columns change, the
    ones the web role may update.
    """
    row = conn.execute(
        "update raw.alerts set acknowledged_at = now(), acknowledged_by = %s"
        " where alert_id = %s and acknowledged_at is null returning alert_id",
        (by, alert_id),
    ).fetchone()
    return row is not None


def _json_safe(value: Any) -> Any:
    """Evidence as strict JSON: NaN and infinities (an empty mean, a zero baseline) become null."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _finite(value: float | None) -> float | None:
    """NaN/inf carry no statistic a reader can use; store them as unknown."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)


# --- the message ------------------------------------------------------------------------------


def alert_url(alerts: AlertsConfig, alert_id: int) -> str:
    return f"{alerts.base_url.rstrip('/')}/alerts/{alert_id}"


def run_url(alerts: AlertsConfig, run_id: uuid.UUID | str) -> str:
    return f"{alerts.base_url.rstrip('/')}/runs/{run_id}"


def dagster_run_url(alerts: AlertsConfig, orchestrator_run_id: str) -> str:
    return f"{alerts.dagster_url.rstrip('/')}/runs/{orchestrator_run_id}"


def _status(alert: dict[str, Any]) -> str:
    """[CRITICAL] when an alert opens, then "still firing" while later nights renew it, and
    [RESOLVED] once a night is quiet: a webhook hears each change once, never a repeat."""
    if alert.get("status") == "resolved":
        return "[RESOLVED]"
    severity = f"[{alert['severity'].upper()}]"
    occurrences = alert.get("occurrences") or 1
    return f"{severity} still firing ({occurrences} nights)" if occurrences > 1 else severity


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.4g}"


def _window(alert: dict[str, Any]) -> str:
    start, end = alert.get("window_start"), alert.get("window_end")
    if start is None and end is None:
        return "-"
    return (
        f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC" if start and end else str(start or end)
    )


def prompt_diff_path(alert: dict[str, Any]) -> str | None:
    """Where the run page diffs a version change's prompt (its first example run is one of the
    new version; the evidence names the old one), or None for any other alert."""
    against = (alert.get("evidence") or {}).get("prompt_diff_against")
    runs = list(alert.get("example_run_ids") or [])
    if not against or not runs:
        return None
    return f"/runs/{runs[0]}?{urlencode({'against': against})}#prompt"


def links(alerts: AlertsConfig, alert: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, url) pairs: the alert page, a version change's prompt diff, a few example runs,
    the Dagster run that raised it."""
    found = [("alert", alert_url(alerts, alert["alert_id"]))]
    if diff := prompt_diff_path(alert):
        found.append(("prompt diff", f"{alerts.base_url.rstrip('/')}{diff}"))
    for run_id in list(alert.get("example_run_ids") or [])[:MAX_EXAMPLE_LINKS]:
        found.append((f"run {str(run_id)[:8]}", run_url(alerts, run_id)))
    if alert.get("orchestrator_run_id"):
        found.append(("Dagster run", dagster_run_url(alerts, alert["orchestrator_run_id"])))
    return found


def slack_payload(alerts: AlertsConfig, alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack-compatible message (text + blocks) for one raw.alerts row (as a dict).

    Texts were scrubbed when the alert was written; they are scrubbed again here because a row
    may come from elsewhere (an import, a hand-written alert) and the payload leaves the house.
    """
    message = scrub(alert["message"]) or ""
    if alert.get("status") == "resolved":
        message = (
            f"Quiet again after {alert.get('occurrences') or 1} night(s). Last finding: {message}"
        )
    headline = scrub(f"{_status(alert)} {alert['kind']}: {alert['subject']}") or ""
    expected = (
        f"[{_fmt(alert.get('expected_low'))}, {_fmt(alert.get('expected_high'))}]"
        if alert.get("expected_low") is not None or alert.get("expected_high") is not None
        else "-"
    )
    link_pairs = links(alerts, alert)
    fields = [
        ("Statistic", alert.get("statistic") or "-"),
        ("Observed", _fmt(alert.get("observed"))),
        ("Expected", expected),
        ("Window", _window(alert)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": message[:2900]}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in fields],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": " · ".join(f"<{url}|{label}>" for label, url in link_pairs),
                }
            ],
        },
    ]
    return {"text": f"{headline} — {message} ({link_pairs[0][1]})", "blocks": blocks}


# --- delivery ---------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What one delivery pass did, per outcome (webhook names only, never URLs)."""

    delivered: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.delivered)} delivered, {len(self.failed)} failed"


Poster = Callable[[str, dict[str, Any], dict[str, str], float], int]
"""(url, json payload, headers, timeout_s) -> HTTP status; raises on a transport error."""


def post_json(url: str, payload: dict[str, Any], headers: dict[str, str], timeout_s: float) -> int:
    """POST with the standard library: unlike httpx, it logs nothing (httpx logs every URL at
    INFO, and a webhook URL often carries its token)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def deliver_pending(
    conn: psycopg.Connection,
    alerts: AlertsConfig,
    *,
    post: Poster = post_json,
    backoff_base_s: float = BACKOFF_BASE_S,
    max_per_webhook: int = 50,
) -> DeliveryReport:
    """Deliver every due, undelivered alert to every configured webhook; record each attempt.

    Runs on a psycopg connection in autocommit mode (each delivery is its own transaction).
    """
    report = DeliveryReport()
    for webhook in alerts.webhooks:
        _enqueue(conn, webhook.name)
        for _ in range(max_per_webhook):
            # Stop at the first failure too: a webhook that is down gets one attempt per pass.
            if not _deliver_one(conn, alerts, webhook, post, backoff_base_s, report):
                break
    _mark_fully_delivered(conn, [webhook.name for webhook in alerts.webhooks])
    return report


def _enqueue(conn: psycopg.Connection, webhook: str) -> None:
    """One delivery row per (recently changed, unacknowledged alert, webhook): the outbox of that
    webhook. A row is due while it has not received the alert's current revision."""
    conn.execute(
        """
        insert into raw.alert_deliveries (alert_id, webhook)
        select alert_id, %s from raw.alerts
        where acknowledged_at is null and coalesce(updated_at, created_at) >= now() - %s
        on conflict do nothing
        """,
        (webhook, MAX_AGE),
    )


def _deliver_one(
    conn: psycopg.Connection, alerts, webhook: WebhookConfig, post, backoff_base_s, report
) -> bool:
    """Claim, post and settle one due delivery of `webhook`; True only when it was delivered.

    The row lock is held while posting, so no other deliverer can send the same alert to the
    same webhook; a row retried too recently (exponential backoff on its attempts) is not due.
    """
    from psycopg.rows import dict_row

    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        claimed = cur.execute(
            """
            select a.* from raw.alert_deliveries d join raw.alerts a using (alert_id)
            where d.webhook = %s and d.delivered_revision < a.revision
              and (d.last_error is null or d.last_attempt_at + make_interval(
                   secs => least(%s * power(2, greatest(d.attempts - 1, 0)), %s)) <= now())
            order by a.alert_id
            limit 1
            for update of d skip locked
            """,
            (webhook.name, backoff_base_s, BACKOFF_MAX_S),
        ).fetchone()
        if claimed is None:
            return False
        error = _post(alerts, webhook, claimed, post)
        cur.execute(
            """
            update raw.alert_deliveries
            set attempts = attempts + 1, last_attempt_at = now(), last_error = %s,
                delivered_at = case when %s::text is null then now() else delivered_at end,
                delivered_revision = case when %s::text is null then %s
                    else delivered_revision end
            where alert_id = %s and webhook = %s
            """,
            (error, error, error, claimed["revision"], claimed["alert_id"], webhook.name),
        )
        cur.execute(
            "update raw.alerts set delivery_attempts = delivery_attempts + 1 where alert_id = %s",
            (claimed["alert_id"],),
        )
    if error is None:
        report.delivered.append((claimed["alert_id"], webhook.name))
        log.info("alert %s delivered to webhook %s", claimed["alert_id"], webhook.name)
    else:
        report.failed.append((claimed["alert_id"], webhook.name, error))
        log.warning("alert %s to webhook %s failed: %s", claimed["alert_id"], webhook.name, error)
    return error is None


def _post(
    alerts: AlertsConfig, webhook: WebhookConfig, alert: dict[str, Any], post: Poster
) -> str | None:
    """None on a 2xx, else a short secret-free reason (never the URL, which may hold a token)."""
    url = webhook.resolved_url()
    if not url:
        return f"webhook URL unset (environment variable {webhook.url_env})"
    headers = {"Idempotency-Key": f"evalhouse-alert-{alert['alert_id']}-r{alert['revision']}"}
    try:
        status = post(url, slack_payload(alerts, alert), headers, webhook.timeout_s)
    except Exception as exc:  # any transport failure is retried on a later tick
        return f"{type(exc).__name__}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def _mark_fully_delivered(conn: psycopg.Connection, webhooks: Sequence[str]) -> None:
    """raw.alerts.delivered_at: the moment the last configured webhook received the alert."""
    if not webhooks:
        return
    conn.execute(
        """
        update raw.alerts a set delivered_at = sub.last_delivery
        from (
            select alert_id, max(delivered_at) as last_delivery
            from raw.alert_deliveries
            where webhook = any(%s)
            group by alert_id
            having count(delivered_at) = %s
        ) sub
        where a.alert_id = sub.alert_id and a.delivered_at is null
        """,
        (list(webhooks), len(set(webhooks))),
    )


# --- erasure ----------------------------------------------------------------------------------

ERASED = "[erased]"
_ERASABLE = {"alerts": "alert_id", "alert_occurrences": "dedupe_key"}


def erase_run_mentions(conn: psycopg.Connection, mentions: Sequence[str] = ()) -> int:
    """Take the runs of the erasure set (`evals.runlog.ERASURE_SET`) out of alert examples, and
    every evidence value equal to one of `mentions` (a subject's id, erased run ids) out of the
    evidence of alerts and occurrences; returns the rows changed. The alert itself stays: it is
    a decision about a stage, not about a learner."""
    from evals.runlog import ERASURE_SET

    changed = {
        ("alerts", row[0])
        for row in conn.execute(
            f"""
            update raw.alerts set example_run_ids = array(
                select run_id from unnest(example_run_ids) as run_id
                where run_id not in (select run_id from {ERASURE_SET})
            )
            where example_run_ids && array(select run_id from {ERASURE_SET})
            returning alert_id
            """
        )
    }
    needles = sorted(set(mentions))
    quoted = [json.dumps(needle, ensure_ascii=False) for needle in needles]
    for table, key in _ERASABLE.items() if needles else ():
        rows = conn.execute(
            f"select {key}, evidence from raw.{table} where exists ("
            " select from unnest(%s::text[]) as needle"
            " where strpos(evidence::text, needle) > 0)",
            (quoted,),
        ).fetchall()
        for row_key, evidence in rows:
            cleaned = _without(evidence, set(needles))
            if cleaned != evidence:
                conn.execute(
                    f"update raw.{table} set evidence = %s where {key} = %s",
                    (json.dumps(cleaned), row_key),
                )
                changed.add((table, row_key))
    return len(changed)


def _without(value: Any, needles: set[str]) -> Any:
    """Evidence with values equal to a needle gone: dropped from lists, replaced in objects."""
    if isinstance(value, dict):
        return {
            ERASED if key in needles else key: ERASED
            if isinstance(item, str) and item in needles
            else _without(item, needles)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without(item, needles) for item in value if item not in needles]
    return value
