select run_date as day, model, source, role, max(latency_p95_ms) as latency_p95_ms
from {{ ref('fct_trend_daily') }}
group by run_date, model, source, role
