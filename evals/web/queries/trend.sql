{% include '_bounds.sql' %}
select
    t.run_date, t.model,
    sum(t.n_calls) as calls,
    sum(t.n_verdicts) as verdicts,
    sum(t.n_passed) as passed,
    sum(t.n_failed) as failed,
    sum(t.n_parse_errors) as parse_errors,
    sum(t.cost_usd) as cost_usd
from bounds b
join {{ ref('fct_trend_daily') }} t on t.run_date between b.lo and b.hi
{% include '_cohort.sql' %}
group by t.run_date, t.model
order by t.run_date, t.model
