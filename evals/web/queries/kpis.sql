{% include '_bounds.sql' %}
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
    coalesce(sum(t.cost_usd) filter (where t.run_date < b.lo), 0) as prev_cost_usd
from bounds b
left join {{ ref('fct_trend_daily') }} t on t.run_date between b.prev_lo and b.hi
{% include '_cohort.sql' %}
group by b.lo, b.hi
