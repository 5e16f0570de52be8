select run_date as day, model, source, role,
       sum(cost_usd) / nullif(sum(n_calls), 0) as cost_per_call
from {{ ref('fct_model_cost_daily') }}
group by run_date, model, source, role
