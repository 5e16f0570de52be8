{#-
  One row per evaluation run (batch): its record, accuracy with a Wilson 95 % interval, cost,
  tokens, latency, and how it compares.

  Accuracy counts the batch's golden outcomes (int_golden_outcomes: its batch key, model,
  prompt version and suite version; a parse error or an answer not yet judged is not correct).
  Cost and tokens sum every row of the batch, judge calls included, and
  latency, of the model under test's settled calls, come from int_eval_batches.

  Comparable runs measure with the same yardstick: same suite version, same judge and judge
  prompt version (the judge's own prompt changes what "correct" means). The prompt of the model
  under test is part of what is measured, so it may differ. Only completed runs with at least
  one outcome are compared with:
    previous  the latest comparable run of the same model that started earlier;
    best      the comparable run of any model with the highest accuracy (earliest on a tie).
-#}
{{
    config(
        indexes=[
            {'columns': ['batch_id'], 'unique': true},
            {'columns': ['started_at']},
            {'columns': ['batch_key']},
            {'columns': ['suite', 'model', 'started_at desc', 'batch_id']},
            {'columns': ['comparable_key', 'model']},
        ],
    )
}}

with batches as (
    select * from {{ ref('int_eval_batches') }}
),

suites as (
    select * from {{ ref('stg_raw__golden_suites') }}
),

figures as (
    select
        batches.*,
        {{ series_key(['batches.suite', 'batches.suite_version', 'batches.judge',
            'batches.judge_prompt_version']) }} as comparable_key,
        suites.item_count as n_items_in_suite,
        {{ safe_ratio('batches.n_correct', 'batches.n_graded') }} as accuracy,
        {{ wilson_low('batches.n_correct', 'batches.n_graded') }} as accuracy_ci_low,
        {{ wilson_high('batches.n_correct', 'batches.n_graded') }} as accuracy_ci_high,
        {{ safe_ratio('batches.n_items_graded', 'suites.item_count') }} as coverage,
        batches.cost_usd / nullif(batches.n_correct, 0) as cost_per_correct_usd,
        extract(epoch from batches.ended_at - batches.started_at) as duration_s
    from batches
    left join suites
        on suites.suite = batches.suite
        and suites.suite_version = batches.suite_version
),

comparable as (
    select
        batch_id,
        comparable_key,
        model,
        started_at,
        accuracy
    from figures
    where status = 'completed' and n_graded > 0
),

final as (
    select
        figures.batch_id,
        figures.kind,
        figures.batch_key,
        figures.source,
        figures.suite,
        figures.suite_version,
        figures.model,
        figures.models_answered,
        figures.prompt_version,
        figures.judge,
        figures.judge_prompt_version,
        figures.code_version,
        figures.started_by,
        figures.model_family,
        figures.model_checkpoint,
        figures.model_step,
        figures.model_owner,
        figures.model_tags,
        figures.status,
        figures.invocations,
        figures.started_at,
        figures.heartbeat_at,
        figures.ended_at,
        figures.duration_s,
        figures.planned_calls,
        figures.calls,
        figures.settled,
        figures.errors,
        figures.parse_errors,
        figures.error_message,
        figures.n_graded,
        figures.n_correct,
        figures.n_parse_error_outcomes,
        figures.n_unjudged,
        figures.n_items_graded,
        figures.n_items_in_suite,
        figures.coverage,
        figures.accuracy,
        figures.accuracy_ci_low,
        figures.accuracy_ci_high,
        figures.cost_usd,
        figures.cost_per_correct_usd,
        figures.input_tokens,
        figures.output_tokens,
        figures.latency_p50_ms,
        figures.latency_p95_ms,
        figures.comparable_key,
        previous.batch_id as previous_batch_id,
        figures.accuracy - previous.accuracy as accuracy_delta_previous,
        best.batch_id as best_batch_id,
        figures.accuracy - best.accuracy as accuracy_delta_best
    from figures
    left join lateral (
        select
            comparable.batch_id,
            comparable.accuracy
        from comparable
        where comparable.comparable_key = figures.comparable_key
            and comparable.model = figures.model
            and comparable.started_at < figures.started_at
        order by comparable.started_at desc, comparable.batch_id asc
        limit 1
    ) as previous on true
    left join lateral (
        select
            comparable.batch_id,
            comparable.accuracy
        from comparable
        where comparable.comparable_key = figures.comparable_key
        order by comparable.accuracy desc, comparable.started_at asc, comparable.batch_id asc
        limit 1
    ) as best on true
)

select * from final
