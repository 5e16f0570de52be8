"""The ops overview's aggregates, each one query on a dbt mart, all run at once.

Every query starts from the same `bounds` CTE, so the default window (the 30 days ending at the
newest day in the marts) is resolved inside each query rather than by an extra round trip, and
the queries stay independent of each other. The filters are bound parameters; `null` means "any".

Every figure is computed over one cohort (docs/bi.md, "Cohorts"): one source (production by
default; "all sources" pools them and the page says so), one role (the graded calls by default,
the judges' calls on request: a judge's verdict on an answer is an audit, not a second pass),
optionally one suite, model and prompt version. A production call re-graded by the reference
judge is a `production_sample` row, so it never counts twice in production's rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from evals.web.db import Query

DEFAULT_DAYS = 30

_BOUNDS = f"""
with bounds as (
    select lo, hi, lo - (hi - lo + 1) as prev_lo
    from (
        select coalesce(%(date_from)s::date, anchor.hi - {DEFAULT_DAYS - 1}) as lo, anchor.hi
        from (select coalesce(%(date_to)s::date,
                              (select max(run_date) from marts.fct_trend_daily),
                              current_date) as hi) as anchor
    ) as window_
)
"""

_COHORT = """
    and (%(suite)s::text is null or t.suite = %(suite)s)
    and (%(source)s::text is null or t.source = %(source)s)
    and (%(model)s::text is null or t.model = %(model)s)
    and (%(prompt_version)s::text is null or t.prompt_version = %(prompt_version)s)
    and case %(role)s::text when 'judge' then t.role = 'judge' when 'graded' then t.role <> 'judge'
        else true end
"""

KPIS = _BOUNDS + """
select
    b.lo, b.hi,
    coalesce(sum(t.n_calls) filter (where t.run_date >= b.lo), 0) as calls,
    coalesce(sum(t.n_verdicts) filter (where t.run_date >= b.lo), 0) as verdicts,
    coalesce(sum(t.n_passed) filter (where t.run_date >= b.lo), 0) as passed,
    coalesce(sum(t.n_failed) filter (where t.run_date >= b.lo), 0) as failed,
    coalesce(sum(t.n_parse_errors) filter (where t.run_date >= b.lo), 0) as parse_errors,
    coalesce(sum(t.cost_usd) filter (where t.run_date >= b.lo), 0) as cost_usd,
    coalesce(sum(t.total_tokens) filter (where t.run_date >= b.lo), 0) as tokens,
    coalesce(sum(t.n_calls) filter (where t.run_date < b.lo), 0) as prev_calls,
    coalesce(sum(t.n_verdicts) filter (where t.run_date < b.lo), 0) as prev_verdicts,
    coalesce(sum(t.n_passed) filter (where t.run_date < b.lo), 0) as prev_passed,
    coalesce(sum(t.n_failed) filter (where t.run_date < b.lo), 0) as prev_failed,
    coalesce(sum(t.n_parse_errors) filter (where t.run_date < b.lo), 0) as prev_parse_errors,
    coalesce(sum(t.cost_usd) filter (where t.run_date < b.lo), 0) as prev_cost_usd
from bounds b
left join marts.fct_trend_daily t on t.run_date between b.prev_lo and b.hi""" + _COHORT + """
group by b.lo, b.hi
"""

AGREEMENT = _BOUNDS + """
select
    t.reference,
    coalesce(sum(t.n), 0) as n,
    coalesce(sum(t.n_agree), 0) as n_agree,
    coalesce(sum(t.n_parse_errors), 0) as n_parse_errors
from bounds b
join marts.fct_verdict_agreement_weekly t
    on t.week_start between date_trunc('week', b.lo)::date and b.hi""" + _COHORT + """
group by t.reference
"""

TREND = _BOUNDS + """
select
    t.run_date, t.model, t.prompt_version,
    sum(t.n_calls) as calls,
    sum(t.n_verdicts) as verdicts,
    sum(t.n_passed) as passed,
    sum(t.n_failed) as failed,
    sum(t.n_parse_errors) as parse_errors,
    sum(t.cost_usd) as cost_usd
from bounds b
join marts.fct_trend_daily t on t.run_date between b.lo and b.hi""" + _COHORT + """
group by t.run_date, t.model, t.prompt_version
order by t.run_date, t.model, t.prompt_version
"""

STAGES = _BOUNDS + """
select
    t.stage, t.model, t.prompt_version,
    sum(t.n_calls) as calls,
    sum(t.n_verdicts) as verdicts,
    sum(t.n_passed) as passed,
    count(*) filter (where t.too_easy and t.n_verdicts >= %(min_daily_n)s) as too_easy_days,
    count(*) filter (where t.stalling and t.n_verdicts >= %(min_daily_n)s) as stalling_days,
    count(*) filter (where t.too_easy_vs_baseline) as too_easy_vs_baseline_days,
    count(*) filter (where t.stalling_vs_baseline) as stalling_vs_baseline_days,
    count(distinct t.run_date) as days,
    max(t.band_too_easy_above) as band_too_easy_above,
    min(t.band_stalling_below) as band_stalling_below
from bounds b
join marts.fct_stage_daily t on t.run_date between b.lo and b.hi""" + _COHORT + """
    and t.stage is not null
group by t.stage, t.model, t.prompt_version
order by t.stage, t.model, t.prompt_version
"""

ISSUES = _BOUNDS + """
, window_rows as (
    select t.* from bounds b
    join marts.fct_issue_distribution_daily t on t.run_date between b.lo and b.hi
    where true""" + _COHORT + """
),
runs as (
    select sum(n_runs) as n_runs from (
        select distinct on (series_key, run_date) n_runs from window_rows
        order by series_key, run_date
    ) as per_series_day
)
select w.issue_tag, sum(w.n_runs_with_tag) as tagged, max(runs.n_runs) as n_runs
from window_rows w cross join runs
group by w.issue_tag
order by tagged desc
limit 12
"""

COSTS = _BOUNDS + """
select
    t.model, t.role,
    sum(t.n_calls) as calls,
    sum(t.total_tokens) as tokens,
    sum(t.cost_usd) as cost_usd,
    sum(t.n_passed) as passing
from bounds b
join marts.fct_trend_daily t on t.run_date between b.lo and b.hi""" + _COHORT + """
group by t.model, t.role
order by cost_usd desc, t.model, t.role
"""

# What the whole warehouse spent, by source: the one figure that pools sources on purpose (it
# answers "where does the money go"), so only the window, suite and model apply.
COST_BY_SOURCE = _BOUNDS + """
select t.source, sum(t.n_calls) as calls, sum(t.cost_usd) as cost_usd
from bounds b
join marts.fct_trend_daily t on t.run_date between b.lo and b.hi
    and (%(suite)s::text is null or t.suite = %(suite)s)
    and (%(model)s::text is null or t.model = %(model)s)
group by t.source
order by cost_usd desc, t.source
"""

# Golden accuracy per model, prompt version and suite version on the newest night of the window
# that graded it: each night re-grades the same items, so nights are not pooled (an item graded
# on 14 nights is one item, not 14 observations). Never blended with production.
GOLDEN = _BOUNDS + """
, nights as (
    select t.*, max(t.run_date) over (
        partition by t.model, t.prompt_version, t.suite, t.suite_version) as newest_night
    from bounds b
    join marts.fct_trend_daily t on t.run_date between b.lo and b.hi
    where t.source = 'golden' and t.role <> 'judge' and t.n_with_expected > 0
        and (%(suite)s::text is null or t.suite = %(suite)s)
        and (%(model)s::text is null or t.model = %(model)s)
        and (%(prompt_version)s::text is null or t.prompt_version = %(prompt_version)s)
)
select model, prompt_version, suite, suite_version, run_date as night,
    n_with_expected as n_items, n_correct as correct
from nights
where run_date = newest_night
order by suite, suite_version, model, prompt_version
"""


DEFAULT_SOURCE = "production"
ALL = "all"
ROLE_COHORTS = {"graded": "graded calls", "judge": "judges' calls", ALL: "all roles"}


@dataclass(frozen=True)
class OverviewFilters:
    """The cohort and window of the page; `source=None` / `role="all"` pool explicitly."""

    date_from: date | None = None
    date_to: date | None = None
    suite: str | None = None
    source: str | None = DEFAULT_SOURCE
    role: str = "graded"
    model: str | None = None
    prompt_version: str | None = None

    def params(self) -> dict[str, Any]:
        return {"date_from": self.date_from, "date_to": self.date_to, "suite": self.suite,
                "source": self.source, "role": self.role, "model": self.model,
                "prompt_version": self.prompt_version}

    def cohort_label(self) -> str:
        """What every figure on the page covers, pooled dimensions named as such."""
        parts = [
            self.source or "all sources (pooled)",
            ROLE_COHORTS[self.role],
            f"suite {self.suite}" if self.suite else "all suites",
            f"model {self.model}" if self.model else "all models",
            f"prompt {self.prompt_version[:10]}" if self.prompt_version else "all prompt versions",
        ]
        return ", ".join(parts)


def overview_queries(filters: OverviewFilters, min_daily_n: int = 30) -> dict[str, Query]:
    """The page's queries; a day counts toward a band flag only with `min_daily_n` verdicts."""
    params = {**filters.params(), "min_daily_n": min_daily_n}
    return {name: (sql, params) for name, sql in (
        ("kpis", KPIS), ("agreement", AGREEMENT), ("trend", TREND), ("stages", STAGES),
        ("issues", ISSUES), ("costs", COSTS), ("cost_by_source", COST_BY_SOURCE),
        ("golden", GOLDEN),
    )}
