{#- Production graders only (judges and golden runs have pass rates of their own), one series per
    stage and comparability epoch (model, prompt version, suite and suite version). -#}
select run_date as day, stage, model, prompt_version, suite, suite_version,
       sum(n_verdicts)::bigint as n, sum(n_passed)::bigint as passes
from {{ ref('fct_stage_daily') }}
where source = 'production' and role <> 'judge'
  and stage is not null
group by run_date, stage, model, prompt_version, suite, suite_version
