"""Alerts: deliver the outbox to webhooks; turn failed Dagster runs into alerts."""

import dagster as dg

from orchestration.defs.alerts import sensors


def build_defs() -> dg.Definitions:
    return dg.Definitions(sensors=[sensors.alert_delivery, sensors.run_failure_alerts])
