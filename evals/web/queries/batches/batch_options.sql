{#- The values the batch filters offer. -#}
select
    array_agg(distinct suite order by suite) filter (where suite is not null) as suite,
    array_agg(distinct model order by model) as model,
    array_agg(distinct model_family order by model_family)
        filter (where model_family is not null) as family
from raw.eval_batches
