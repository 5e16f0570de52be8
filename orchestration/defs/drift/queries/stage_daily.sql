{#- Production graders only: judges and golden runs have pass rates of their own. -#}
select run_date as day, stage, sum(n_verdicts)::bigint as n, sum(n_passed)::bigint as passes
from {{ ref('fct_stage_daily') }}
where source = 'production' and role <> 'judge'
  and stage is not null
group by run_date, stage
