"""/ : the ops overview. KPI cards, daily trends, stages with flags, issues and cost cuts.

It reads only the dbt marts (no learner text, already aggregated), and runs its seven queries at
once on pooled connections: the page costs about one round trip of its slowest query.
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
from evals.web.overview_queries import OverviewFilters, overview_queries

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
    human = next((r for r in agreement if r["reference"] == "human_consensus"), None)
    golden = next((r for r in agreement if r["reference"] == "golden_expected"), None)
    pass_rate = _ratio(row["passed"], row["verdicts"])
    prev_pass_rate = _ratio(row["prev_passed"], row["prev_verdicts"])
    error_rate = _ratio(row["failed"], row["calls"])
    prev_error_rate = _ratio(row["prev_failed"], row["prev_calls"])
    return {
        "calls": row["calls"], "prev_calls": row["prev_calls"], "tokens": row["tokens"],
        "pass_rate": pass_rate, "verdicts": row["verdicts"],
        "pass_rate_delta": None if pass_rate is None or prev_pass_rate is None
        else pass_rate - prev_pass_rate,
        "error_rate": error_rate, "parse_errors": row["parse_errors"],
        "error_rate_delta": None if error_rate is None or prev_error_rate is None
        else error_rate - prev_error_rate,
        "cost_usd": row["cost_usd"], "prev_cost_usd": row["prev_cost_usd"],
        "agreement": _ratio(human["n_agree"], human["n"]) if human else None,
        "agreement_n": human["n"] if human else 0,
        "golden_accuracy": _ratio(golden["n_agree"], golden["n"]) if golden else None,
        "golden_n": golden["n"] if golden else 0,
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
        pass_by_model[row["model"]][day] = _ratio(row["passed"], row["verdicts"])
        cost_by_model[row["model"]][day] = row["cost_usd"]
    error_rate = {day: failed / total for day, (failed, total) in errors.items() if total}
    return {
        "calls": charts.bar_chart(calls, y_label="calls per day", y_format=charts.count),
        "pass_rate": charts.line_chart(pass_by_model, y_label="pass rate (%) by model",
                                       y_format=charts.percent, y_max=1.0),
        "errors": charts.line_chart({"error + parse-error rate": error_rate},
                                    y_label="failed calls (% of calls)", y_format=charts.percent),
        "cost": charts.line_chart(cost_by_model, y_label="cost per day (USD) by model",
                                  y_format=charts.usd),
    }


def _stage_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    low, high = wilson_interval([r["passed"] for r in rows], [r["verdicts"] for r in rows])
    return [
        {**row, "pass_rate": _ratio(row["passed"], row["verdicts"]),
         "ci_low": float(low[i]) if row["verdicts"] else None,
         "ci_high": float(high[i]) if row["verdicts"] else None}
        for i, row in enumerate(rows)
    ]


@router.get("/")
def overview(request: Request, date_from: str = "", date_to: str = "", suite: str = "",
             source: str = ""):
    web = state(request)
    filters = OverviewFilters(
        date_from=_date(date_from, "date_from"), date_to=_date(date_to, "date_to"),
        suite=suite.strip() or None, source=source.strip() or None,
    )
    try:
        found = web.db.gather(overview_queries(filters, web.config.drift.min_daily_n))
    except psycopg.errors.UndefinedTable:  # a fresh warehouse: dbt has not built the marts yet
        return web.page(request, "overview_empty.html", status_code=503)
    kpi_row = found["kpis"][0]
    issues = found["issues"]
    return web.page(
        request, "overview.html",
        filters=filters, window=(kpi_row["lo"], kpi_row["hi"]),
        min_daily_n=web.config.drift.min_daily_n,
        sources=SOURCES, suites=sorted(web.config.suites),
        kpis=_kpis(kpi_row, found["agreement"]),
        charts=_trend_charts(found["trend"]),
        stages=_stage_rows(found["stages"]),
        issues_chart=charts.hbar_chart(
            [(r["issue_tag"], r["tagged"] / r["n_runs"], f"{int(r['tagged']):,} calls")
             for r in issues if r["n_runs"]],
            x_label="share of graded calls carrying the tag", x_format=charts.percent),
        costs=[{**r, "per_call": _ratio(r["cost_usd"], r["calls"]),
                "per_pass": _ratio(r["cost_usd"], r["passing"])} for r in found["costs"]],
        cost_by_source=found["cost_by_source"],
    )
