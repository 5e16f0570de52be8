"""The alert sensors.

`alert_delivery` is the outbox's deliverer: each tick posts every due, undelivered alert to
every configured webhook (`evals.alerts.deliver_pending`), so a webhook that was down gets the
alert on a later tick, with every attempt recorded, and never twice. It launches no runs: the
work is a few HTTP posts, cheaper than a run's start-up.
`run_failure_alerts` writes an alert when any run of this code location fails, so a broken
nightly job is as loud as the drift it would have caught.
"""

import dagster as dg

from evals.alerts import AlertDraft, deliver_pending, record_alerts
from orchestration.lib.resources import EvalhouseResource

DELIVERY_INTERVAL_S = 30


@dg.sensor(
    name="alert_delivery",
    minimum_interval_seconds=DELIVERY_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Deliver undelivered alerts (raw.alerts) to every webhook in evalhouse.yaml.",
)
def alert_delivery(context: dg.SensorEvaluationContext, evalhouse: EvalhouseResource):
    """Post due alerts to each webhook; failures are retried on later ticks with backoff."""
    config = evalhouse.config
    if not config.alerts.webhooks:
        return dg.SkipReason("no webhooks configured under alerts.webhooks")
    with evalhouse.connect(autocommit=True) as conn:
        report = deliver_pending(conn, config.alerts)
    for alert_id, webhook, error in report.failed:
        context.log.warning(f"alert {alert_id} → webhook {webhook}: {error} (retried later)")
    return dg.SkipReason(f"delivery: {report.summary()}")


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Write a critical alert for every failed run (delivered like any other alert).",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, evalhouse: EvalhouseResource):
    """One alert per failed run, linking the Dagster run page."""
    run = context.dagster_run
    error = context.failure_event.message or "run failed"
    started = context.instance.get_run_record_by_id(run.run_id)
    start_time = started.start_time if started else None
    draft = AlertDraft(
        kind="run_failure",
        severity="critical",
        subject=f"job {run.job_name} run {run.run_id[:8]}",
        message=f"Dagster run {run.run_id} of job {run.job_name} failed: {error}",
        window_start=_utc(start_time),
        window_end=_utc(started.end_time if started else None),
        evidence={"job": run.job_name, "run_id": run.run_id, "tags": dict(run.tags)},
        orchestrator_run_id=run.run_id,
    )
    with evalhouse.connect() as conn, conn.transaction():
        record_alerts(conn, [draft])


def _utc(timestamp: float | None):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None
