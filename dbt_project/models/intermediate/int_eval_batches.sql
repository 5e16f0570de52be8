{#-
  One row per evaluation run: its record with the figures of its run-log rows (the rows of its
  batch key that name it in attributes.eval_batch_id, judge calls included) and of its golden
  outcomes (int_eval_batch_outcomes). Joined by batch key first, so Postgres can find the rows
  through raw.eval_runs' batch_id index. Latency is of the model under test: its settled calls.

  Kept by run (delete+insert on batch_id): a build rewrites the runs whose record changed (a
  heartbeat, the close) or that got run-log rows or golden outcomes loaded since this table's
  watermark, so a night's build aggregates that night's runs, not every run's rows again.
  loaded_at is int_eval_runs' newest load at build time, as in int_golden_outcomes.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='batch_id',
        indexes=[
            {'columns': ['batch_id'], 'unique': true},
            {'columns': ['loaded_at']},
        ],
    )
}}

{%- set changed -%}
    select batches.batch_id
    from {{ ref('stg_raw__eval_batches') }} as batches
    left join {{ this }} as built on built.batch_id = batches.batch_id
    where built.record_hash is distinct from md5(batches::text)
    union
    select batches.batch_id
    from {{ ref('stg_raw__eval_batches') }} as batches
    where batches.batch_key in (
        select batch_id from {{ ref('int_eval_runs') }}
        where loaded_at > {{ watermark('loaded_at') }}
        union
        select batch_key from {{ ref('int_golden_outcomes') }}
        where loaded_at > {{ watermark('loaded_at') }}
    )
{%- endset %}

with batches as (
    select * from {{ ref('stg_raw__eval_batches') }}
    where {{ changed_batches_filter(changed) }}
),

runs as (
    select * from {{ ref('stg_raw__eval_runs') }}
),

calls as (
    select
        batches.batch_id,
        runs.role,
        runs.status,
        runs.latency_ms,
        runs.input_tokens,
        runs.output_tokens,
        runs.cost_usd
    from batches
    inner join runs
        on runs.batch_id = batches.batch_key
        and runs.attributes ->> 'eval_batch_id' = batches.batch_id::text
),

call_figures as (
    select
        batch_id,
        sum(cost_usd) as cost_usd,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        percentile_cont(0.5) within group (order by latency_ms) filter (
            where role in ('candidate', 'grader') and status in ('ok', 'parse_error')
        ) as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms) filter (
            where role in ('candidate', 'grader') and status in ('ok', 'parse_error')
        ) as latency_p95_ms
    from calls
    group by batch_id
),

outcome_figures as (
    select
        batch_id,
        count(*) as n_graded,
        count(*) filter (where is_correct) as n_correct,
        count(*) filter (where outcome = 'parse_error') as n_parse_error_outcomes,
        count(*) filter (where outcome = 'unjudged') as n_unjudged,
        count(distinct item_id) as n_items_graded
    from {{ ref('int_eval_batch_outcomes') }}
    where {{ changed_batches_filter(changed) }}
    group by batch_id
),

final as (
    select
        batches.batch_id,
        batches.kind,
        batches.batch_key,
        batches.source,
        batches.suite,
        batches.suite_version,
        batches.model,
        batches.models_answered,
        batches.prompt_version,
        batches.judge,
        batches.judge_prompt_version,
        batches.code_version,
        batches.started_by,
        batches.model_family,
        batches.model_checkpoint,
        batches.model_step,
        batches.model_owner,
        batches.model_tags,
        batches.planned_calls,
        batches.status,
        batches.invocations,
        batches.started_at,
        batches.heartbeat_at,
        batches.ended_at,
        batches.calls,
        batches.settled,
        batches.errors,
        batches.parse_errors,
        batches.error_message,
        call_figures.cost_usd,
        coalesce(call_figures.input_tokens, 0) as input_tokens,
        coalesce(call_figures.output_tokens, 0) as output_tokens,
        call_figures.latency_p50_ms,
        call_figures.latency_p95_ms,
        coalesce(outcome_figures.n_graded, 0) as n_graded,
        coalesce(outcome_figures.n_correct, 0) as n_correct,
        coalesce(outcome_figures.n_parse_error_outcomes, 0) as n_parse_error_outcomes,
        coalesce(outcome_figures.n_unjudged, 0) as n_unjudged,
        coalesce(outcome_figures.n_items_graded, 0) as n_items_graded,
        md5(batches::text) as record_hash,
        (
            select coalesce(max(eval_runs.loaded_at), '-infinity'::timestamptz)
            from {{ ref('int_eval_runs') }} as eval_runs
        ) as loaded_at
    from batches
    left join call_figures on call_figures.batch_id = batches.batch_id
    left join outcome_figures on outcome_figures.batch_id = batches.batch_id
)

select * from final
