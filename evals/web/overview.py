"""/ : the ops overview. KPI cards, daily trends, stages with flags, issues, cost cuts and
golden accuracy per model and suite.

It reads only the dbt marts (no learner text, already aggregated), and runs its queries at once
on pooled connections: the page costs about one round trip of its slowest query. Every figure
covers the cohort the filters name (production's graded calls by default), and the page says
which; `overview_figures` is the page's data, so tests can recompute each figure independently.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException, Request

from evals.runlog import SOURCES
from evals.stats import wilson_interval
from evals.web import charts
from evals.web.deps import state
from evals.web.overview_queries import (
    ALL,
    DEFAULT_SOURCE,
    ROLE_COHORTS,
    OverviewFilters,
    overview_queries,
)

router = APIRouter()


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _date(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{name}: not a date (YYYY-MM-DD)") from None


def _kpis(row: dict[str, Any], agreement: list[dict[str, Any]]) -> dict[str, Any]:
    """Error rate = calls that failed (error, timeout) or whose answer could not be parsed, over
    all calls: the same definition as the failures chart."""
    human = next((r for r in agreement if r["reference"] == "human_consensus"), None)
    pass_rate = _ratio(row["passed"], row["verdicts"])
    prev_pass_rate = _ratio(row["prev_passed"], row["prev_verdicts"])
    error_rate = _ratio(row["failed"] + row["parse_errors"], row["calls"])
    prev_error_rate = _ratio(row["prev_failed"] + row["prev_parse_errors"], row["prev_calls"])
    return {
        "calls": row["calls"],
        "prev_calls": row["prev_calls"],
        "tokens": row["tokens"],
        "pass_rate": pass_rate,
        "verdicts": row["verdicts"],
        "pass_rate_delta": None
        if pass_rate is None or prev_pass_rate is None
        else pass_rate - prev_pass_rate,
        "error_rate": error_rate,
        "errors": row["failed"],
        "parse_errors": row["parse_errors"],
        "error_rate_delta": None
        if error_rate is None or prev_error_rate is None
        else error_rate - prev_error_rate,
        "cost_usd": row["cost_usd"],
        "prev_cost_usd": row["prev_cost_usd"],
        "agreement": _ratio(human["n_agree"], human["n"]) if human else None,
        "agreement_n": human["n"] if human else 0,
    }


def _trend_charts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    calls: dict[date, float] = defaultdict(float)
    pass_by_model: dict[str, dict[date, float | None]] = defaultdict(dict)
    errors: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    cost_by_model: dict[str, dict[date, float]] = defaultdict(dict)
    for row in rows:
        day = row["run_date"]
        calls[day] += row["calls"]
        errors[day][0] += row["failed"] + row["parse_errors"]
        errors[day][1] += row["calls"]
        series = f"{row['model']} · {(row['prompt_version'] or '–')[:8]}"
        pass_by_model[series][day] = _ratio(row["passed"], row["verdicts"])
        cost_by_model[row["model"]][day] = (
            cost_by_model[row["model"]].get(day, 0.0) + row["cost_usd"]
        )
    error_rate = {day: failed / total for day, (failed, total) in errors.items() if total}
    return {
        "calls": charts.bar_chart(calls, y_label="calls per day", y_format=charts.count),
        "pass_rate": charts.line_chart(
            pass_by_model,
            y_label="pass rate (%) by model · prompt",
            y_format=charts.percent,
            y_max=1.0,
        ),
        "errors": charts.line_chart(
            {"error + parse-error rate": error_rate},
            y_label="failed calls (% of calls)",
            y_format=charts.percent,
        ),
        "cost": charts.line_chart(
            cost_by_model, y_label="cost per day (USD) by model", y_format=charts.usd
        ),
    }


def _with_rate(rows: list[dict[str, Any]], successes: str, n: str) -> list[dict[str, Any]]:
    """Each row with its rate and 95 % Wilson interval (None where n is 0)."""
    if not rows:
        return []
    low, high = wilson_interval([r[successes] for r in rows], [r[n] for r in rows])
    return [
        {
            **row,
            "rate": _ratio(row[successes], row[n]),
            "ci_low": float(low[i]) if row[n] else None,
            "ci_high": float(high[i]) if row[n] else None,
        }
        for i, row in enumerate(rows)
    ]


def _choice(text: str, name: str, allowed: tuple[str, ...] | dict[str, str]) -> str:
    if text not in allowed:
        raise HTTPException(400, f"{name} must be one of {sorted(allowed)}")
    return text


def parse_filters(
    date_from: str = "",
    date_to: str = "",
    suite: str = "",
    source: str = DEFAULT_SOURCE,
    role: str = "graded",
    model: str = "",
    prompt_version: str = "",
) -> OverviewFilters:
    """The query string as a cohort: production's graded calls unless asked otherwise."""
    source = _choice(source.strip() or DEFAULT_SOURCE, "source", (*SOURCES, ALL))
    first, last = _date(date_from, "date_from"), _date(date_to, "date_to")
    if first and last and first > last:
        raise HTTPException(400, "date_from is after date_to")
    return OverviewFilters(
        date_from=first,
        date_to=last,
        suite=suite.strip() or None,
        source=None if source == ALL else source,
        role=_choice(role.strip() or "graded", "role", ROLE_COHORTS),
        model=model.strip() or None,
        prompt_version=prompt_version.strip() or None,
    )


def overview_figures(found: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Every number the page shows, from the results of `overview_queries`."""
    kpi_row = found["kpis"][0]
    return {
        "window": (kpi_row["lo"], kpi_row["hi"]),
        "kpis": _kpis(kpi_row, found["agreement"]),
        "trend": found["trend"],
        "stages": _with_rate(found["stages"], "passed", "verdicts"),
        "issues": found["issues"],
        "costs": [
            {
                **r,
                "per_call": _ratio(r["cost_usd"], r["calls"]),
                "per_pass": _ratio(r["cost_usd"], r["passing"]),
            }
            for r in found["costs"]
        ],
        "cost_by_source": found["cost_by_source"],
        "golden": _with_rate(found["golden"], "correct", "n_items"),
        "production_estimate": found["production_estimate"],
        "later_calls": found["later"][0]["calls"],
    }


@router.get("/")
def overview(
    request: Request,
    date_from: str = "",
    date_to: str = "",
    suite: str = "",
    source: str = DEFAULT_SOURCE,
    role: str = "graded",
    model: str = "",
    prompt_version: str = "",
):
    web = state(request)
    filters = parse_filters(date_from, date_to, suite, source, role, model, prompt_version)
    try:
        found = web.db.gather(overview_queries(filters, web.config.drift.min_daily_n))
    except psycopg.errors.UndefinedTable:  # a fresh warehouse: dbt has not built the marts yet
        return web.page(request, "overview_empty.html", status_code=503)
    figures = overview_figures(found)
    return web.page(
        request,
        "overview.html",
        filters=filters,
        cohort=filters.cohort_label(),
        min_daily_n=web.config.drift.min_daily_n,
        sources=SOURCES,
        suites=sorted(web.config.suites),
        roles=ROLE_COHORTS,
        charts=_trend_charts(figures["trend"]),
        issues_chart=charts.hbar_chart(
            [
                (r["issue_tag"], r["tagged"] / r["n_runs"], f"{int(r['tagged']):,} calls")
                for r in figures["issues"]
                if r["n_runs"]
            ],
            x_label="share of the cohort's calls carrying the tag",
            x_format=charts.percent,
        ),
        **figures,
    )
