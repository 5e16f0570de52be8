{#- What the whole warehouse spent, by source: the one figure that pools sources on purpose (it
    answers "where does the money go"), so only the window, suite and model apply. -#}
{% include '_bounds.sql' %}
select t.source, sum(t.n_calls) as calls, sum(t.cost_usd) as cost_usd
from bounds b
join {{ ref('fct_trend_daily') }} t on t.run_date between b.lo and b.hi
    and (%(suite)s::text is null or t.suite = %(suite)s)
    and (%(model)s::text is null or t.model = %(model)s)
group by t.source
order by cost_usd desc, t.source
