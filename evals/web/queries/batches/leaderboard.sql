{#- Each model's latest completed run per suite (its newest suite version), and the best
    completed run of that model on the same yardstick (fct_eval_batches.comparable_key). -#}
with done as (
    select * from {{ ref('fct_eval_batches') }}
    where status = 'completed' and n_graded > 0
),

latest as (
    select distinct on (suite, model) *
    from done
    order by suite, model, started_at desc, batch_id asc
),

best as (
    select distinct on (comparable_key, model)
        comparable_key,
        model,
        batch_id as best_own_batch_id,
        accuracy as best_own_accuracy
    from done
    order by comparable_key, model, accuracy desc, started_at asc, batch_id asc
)

select
    latest.batch_id,
    latest.suite,
    latest.suite_version,
    latest.model,
    latest.model_family,
    latest.prompt_version,
    latest.started_at,
    latest.n_graded,
    latest.n_correct,
    latest.accuracy,
    latest.accuracy_ci_low,
    latest.accuracy_ci_high,
    latest.n_items_graded,
    latest.n_items_in_suite,
    latest.coverage,
    latest.cost_usd,
    latest.cost_per_correct_usd,
    latest.latency_p50_ms,
    best.best_own_batch_id,
    best.best_own_accuracy
from latest
inner join best
    on best.comparable_key = latest.comparable_key
    and best.model = latest.model
order by latest.suite asc, latest.accuracy desc, latest.model asc
