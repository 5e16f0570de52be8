{% include '_bounds.sql' %}
select
    t.model, t.role,
    sum(t.n_calls) as calls,
    sum(t.total_tokens) as tokens,
    sum(t.cost_usd) as cost_usd,
    sum(t.n_passed) as passing
from bounds b
join {{ ref('fct_trend_daily') }} t on t.run_date between b.lo and b.hi
{% include '_cohort.sql' %}
group by t.model, t.role
order by cost_usd desc, t.model, t.role
