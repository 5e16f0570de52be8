{#- Each model's latest completed run per suite (its newest suite version), and the best
    completed run of that model on the same yardstick (fct_eval_batches.comparable_key). -#}
with {% include '_latest_runs.sql' %}

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
    best.batch_id as best_own_batch_id,
    best.accuracy as best_own_accuracy
from latest
inner join lateral (
    select
        runs.batch_id,
        runs.accuracy
    from {{ ref('fct_eval_batches') }} as runs
    where runs.comparable_key = latest.comparable_key
        and runs.model = latest.model
        and runs.status = 'completed'
        and runs.n_graded > 0
    order by runs.accuracy desc, runs.started_at asc, runs.batch_id asc
    limit 1
) as best on true
order by latest.suite asc, latest.accuracy desc, latest.model asc
