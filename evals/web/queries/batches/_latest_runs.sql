{#- Each model's latest completed run with outcomes per suite: ids first, over the index on
    (suite, model, started_at desc, batch_id), then the rows (a sort of every run's wide row
    was most of the leaderboard's time at 10,000 runs). -#}
latest_ids as (
    select distinct on (suite, model) batch_id
    from {{ ref('fct_eval_batches') }}
    where status = 'completed' and n_graded > 0
    order by suite asc, model asc, started_at desc, batch_id asc
),

latest as (
    select runs.*
    from {{ ref('fct_eval_batches') }} as runs
    inner join latest_ids using (batch_id)
)
