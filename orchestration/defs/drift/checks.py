"""Drift checks on the marts: the statistics of `evals.drift`, run as Dagster asset checks.

Every series a check builds is keyed by its comparability epoch (model, prompt version, suite
and suite version; `evals.drift.epochs`): a rollout starts a new series instead of reading as
drift, and `version_change_effect` judges the rollout itself.

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
from typing import Any, TypeVar

import dagster as dg
from psycopg.rows import dict_row

from evals import drift
from evals.alerts import AlertDraft
from evals.config import Config
from orchestration.lib.alerting import check_result, run_id_of
from orchestration.lib.resources import EvalhouseResource

PASS_RATE_SOURCES = ("production",)
EXAMPLES_PER_FINDING = 3
K = TypeVar("K")


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
    examples: Callable[[Any, drift.Finding], list[str]] | None = None,
) -> dg.AssetCheckResult:
    """Read the mart, run `detect` for each night, record alerts, summarise as a check result."""
    config = evalhouse.load()
    with evalhouse.connect() as conn, conn.transaction():
        rows = conn.cursor(row_factory=dict_row).execute(query).fetchall()
        latest = max((row["day"] for row in rows), default=None)
        nights = nights_of(context, latest)
        findings: list[drift.Finding] = []
        for night in nights:
            findings.extend(detect(rows, config, night))
        drafts = [
            AlertDraft.from_finding(
                finding.with_examples(examples(conn, finding)) if examples else finding,
                orchestrator_run_id=run_id_of(context),
            )
            for finding in findings
        ]
        return check_result(
            conn,
            drafts,
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


def _series(rows: list[dict], key: Callable[[dict], K], n: str, successes: str,
            as_of: date) -> dict[K, drift.DailyCounts]:
    grouped: dict[K, list[dict]] = defaultdict(list)
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
select run_date as day, stage, model, prompt_version, suite, suite_version,
       sum(n_verdicts)::bigint as n, sum(n_passed)::bigint as passes
from marts.fct_stage_daily
where source in ({", ".join(f"'{s}'" for s in PASS_RATE_SOURCES)}) and role <> 'judge'
  and stage is not null
group by run_date, stage, model, prompt_version, suite, suite_version
"""


def _stage_series(rows: list[dict], night: date) -> dict[drift.SeriesKey, drift.DailyCounts]:
    """One series per stage and epoch: a rollout starts a new one."""
    return _series(rows, lambda r: drift.SeriesKey(r["stage"], drift.Epoch.of(r)), "n", "passes",
                   night)


def _stage_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    series = _stage_series(rows, night)
    if not series:
        return []
    return [
        *drift.detect_pass_rate_shifts(series, config.drift, as_of=night),
        *drift.detect_band_violations(series, config.drift, as_of=night),
    ]


_SERIES_ROWS = (
    "source = 'production' and stage = %s and model is not distinct from %s"
    " and prompt_version is not distinct from %s and suite is not distinct from %s"
    " and suite_version is not distinct from %s"
)


_EPOCH_COLUMNS = ("model", "prompt_version", "suite", "suite_version")


def _series_params(series: dict) -> tuple:
    return (series["stage"], *(series[name] for name in _EPOCH_COLUMNS))


def _stage_examples(conn, finding: drift.Finding) -> list[str]:
    failing = "passed is false" if finding.observed < (finding.expected_low or 0) else "passed"
    return _example_runs(conn, finding, f"{_SERIES_ROWS} and {failing}",
                         _series_params(finding.evidence["series"]))


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
                     examples=_stage_examples)


# --- version changes ----------------------------------------------------------------------------


def _version_change_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    return drift.detect_version_changes(_stage_series(rows, night), config.drift, as_of=night)


def _version_change_examples(conn, finding: drift.Finding) -> list[str]:
    """Runs of the new version: the first is where the alert's prompt diff opens."""
    after = finding.evidence["after"]
    stage = finding.evidence["lineage"].removeprefix("stage=")
    series = {"stage": stage, **{name: after[name] for name in _EPOCH_COLUMNS}}
    return _example_runs(conn, finding, _SERIES_ROWS, _series_params(series))


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_stage_daily"]),
    name="version_change_effect",
    description=(
        "A stage's production pass rate under a new prompt version, model or suite version vs "
        "the version before it (score test, Bonferroni over stages): a rollout that moves the "
        "rate is reported once, with both rates and the prompt diff."
    ),
)
def version_change_effect(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """The effect of each version change on its stage's pass rate, tested once per change."""
    return _evaluate(context, evalhouse, query=_STAGE_DAILY, detect=_version_change_findings,
                     examples=_version_change_examples)


# --- judge vs human agreement ----------------------------------------------------------------

_AGREEMENT_WEEKLY = """
select week_start as day, model, prompt_version, suite, suite_version,
       sum(n)::bigint as n, sum(n_agree)::bigint as agree
from marts.fct_verdict_agreement_weekly
where reference = 'human_consensus'
group by week_start, model, prompt_version, suite, suite_version
"""


def _judge_subject(row: dict) -> str:
    """`judge=<model> prompt=… suite=…`: the judge within one epoch (a judge upgrade is a new
    series, not agreement drift)."""
    parts = drift.Epoch.of(row).parts()
    parts.pop("model", None)
    return " ".join([f"judge={row['model']}", *(f"{key}={value}" for key, value in parts.items())])


def _agreement_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    findings = []
    for subject, series in _series(rows, _judge_subject, "n", "agree", night).items():
        findings.extend(drift.detect_agreement_drift(series, config.drift, subject=subject, as_of=night))
    return findings


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_verdict_agreement_weekly"]),
    name="judge_agreement_drift",
    description=(
        "Verdict agreement with the human consensus, per judge model and prompt version: "
        "confidently below drift.min_agreement, or significantly below its own baseline "
        "(weekly points)."
    ),
)
def judge_agreement_drift(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Agreement below threshold or dropping, per model."""
    return _evaluate(context, evalhouse, query=_AGREEMENT_WEEKLY, detect=_agreement_findings)


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


# The versions of each night's golden batch per model and suite (the judge's where a judge
# grades the answers); a night that mixes versions lists them all, an epoch of its own.
_GOLDEN_NIGHT_EPOCHS = """
select substring(r.batch_id from '^golden:([0-9]{4}-[0-9]{2}-[0-9]{2})')::date as day,
       coalesce(p.model, r.model) as model, r.suite,
       string_agg(distinct coalesce(p.prompt_version, r.prompt_version), ',') as prompt_version,
       string_agg(distinct r.suite_version, ',') as suite_version,
       string_agg(distinct case when p.run_id is not null
                  then r.model || ' ' || coalesce(r.prompt_version, '∅') end, ',') as judge
from marts.fct_eval_runs r
left join marts.fct_eval_runs p on p.run_id = r.parent_run_id
where r.source = 'golden' and r.batch_id ~ '^golden:[0-9]{4}-[0-9]{2}-[0-9]{2}$'
group by 1, 2, 3
"""

# Each golden item's outcome (as the regression check defines it) with its night's epoch.
_GOLDEN_ITEM_EPOCHS = f"""
select items.day, items.model, items.suite, items.item_id, items.correct,
       epochs.prompt_version, epochs.suite_version, epochs.judge
from ({_GOLDEN_ITEMS}) as items
join ({_GOLDEN_NIGHT_EPOCHS}) as epochs using (day, model, suite)
"""


def _golden_version_change_findings(rows: list[dict], config: Config,
                                    night: date) -> list[drift.Finding]:
    """A golden night whose epoch differs from the previous night of its model and suite: the
    same items graded under both versions, compared pair by pair (exact McNemar)."""
    nights: dict[tuple[str, str], dict[date, tuple[drift.Epoch, dict[str, bool]]]] = (
        defaultdict(dict))
    for row in rows:
        _, outcomes = nights[(row["model"], row["suite"])].setdefault(
            row["day"], (drift.Epoch.of(row), {}))
        outcomes[row["item_id"]] = row["correct"]
    findings = []
    for by_day in (nights[key] for key in sorted(nights)):
        earlier = [day for day in by_day if day < night]
        if night not in by_day or not earlier:
            continue
        previous = max(earlier)
        (before, old), (after, new) = by_day[previous], by_day[night]
        if before == after:
            continue
        change = drift.VersionChange(
            lineage="golden", before=before, after=after, before_start=previous,
            before_end=previous, first_day=night, test_day=night, before_n=len(old),
            before_passes=sum(old.values()), after_n=len(new), after_passes=sum(new.values()),
        )
        common = sorted(set(old) & set(new))
        finding = drift.version_change_finding(
            change, config.drift, series_watched=len(nights),
            paired=[(old[item], new[item]) for item in common],
        )
        if finding is not None:
            findings.append(finding)
    return findings


def _golden_version_change_examples(conn, finding: drift.Finding) -> list[str]:
    """Graded runs of the new night under the new prompt: the first opens the prompt diff."""
    after = finding.evidence["after"]
    rows = conn.execute(
        "select run_id from raw.eval_runs where batch_id = %s and model = %s and suite = %s"
        " and prompt_version = %s order by item_id limit %s",
        (f"golden:{finding.window_end.isoformat()}", after["model"], after["suite"],
         after["prompt_version"], EXAMPLES_PER_FINDING),
    ).fetchall()
    return [str(row[0]) for row in rows]


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_eval_runs"]),
    name="golden_version_change_effect",
    description=(
        "Golden accuracy per model and suite across a version change (prompt, suite version, "
        "judge) between two nights: the same items paired, exact McNemar."
    ),
)
def golden_version_change_effect(context: dg.AssetCheckExecutionContext,
                                 evalhouse: EvalhouseResource):
    """The effect of a version change on golden accuracy, item by item."""
    return _evaluate(context, evalhouse, query=_GOLDEN_ITEM_EPOCHS,
                     detect=_golden_version_change_findings,
                     examples=_golden_version_change_examples)


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
                     examples=_golden_examples)


# --- cost and latency -------------------------------------------------------------------------

_COST_DAILY = """
select run_date as day, model, prompt_version, source, role,
       sum(cost_usd) / nullif(sum(n_calls), 0) as cost_per_call
from marts.fct_model_cost_daily
group by run_date, model, prompt_version, source, role
"""

_LATENCY_DAILY = """
select run_date as day, model, prompt_version, suite, suite_version, source, role,
       latency_p95_ms
from marts.fct_trend_daily
"""


def _spike_findings(value: str, detector) -> Callable[[list[dict], Config, date], list[drift.Finding]]:
    def detect(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
        by_subject: dict[str, dict[date, float]] = defaultdict(dict)
        for row in rows:
            if row[value] is not None:
                epoch = drift.Epoch.of(row).label()
                subject = f"{epoch} source={row['source']} role={row['role']}"
                by_subject[subject][row["day"]] = float(row[value])
        findings = []
        for subject, points in sorted(by_subject.items()):
            if night in points:
                findings.extend(detector(points, config.drift, subject=subject, as_of=night))
        return findings

    return detect


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_model_cost_daily"]),
    name="cost_spike",
    description=(
        "Cost per call per model, prompt version, source and role against its trailing median."
    ),
)
def cost_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily cost-per-call spikes."""
    return _evaluate(context, evalhouse, query=_COST_DAILY,
                     detect=_spike_findings("cost_per_call", drift.detect_cost_spike))


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_trend_daily"]),
    name="latency_spike",
    description=(
        "Latency p95 per model, prompt and suite version, source and role against its trailing "
        "median."
    ),
)
def latency_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily latency p95 spikes."""
    return _evaluate(context, evalhouse, query=_LATENCY_DAILY,
                     detect=_spike_findings("latency_p95_ms", drift.detect_latency_spike))


DRIFT_CHECKS = [
    stage_pass_rate_drift,
    version_change_effect,
    judge_agreement_drift,
    golden_accuracy_regression,
    golden_version_change_effect,
    cost_spike,
    latency_spike,
]
