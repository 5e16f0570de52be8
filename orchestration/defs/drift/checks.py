"""Drift checks on the marts: the statistics of `evals.drift`, run as Dagster asset checks.

Every series a check builds is keyed by its comparability epoch (model, prompt version, suite
and suite version; `evals.drift.epochs`): a rollout starts a new series instead of reading as
drift, and `version_change_effect` judges the rollout itself.

Each check reads one mart with a query of queries/ (marts named by `ref`, resolved from the dbt
manifest by `evals.marts`; the checks are the dbt exposure `drift_checks`), builds the series its
detector expects, asks the detector about every night the run covers (one night for the
schedule, every night of the range for a single-run backfill, the newest night of the data
otherwise) and records its findings night by night in the transaction that read the mart (an
open alert is renewed or resolved; re-running a night adds nothing). Checks fail with WARN or ERROR severity by the worst finding;
none is blocking: a drift alarm must not stop the marts from refreshing. Each check is declared
on a mart by model name; `DriftCheck.on` attaches it to that model's asset key as the dbt
manifest makes it.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import psycopg
from dagster_dbt import get_asset_key_for_model
from psycopg.rows import dict_row

from evals import drift
from evals.alerts import AlertDraft
from evals.config import Config, DriftConfig
from evals.marts import load_query
from orchestration.lib.alerting import check_result, run_id_of
from orchestration.lib.partitions import days_of
from orchestration.lib.resources import EvalhouseResource

QUERIES = Path(__file__).with_name("queries")
EXAMPLES_PER_FINDING = 3
K = TypeVar("K")


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
    result.

    `kinds`: the ongoing conditions the check watches, resolved by a quiet night. A version
    change is an event (its subject names both versions), so its checks pass none: its alert
    stays open until someone acknowledges it.
    """
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


def _series(
    rows: list[dict], key: Callable[[dict], K], n: str, successes: str, as_of: date
) -> dict[K, drift.DailyCounts]:
    grouped: dict[K, list[dict]] = defaultdict(list)
    for row in rows:
        if row["day"] <= as_of:
            grouped[key(row)].append(row)
    return {
        subject: drift.DailyCounts.from_rows(group, n=n, successes=successes, as_of=as_of)
        for subject, group in grouped.items()
    }


def _example_runs(
    conn: psycopg.Connection, finding: drift.Finding, where: str, params: tuple
) -> list[str]:
    """A few rows of the finding's window to open from the alert."""
    alert = finding.alert_row()
    rows = conn.execute(
        f"select run_id from raw.eval_runs where started_at >= %s and started_at < %s and {where}"
        f" order by started_at desc limit {EXAMPLES_PER_FINDING}",
        (alert["window_start"], alert["window_end"], *params),
    ).fetchall()
    return [str(row[0]) for row in rows]


# --- stage pass rates -----------------------------------------------------------------------


def _stage_series(rows: list[dict], night: date) -> dict[drift.SeriesKey, drift.DailyCounts]:
    """One series per stage and epoch: a rollout starts a new one."""
    return _series(
        rows, lambda r: drift.SeriesKey(r["stage"], drift.Epoch.of(r)), "n", "passes", night
    )


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


def _stage_examples(conn: psycopg.Connection, finding: drift.Finding) -> list[str]:
    failing = "passed is false" if finding.observed < (finding.expected_low or 0) else "passed"
    return _example_runs(
        conn, finding, f"{_SERIES_ROWS} and {failing}", _series_params(finding.evidence["series"])
    )


@drift_check(
    mart="fct_stage_daily",
    description=(
        "Each stage's production pass rate within its epoch: significantly different from its "
        "trailing baseline (pooled recent window, Bonferroni over series) or confidently outside "
        "its band (too easy / stalling)."
    ),
)
def stage_pass_rate_drift(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Pass-rate shifts and band violations per stage and epoch, per night."""
    return _evaluate(
        context,
        evalhouse,
        query="stage_daily",
        detect=_stage_findings,
        kinds=("pass_rate_shift", "pass_rate_too_easy", "pass_rate_stalling"),
        examples=_stage_examples,
    )


# --- version changes ----------------------------------------------------------------------------


def _version_change_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    return drift.detect_version_changes(_stage_series(rows, night), config.drift, as_of=night)


def _version_change_examples(conn: psycopg.Connection, finding: drift.Finding) -> list[str]:
    """Runs of the new version: the first is where the alert's prompt diff opens."""
    after = finding.evidence["after"]
    stage = finding.evidence["lineage"].removeprefix("stage=")
    series = {"stage": stage, **{name: after[name] for name in _EPOCH_COLUMNS}}
    return _example_runs(conn, finding, _SERIES_ROWS, _series_params(series))


def _new_version_examples(conn: psycopg.Connection, finding: drift.Finding) -> list[str]:
    """Runs of the new model and prompt version in the finding's window: the first is where
    the alert's prompt diff opens."""
    after = finding.evidence["after"]
    return _example_runs(
        conn,
        finding,
        "model is not distinct from %s and prompt_version is not distinct from %s",
        (after["model"], after["prompt_version"]),
    )


@drift_check(
    mart="fct_stage_daily",
    description=(
        "A stage's production pass rate under a new prompt version, model or suite version vs "
        "the version before it (score test, Bonferroni over stages): a rollout that moves the "
        "rate is reported once, with both rates and the prompt diff."
    ),
)
def version_change_effect(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """The effect of each version change on its stage's pass rate, tested once per change."""
    return _evaluate(
        context,
        evalhouse,
        query="stage_daily",
        detect=_version_change_findings,
        kinds=(),
        examples=_version_change_examples,
    )


# --- judge vs human agreement ----------------------------------------------------------------


def _judge_subject(row: dict) -> str:
    """`judge=<model> prompt=… suite=…`: the judge within one epoch (a judge upgrade is a new
    series, not agreement drift)."""
    parts = drift.Epoch.of(row).parts()
    parts.pop("model", None)
    return " ".join([f"judge={row['model']}", *(f"{key}={value}" for key, value in parts.items())])


def _agreement_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    watched = _series(rows, _judge_subject, "n", "agree", night)
    findings = []
    for subject, series in watched.items():
        findings.extend(
            drift.detect_agreement_drift(
                series, config.drift, subject=subject, as_of=night, series_watched=len(watched)
            )
        )
    return findings


@drift_check(
    mart="fct_verdict_agreement_weekly",
    description=(
        "Verdict agreement with the human consensus, per judge model and prompt version: "
        "confidently below drift.min_agreement, or significantly below its own baseline "
        "(weekly points)."
    ),
)
def judge_agreement_drift(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Agreement below threshold or dropping, per model."""
    return _evaluate(
        context,
        evalhouse,
        query="agreement_weekly",
        detect=_agreement_findings,
        kinds=("agreement_below_threshold", "agreement_drop"),
    )


def _agreement_version_change_findings(
    rows: list[dict], config: Config, night: date
) -> list[drift.Finding]:
    """Per judge model and suite: a new judge prompt or suite version's first week of
    agreement with humans against the weeks before it."""
    weeks: dict[tuple[str, drift.Epoch], dict[date, tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        lineage = f"judge={row['model']} suite={row['suite']}"
        weeks[(lineage, drift.Epoch.of(row))][row["day"]] = (int(row["n"]), int(row["agree"]))
    return drift.detect_weekly_version_changes(
        weeks, config.drift, night, measure="agreement with humans"
    )


@drift_check(
    mart="fct_verdict_agreement_weekly",
    description=(
        "Verdict agreement with the human consensus across a judge prompt or suite version "
        "change (score test on the new version's first week, Bonferroni over judges): reported "
        "once, with both rates and the prompt diff."
    ),
)
def agreement_version_change_effect(
    context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource
):
    """The effect of a judge's version change on its agreement with humans, tested once."""
    return _evaluate(
        context,
        evalhouse,
        query="agreement_weekly",
        detect=_agreement_version_change_findings,
        kinds=(),
        examples=_new_version_examples,
    )


# --- golden accuracy night over night ---------------------------------------------------------


def _golden_nights(
    rows: list[dict],
) -> dict[tuple[str, str], dict[date, tuple[drift.Epoch, dict[str, bool]]]]:
    """Per model and suite, each night's epoch and item outcomes."""
    nights: dict[tuple[str, str], dict[date, tuple[drift.Epoch, dict[str, bool]]]] = defaultdict(
        dict
    )
    for row in rows:
        _, outcomes = nights[(row["model"], row["suite"])].setdefault(
            row["day"], (drift.Epoch.of(row), {})
        )
        outcomes[row["item_id"]] = row["correct"]
    return nights


def _golden_findings(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
    """Night over night within an epoch; a night under new versions is the version-change
    check's question, not a regression."""
    nights = []
    for (model, suite), by_day in sorted(_golden_nights(rows).items()):
        earlier = [day for day in by_day if day < night]
        if night not in by_day or not earlier:
            continue
        (before, old), (after, new) = by_day[max(earlier)], by_day[night]
        if before == after:
            nights.append(drift.GoldenNight(f"model={model} suite={suite}", old, new, max(earlier)))
    return drift.detect_golden_regressions(nights, config.drift, current_day=night)


def _golden_examples(conn: psycopg.Connection, finding: drift.Finding) -> list[str]:
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
    mart="fct_golden_outcomes",
    description=(
        "Golden accuracy per model and suite, night over night on the same items: a drop above "
        "drift.max_golden_accuracy_drop that is significant (exact McNemar, Holm over the "
        "night's model × suite tests)."
    ),
)
def golden_accuracy_regression(
    context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource
):
    """Night-over-night golden accuracy regressions."""
    return _evaluate(
        context,
        evalhouse,
        query="golden_item_epochs",
        detect=_golden_findings,
        kinds=("golden_regression",),
        examples=_golden_examples,
    )


def _golden_version_change_findings(
    rows: list[dict], config: Config, night: date
) -> list[drift.Finding]:
    """A golden night whose epoch differs from the previous night of its model and suite: the
    same items graded under both versions, compared pair by pair (exact McNemar)."""
    nights = _golden_nights(rows)
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
            lineage="golden",
            before=before,
            after=after,
            before_start=previous,
            before_end=previous,
            first_day=night,
            test_day=night,
            before_n=len(old),
            before_passes=sum(old.values()),
            after_n=len(new),
            after_passes=sum(new.values()),
        )
        common = sorted(set(old) & set(new))
        finding = drift.version_change_finding(
            change,
            config.drift,
            series_watched=len(nights),
            paired=[(old[item], new[item]) for item in common],
        )
        if finding is not None:
            findings.append(finding)
    return findings


def _golden_version_change_examples(conn: psycopg.Connection, finding: drift.Finding) -> list[str]:
    """Graded runs of the new night under the new prompt: the first opens the prompt diff."""
    after = finding.evidence["after"]
    rows = conn.execute(
        "select run_id from raw.eval_runs where batch_id = %s and model = %s and suite = %s"
        " and prompt_version = %s order by item_id limit %s",
        (
            f"golden:{finding.window_end.isoformat()}",
            after["model"],
            after["suite"],
            after["prompt_version"],
            EXAMPLES_PER_FINDING,
        ),
    ).fetchall()
    return [str(row[0]) for row in rows]


@drift_check(
    mart="fct_golden_outcomes",
    description=(
        "Golden accuracy per model and suite across a version change (prompt, suite version, "
        "judge) between two nights: the same items paired, exact McNemar."
    ),
)
def golden_version_change_effect(
    context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource
):
    """The effect of a version change on golden accuracy, item by item."""
    return _evaluate(
        context,
        evalhouse,
        query="golden_item_epochs",
        detect=_golden_version_change_findings,
        kinds=(),
        examples=_golden_version_change_examples,
    )


# --- cost and latency -------------------------------------------------------------------------


def _spike_findings(
    value: str, detector
) -> Callable[[list[dict], Config, date], list[drift.Finding]]:
    def detect(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
        by_subject: dict[str, dict[date, float]] = defaultdict(dict)
        for row in rows:
            if row[value] is not None:
                epoch = drift.Epoch.of(row).label()
                subject = f"{epoch} source={row['source']} role={row['role']}"
                by_subject[subject][row["day"]] = float(row[value])
        watched = {subject: points for subject, points in by_subject.items() if night in points}
        findings = []
        for subject, points in sorted(watched.items()):
            findings.extend(
                detector(
                    points, config.drift, subject=subject, as_of=night, series_watched=len(watched)
                )
            )
        return findings

    return detect


def _figure_version_change_findings(
    value: str,
    lineage: Callable[[dict], str],
    *,
    measure: str,
    unit: str,
    limits: Callable[[DriftConfig], tuple[float, float]],
) -> Callable[[list[dict], Config, date], list[drift.Finding]]:
    """A daily figure's version changes per lineage; `limits(config.drift)`: the spike
    settings (ratio, absolute floor) that size an effect worth reporting."""

    def detect(rows: list[dict], config: Config, night: date) -> list[drift.Finding]:
        figures: dict[tuple[str, drift.Epoch], dict[date, float]] = defaultdict(dict)
        for row in rows:
            if row[value] is not None:
                figures[(lineage(row), drift.Epoch.of(row))][row["day"]] = float(row[value])
        ratio, min_abs = limits(config.drift)
        return drift.detect_figure_version_changes(
            figures, config.drift, night, measure=measure, unit=unit, ratio=ratio, min_abs=min_abs
        )

    return detect


@drift_check(
    mart="fct_model_cost_daily",
    description=(
        "Cost per call per model, prompt version, source and role against its trailing median."
    ),
)
def cost_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily cost-per-call spikes."""
    return _evaluate(
        context,
        evalhouse,
        query="cost_daily",
        detect=_spike_findings("cost_per_call", drift.detect_cost_spike),
        kinds=("cost_spike",),
    )


@drift_check(
    mart="fct_trend_daily",
    description=(
        "Latency p95 per model, prompt and suite version, source and role against its trailing "
        "median."
    ),
)
def latency_spike(context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource):
    """Daily latency p95 spikes."""
    return _evaluate(
        context,
        evalhouse,
        query="latency_daily",
        detect=_spike_findings("latency_p95_ms", drift.detect_latency_spike),
        kinds=("latency_spike",),
    )


_cost_version_change_findings = _figure_version_change_findings(
    "cost_per_call",
    lambda row: f"cost source={row['source']} role={row['role']}",
    measure="cost per call",
    unit="USD/call",
    limits=lambda d: (d.cost_spike_ratio, d.cost_spike_min_abs_usd),
)
_latency_version_change_findings = _figure_version_change_findings(
    "latency_p95_ms",
    lambda row: f"latency source={row['source']} role={row['role']} suite={row['suite']}",
    measure="latency p95",
    unit="ms",
    limits=lambda d: (d.latency_spike_ratio, d.latency_spike_min_abs_ms),
)


@drift_check(
    mart="fct_model_cost_daily",
    description=(
        "Cost per call per source and role across a model or prompt version change: the new "
        "version's first night against the nights before (two-sided, spike-sized): reported once."
    ),
)
def cost_version_change_effect(
    context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource
):
    """The effect of a model or prompt version change on cost per call, tested once."""
    return _evaluate(
        context,
        evalhouse,
        query="cost_daily",
        detect=_cost_version_change_findings,
        kinds=(),
        examples=_new_version_examples,
    )


@drift_check(
    mart="fct_trend_daily",
    description=(
        "Latency p95 per source, role and suite across a model, prompt or suite version change: "
        "the new version's first night against the nights before (two-sided, spike-sized): "
        "reported once."
    ),
)
def latency_version_change_effect(
    context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource
):
    """The effect of a model, prompt or suite version change on latency p95, tested once."""
    return _evaluate(
        context,
        evalhouse,
        query="latency_daily",
        detect=_latency_version_change_findings,
        kinds=(),
        examples=_new_version_examples,
    )


DRIFT_CHECKS = [
    stage_pass_rate_drift,
    version_change_effect,
    judge_agreement_drift,
    agreement_version_change_effect,
    golden_accuracy_regression,
    golden_version_change_effect,
    cost_spike,
    cost_version_change_effect,
    latency_spike,
    latency_version_change_effect,
]
