{#- Production pass rate per stage before and from the demo's drift day. -#}
select stage,
       sum(n_passed) filter (where run_date < %(drift)s)::float
         / nullif(sum(n_verdicts) filter (where run_date < %(drift)s), 0),
       sum(n_passed) filter (where run_date >= %(drift)s)::float
         / nullif(sum(n_verdicts) filter (where run_date >= %(drift)s), 0),
       sum(n_verdicts)
from {{ ref('fct_stage_daily') }}
where source = 'production' and role = 'grader' and run_date between %(first)s and %(last)s
group by stage order by stage
