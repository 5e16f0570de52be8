"""The Great Expectations suite of `evals.quality` as a Dagster check on a daily run-log asset.

One factory, so the production and golden partitions are held to the same suite. The check is
partitioned like its asset (else it would load every partition); in a single-run backfill it
validates each day of the range. Failing days of one asset are one alert that each further
failing day renews and the first passing day resolves.
"""

from datetime import date

import dagster as dg

from evals.alerts import AlertDraft
from evals.quality import QualityReport, load_batch, load_day, validate_day
from orchestration.lib.alerting import check_result, day_alert, run_id_of
from orchestration.lib.partitions import DAILY, days_of
from orchestration.lib.resources import EvalhouseResource

QUALITY_KIND = "run_log_quality"


def run_log_quality_check(
    asset: dg.AssetsDefinition | dg.AssetKey,
    sources: tuple[str, ...] = ("production",),
    golden_model: str | None = None,
) -> dg.AssetChecksDefinition:
    """A check named `run_log_quality` on `asset`: each day's rows of `sources` by start time,
    or, for `golden_model`, the night's golden batch (`golden:<day>`) of that model."""
    asset_key = asset.key if isinstance(asset, dg.AssetsDefinition) else asset
    label = asset_key.to_user_string()

    @dg.asset_check(
        asset=asset,
        name="run_log_quality",
        partitions_def=DAILY,
        description=(
            f"Great Expectations on each day of {label}: schema, nulls, value ranges, status "
            "shares, parse-error and failure rates, cost ≥ 0, sane latency."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
        config = evalhouse.config
        drafts: dict[date, list] = {}
        per_day = {}
        with evalhouse.connect() as conn, conn.transaction():
            for day in days_of(context):
                if golden_model is None:
                    report = validate_day(load_day(conn, day, sources), day, config.drift)
                else:
                    rows = load_batch(conn, f"golden:{day.isoformat()}", golden_model)
                    report = validate_day(rows, day, config.drift, dated_by_day=False)
                per_day[day.isoformat()] = {
                    "rows": report.rows,
                    "failed": report.describe_failures(),
                }
                drafts[day] = (
                    [] if report.passed else [_failing_day(report, label, run_id_of(context))]
                )
            failing = sum(1 for day_drafts in drafts.values() if day_drafts)
            return check_result(
                conn,
                drafts,
                kinds=[QUALITY_KIND],
                subject=label,
                alerts=config.alerts,
                metadata={"days": dg.MetadataValue.json(per_day)},
                description=f"{len(per_day) - failing}/{len(per_day)} days pass",
            )

    return _check


def _failing_day(report: QualityReport, label: str, orchestrator_run_id: str) -> AlertDraft:
    """The alert of one day that fails the suite, with each failed expectation as evidence."""
    return day_alert(
        QUALITY_KIND,
        label,
        report.day,
        f"{report.rows} rows of {label} on {report.day} fail the quality suite: "
        f"{report.describe_failures()}",
        severity="warning",
        statistic="failed_expectations",
        observed=float(len(report.failures)),
        expected_low=0.0,
        expected_high=0.0,
        evidence={
            "failures": [vars(o) for o in report.failures],
            "rows": report.rows,
        },
        example_run_ids=report.example_run_ids,
        orchestrator_run_id=orchestrator_run_id,
    )
