{% include '_bounds.sql' %}
select
    t.model, t.role,
    sum(t.n_calls) as calls,
    sum(t.total_tokens) as tokens,
    sum(t.cost_usd) as cost_usd,
    sum(t.n_passing_verdicts) as passing
from bounds b
join {{ ref('fct_model_cost_daily') }} t on t.run_date between b.lo and b.hi
    and (%(source)s::text is null or t.source = %(source)s)
group by t.model, t.role
order by cost_usd desc
