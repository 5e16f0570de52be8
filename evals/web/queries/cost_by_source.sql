{% include '_bounds.sql' %}
select t.source, sum(t.n_calls) as calls, sum(t.cost_usd) as cost_usd
from bounds b
join {{ ref('fct_model_cost_daily') }} t on t.run_date between b.lo and b.hi
    and (%(source)s::text is null or t.source = %(source)s)
group by t.source
order by cost_usd desc
