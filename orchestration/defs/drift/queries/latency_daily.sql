select run_date as day, model, prompt_version, suite, suite_version, source, role,
       latency_p95_ms
from {{ ref('fct_trend_daily') }}
