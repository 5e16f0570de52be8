-- The figures of API-started evaluation runs, by batch key (fct_eval_batches: the newest record
-- of each key and model), and with %(breakdown)s each run's accuracy per stage and per category
-- (fct_eval_batch_breakdown). Null for a request until dbt has built its run.
with runs as (
    select * from {{ ref('fct_eval_batches') }}
),

breakdown as (
    select * from {{ ref('fct_eval_batch_breakdown') }}
)

select distinct on (runs.batch_key, runs.model)
    runs.batch_key,
    runs.model,
    runs.batch_id,
    runs.suite_version,
    runs.prompt_version,
    runs.judge,
    runs.judge_prompt_version,
    runs.status,
    runs.calls,
    runs.settled,
    runs.errors,
    runs.parse_errors,
    runs.n_graded,
    runs.n_correct,
    runs.n_parse_error_outcomes,
    runs.n_unjudged,
    runs.n_items_graded,
    runs.n_items_in_suite,
    runs.coverage,
    runs.accuracy,
    runs.accuracy_ci_low,
    runs.accuracy_ci_high,
    runs.cost_usd,
    runs.cost_per_correct_usd,
    runs.input_tokens,
    runs.output_tokens,
    runs.latency_p50_ms,
    runs.latency_p95_ms,
    runs.duration_s,
    runs.previous_batch_id,
    runs.accuracy_delta_previous,
    runs.best_batch_id,
    runs.accuracy_delta_best,
    case when %(breakdown)s then coalesce((
        select
            jsonb_agg(
                jsonb_build_object(
                    'dimension', breakdown.dimension,
                    'value', breakdown.dimension_value,
                    'n_graded', breakdown.n_graded,
                    'n_correct', breakdown.n_correct,
                    'accuracy', breakdown.accuracy,
                    'accuracy_ci_low', breakdown.accuracy_ci_low,
                    'accuracy_ci_high', breakdown.accuracy_ci_high
                )
                order by breakdown.dimension desc, breakdown.dimension_value asc
            )
        from breakdown
        where breakdown.batch_id = runs.batch_id
    ), '[]'::jsonb) end as breakdown
from runs
where runs.batch_key = any(%(batch_keys)s)
order by runs.batch_key, runs.model, runs.started_at desc, runs.batch_id
