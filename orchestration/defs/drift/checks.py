"""Drift checks on the marts: the statistics of `evals.drift`, run as Dagster asset checks.

Each check reads one mart, builds the series its detector expects, asks the detector about
every night the run covers (one night for the schedule, every night of the range for a
single-run backfill, the newest night of the data otherwise) and writes one alert per finding
in the transaction that read the mart. Alerts are deduplicated by (check, subject, window), so
re-running a night adds nothing. Checks fail with WARN or ERROR severity by the worst finding;
none is blocking: a drift alarm must not stop the marts from refreshing.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import dagster as dg
from psycopg.rows import dict_row

from evals import drift
from evals.alerts import AlertDraft
from evals.config import Config
from orchestration.lib.alerting import check_result, run_id_of
from orchestration.lib.resources import EvalhouseResource

PASS_RATE_SOURCES = ("production",)
EXAMPLES_PER_FINDING = 3


def nights_of(context: dg.AssetCheckExecutionContext, latest: date | None) -> list[date]:
    """The nights a run covers, from its partition tags; else the newest night with data."""
    tags = context.run.tags
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start and end:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if partition := tags.get("dagster/partition"):
        return [date.fromisoformat(partition)]
    return [latest] if latest else []


def _evaluate(
    context: dg.AssetCheckExecutionContext,
    evalhouse: EvalhouseResource,
    *,
    query: str,
    detect: Callable[[list[dict], Config, date], list[drift.Finding]],
    kinds: tuple[str, ...],
    examples: Callable[[Any, drift.Finding], list[str]] | None = None,
) -> dg.AssetCheckResult:
    """Read the mart, run `detect` for each night, record alerts night by night (renewing or
    resolving the open alerts of `kinds`), summarise as a check result."""
    config = evalhouse.load()
    with evalhouse.connect() as conn, conn.transaction():
        rows = conn.cursor(row_factory=dict_row).execute(query).fetchall()
        latest = max((row["day"] for row in rows), default=None)
        nights = nights_of(context, latest)
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

_STAGE_DAILY = f"""
select run_date as day, stage, sum(n_verdicts)::bigint as n, sum(n_passed)::bigint as passes
from marts.fct_stage_daily
where source in ({", ".join(f"'{s}'" for s in PASS_RATE_SOURCES)}) and role <> 'judge'
  and stage is not null
group by run_date, stage
"""


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


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_stage_daily"]),
    name="stage_pass_rate_drift",
    description=(
        "Each stage's production pass rate: significantly different from its trailing baseline "
        "(pooled recent window, Bonferroni over stages) or confidently outside its band "
        "(too easy / stalling)."
    ),
)
def stage_pass_rate_drift(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Pass-rate shifts and band violations per stage, per night."""
    return _evaluate(context, evalhouse, query=_STAGE_DAILY, detect=_stage_findings,
                     kinds=("pass_rate_shift", "pass_rate_too_easy", "pass_rate_stalling"),
                     examples=_stage_examples)


# --- judge vs human agreement ----------------------------------------------------------------

_AGREEMENT_WEEKLY = """
select week_start as day, model, sum(n)::bigint as n, sum(n_agree)::bigint as agree
from marts.fct_verdict_agreement_weekly
where reference = 'human_consensus'
group by week_start, model
"""


def _agreement_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    watched = _series(rows, lambda r: f"judge={r['model']}", "n", "agree", night)
    findings = []
    for subject, series in watched.items():
        findings.extend(drift.detect_agreement_drift(
            series, config.drift, subject=subject, as_of=night, series_watched=len(watched)))
    return findings


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_verdict_agreement_weekly"]),
    name="judge_agreement_drift",
    description=(
        "Verdict agreement with the human consensus, per model: confidently below "
        "drift.min_agreement, or significantly below its own baseline (weekly points)."
    ),
)
def judge_agreement_drift(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Agreement below threshold or dropping, per model."""
    return _evaluate(context, evalhouse, query=_AGREEMENT_WEEKLY, detect=_agreement_findings,
                     kinds=("agreement_below_threshold", "agreement_drop"))


# --- golden accuracy night over night ---------------------------------------------------------

# A night's golden runs are batch `golden:<day>`: a backfill runs past nights today, so the
# night is read from the batch, not from the clock.
_GOLDEN_ITEMS = """
select substring(r.batch_id from '^golden:([0-9]{4}-[0-9]{2}-[0-9]{2})')::date as day,
       coalesce(p.model, r.model) as model, r.suite, r.item_id, bool_and(r.is_correct) as correct
from marts.fct_eval_runs r
left join marts.fct_eval_runs p on p.run_id = r.parent_run_id
where r.source = 'golden' and r.is_correct is not null
  and r.batch_id ~ '^golden:[0-9]{4}-[0-9]{2}-[0-9]{2}$'
group by 1, 2, 3, 4
"""


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


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_eval_runs"]),
    name="golden_accuracy_regression",
    description=(
        "Golden accuracy per model and suite, night over night on the same items: a drop above "
        "drift.max_golden_accuracy_drop that is significant (exact McNemar)."
    ),
)
def golden_accuracy_regression(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Night-over-night golden accuracy regressions."""
    return _evaluate(context, evalhouse, query=_GOLDEN_ITEMS, detect=_golden_findings,
                     kinds=("golden_regression",), examples=_golden_examples)


# --- cost and latency -------------------------------------------------------------------------

_COST_DAILY = """
select run_date as day, model, source, role,
       sum(cost_usd) / nullif(sum(n_calls), 0) as cost_per_call
from marts.fct_model_cost_daily
group by run_date, model, source, role
"""

_LATENCY_DAILY = """
select run_date as day, model, source, role, max(latency_p95_ms) as latency_p95_ms
from marts.fct_trend_daily
group by run_date, model, source, role
"""


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


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_model_cost_daily"]),
    name="cost_spike",
    description="Cost per call per model, source and role against its trailing median.",
)
def cost_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily cost-per-call spikes."""
    return _evaluate(context, evalhouse, query=_COST_DAILY,
                     detect=_spike_findings("cost_per_call", drift.detect_cost_spike),
                     kinds=("cost_spike",))


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_trend_daily"]),
    name="latency_spike",
    description="Latency p95 per model, source and role against its trailing median.",
)
def latency_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily latency p95 spikes."""
    return _evaluate(context, evalhouse, query=_LATENCY_DAILY,
                     detect=_spike_findings("latency_p95_ms", drift.detect_latency_spike),
                     kinds=("latency_spike",))


DRIFT_CHECKS = [
    stage_pass_rate_drift,
    judge_agreement_drift,
    golden_accuracy_regression,
    cost_spike,
    latency_spike,
]
