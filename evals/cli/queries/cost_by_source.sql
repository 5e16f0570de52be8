select source, sum(n_calls), sum(cost_usd)
from {{ ref('fct_model_cost_daily') }}
where run_date between %(first)s and %(today)s
group by source order by source
