"""Drift checks on the marts: the statistics of `evals.drift`, run as Dagster asset checks.

Each check reads one mart with a query of queries/ (marts named by `ref`, resolved from the dbt
manifest by `evals.marts`; the checks are the dbt exposure `drift_checks`), builds the series its
detector expects, asks the detector about every night the run covers (one night for the
schedule, every night of the range for a single-run backfill, the newest night of the data
otherwise) and writes one alert per finding in the transaction that read the mart. Alerts are deduplicated by (check, subject, window), so
re-running a night adds nothing. Checks fail with WARN or ERROR severity by the worst finding;
none is blocking: a drift alarm must not stop the marts from refreshing. Each check is declared
on a mart by model name; `DriftCheck.on` attaches it to that model's asset key as the dbt
manifest makes it.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from psycopg.rows import dict_row

from evals import drift
from evals.alerts import AlertDraft
from evals.config import Config
from evals.marts import load_query
from orchestration.lib.alerting import check_result, run_id_of
from orchestration.lib.partitions import days_of
from orchestration.lib.resources import EvalhouseResource

QUERIES = Path(__file__).with_name("queries")
EXAMPLES_PER_FINDING = 3


@dataclass(frozen=True)
class DriftCheck:
    """A drift check on a mart named by its dbt model; its asset key comes from the manifest."""

    mart: str
    description: str
    evaluate: Callable[..., dg.AssetCheckResult]

    def on(self, warehouse: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
        """The check, attached to the mart's asset among the dbt assets `warehouse`."""
        return dg.asset_check(
            asset=get_asset_key_for_model([warehouse], self.mart),
            name=self.evaluate.__name__,
            description=self.description,
        )(self.evaluate)


def drift_check(mart: str, description: str) -> Callable[[Callable], DriftCheck]:
    return lambda evaluate: DriftCheck(mart, description, evaluate)


def _evaluate(
    context: dg.AssetCheckExecutionContext,
    evalhouse: EvalhouseResource,
    *,
    query: str,
    detect: Callable[[list[dict], Config, date], list[drift.Finding]],
    kinds: tuple[str, ...],
    examples: Callable[[Any, drift.Finding], list[str]] | None = None,
) -> dg.AssetCheckResult:
    """Read the mart with queries/<query>.sql, run `detect` for each night, record alerts
    night by night (renewing or resolving the open alerts of `kinds`), summarise as a check
    result."""
    config = evalhouse.config
    sql = load_query(QUERIES / f"{query}.sql")
    with evalhouse.connect() as conn, conn.transaction():
        rows = conn.cursor(row_factory=dict_row).execute(sql).fetchall()
        latest = max((row["day"] for row in rows), default=None)
        # the run's nights (one, or a backfill's range); else the newest night with data
        nights = days_of(context) or ([latest] if latest else [])
        findings_by_night = {night: detect(rows, config, night) for night in nights}
        findings = [finding for night in nights for finding in findings_by_night[night]]
        drafts = {
            night: [
                AlertDraft.from_finding(
                    finding.with_examples(examples(conn, finding)) if examples else finding,
                    orchestrator_run_id=run_id_of(context),
                )
                for finding in night_findings
            ]
            for night, night_findings in findings_by_night.items()
        }
        return check_result(
            conn,
            drafts,
            kinds=kinds,
            alerts=config.alerts,
            metadata={
                "nights": dg.MetadataValue.json([n.isoformat() for n in nights]),
                "mart_rows": len(rows),
                "findings": dg.MetadataValue.json(
                    [f"{f.window_end} {f.kind} {f.subject}: {f.observed:.4g}" for f in findings]
                ),
            },
            description=f"{len(findings)} finding(s) over {len(nights)} night(s)",
        )


def _series(rows: list[dict], key: Callable[[dict], str], n: str, successes: str,
            as_of: date) -> dict[str, drift.DailyCounts]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["day"] <= as_of:
            grouped[key(row)].append(row)
    return {
        subject: drift.DailyCounts.from_rows(group, n=n, successes=successes, as_of=as_of)
        for subject, group in grouped.items()
    }


def _example_runs(conn, finding: drift.Finding, where: str, params: tuple) -> list[str]:
    """A few rows of the finding's window to open from the alert."""
    alert = finding.alert_row()
    rows = conn.execute(
        f"select run_id from raw.eval_runs where started_at >= %s and started_at < %s and {where}"
        f" order by started_at desc limit {EXAMPLES_PER_FINDING}",
        (alert["window_start"], alert["window_end"], *params),
    ).fetchall()
    return [str(row[0]) for row in rows]


# --- stage pass rates -----------------------------------------------------------------------


def _stage_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    series = _series(rows, lambda r: r["stage"], "n", "passes", night)
    if not series:
        return []
    return [
        *drift.detect_pass_rate_shifts(series, config.drift, as_of=night),
        *drift.detect_band_violations(series, config.drift, as_of=night),
    ]


def _stage_examples(conn, finding: drift.Finding) -> list[str]:
    stage = finding.subject.removeprefix("stage=")
    failing = "passed is false" if finding.observed < (finding.expected_low or 0) else "passed"
    return _example_runs(
        conn, finding, f"source = 'production' and stage = %s and {failing}", (stage,)
    )


@drift_check(
    mart="fct_stage_daily",
    description=(
        "Each stage's production pass rate: significantly different from its trailing baseline "
        "(pooled recent window, Bonferroni over stages) or confidently outside its band "
        "(too easy / stalling)."
    ),
)
def stage_pass_rate_drift(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Pass-rate shifts and band violations per stage, per night."""
    return _evaluate(context, evalhouse, query="stage_daily", detect=_stage_findings,
                     kinds=("pass_rate_shift", "pass_rate_too_easy", "pass_rate_stalling"),
                     examples=_stage_examples)


# --- judge vs human agreement ----------------------------------------------------------------


def _agreement_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    watched = _series(rows, lambda r: f"judge={r['model']}", "n", "agree", night)
    findings = []
    for subject, series in watched.items():
        findings.extend(drift.detect_agreement_drift(
            series, config.drift, subject=subject, as_of=night, series_watched=len(watched)))
    return findings


@drift_check(
    mart="fct_verdict_agreement_weekly",
    description=(
        "Verdict agreement with the human consensus, per model: confidently below "
        "drift.min_agreement, or significantly below its own baseline (weekly points)."
    ),
)
def judge_agreement_drift(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Agreement below threshold or dropping, per model."""
    return _evaluate(context, evalhouse, query="agreement_weekly", detect=_agreement_findings,
                     kinds=("agreement_below_threshold", "agreement_drop"))


# --- golden accuracy night over night ---------------------------------------------------------


def _golden_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    outcomes: dict[tuple[str, str], dict[date, dict[str, bool]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        outcomes[(row["model"], row["suite"])][row["day"]][row["item_id"]] = row["correct"]
    findings = []
    for (model, suite), by_day in sorted(outcomes.items()):
        earlier = [day for day in by_day if day < night]
        if night not in by_day or not earlier:
            continue
        previous = max(earlier)
        findings.extend(
            drift.detect_golden_regression(
                by_day[previous], by_day[night], config.drift,
                subject=f"model={model} suite={suite}", previous_day=previous, current_day=night,
            )
        )
    return findings


def _golden_examples(conn, finding: drift.Finding) -> list[str]:
    items = finding.evidence.get("regressed_items", [])[:EXAMPLES_PER_FINDING]
    if not items:
        return []
    model = finding.subject.split()[0].removeprefix("model=")
    rows = conn.execute(
        "select run_id from raw.eval_runs where batch_id = %s and model = %s and item_id = any(%s)",
        (f"golden:{finding.window_end.isoformat()}", model, items),
    ).fetchall()
    return [str(row[0]) for row in rows][:EXAMPLES_PER_FINDING]


@drift_check(
    mart="fct_eval_runs",
    description=(
        "Golden accuracy per model and suite, night over night on the same items: a drop above "
        "drift.max_golden_accuracy_drop that is significant (exact McNemar)."
    ),
)
def golden_accuracy_regression(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Night-over-night golden accuracy regressions."""
    return _evaluate(context, evalhouse, query="golden_items", detect=_golden_findings,
                     kinds=("golden_regression",), examples=_golden_examples)


# --- cost and latency -------------------------------------------------------------------------


def _spike_findings(value: str, detector) -> Callable[[list[dict], Config, date], list[drift.Finding]]:
    def detect(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
        by_subject: dict[str, dict[date, float]] = defaultdict(dict)
        for row in rows:
            if row[value] is not None:
                subject = f"model={row['model']} source={row['source']} role={row['role']}"
                by_subject[subject][row["day"]] = float(row[value])
        watched = {subject: points for subject, points in by_subject.items() if night in points}
        findings = []
        for subject, points in sorted(watched.items()):
            findings.extend(detector(points, config.drift, subject=subject, as_of=night,
                                     series_watched=len(watched)))
        return findings

    return detect


@drift_check(
    mart="fct_model_cost_daily",
    description="Cost per call per model, source and role against its trailing median.",
)
def cost_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily cost-per-call spikes."""
    return _evaluate(context, evalhouse, query="cost_daily",
                     detect=_spike_findings("cost_per_call", drift.detect_cost_spike),
                     kinds=("cost_spike",))


@drift_check(
    mart="fct_trend_daily",
    description="Latency p95 per model, source and role against its trailing median.",
)
def latency_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily latency p95 spikes."""
    return _evaluate(context, evalhouse, query="latency_daily",
                     detect=_spike_findings("latency_p95_ms", drift.detect_latency_spike),
                     kinds=("latency_spike",))


DRIFT_CHECKS = [
    stage_pass_rate_drift,
    judge_agreement_drift,
    golden_accuracy_regression,
    cost_spike,
    latency_spike,
]
