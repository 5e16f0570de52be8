{#- A model's latest completed run with outcomes on a suite (compare "two models on a suite"). -#}
select batch_id
from {{ ref('fct_eval_batches') }}
where suite = %(suite)s
    and model = %(model)s
    and status = 'completed'
    and n_graded > 0
order by started_at desc, batch_id asc
limit 1
