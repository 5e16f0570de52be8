{#- Pass rate per model × stage over each model's latest completed run per suite. -#}
with {% include '_latest_runs.sql' %}

select
    latest.model,
    breakdown.dimension_value as stage,
    sum(breakdown.n_graded) as n_graded,
    sum(breakdown.n_correct) as n_correct
from latest
inner join {{ ref('fct_eval_batch_breakdown') }} as breakdown
    on breakdown.batch_id = latest.batch_id
    and breakdown.dimension = 'stage'
group by latest.model, breakdown.dimension_value
order by latest.model asc, breakdown.dimension_value asc
