{#-
  One row per evaluation run: its record with the figures of its run-log rows (the rows of its
  batch key that name it in attributes.eval_batch_id, judge calls included). Joined by batch key
  first, so Postgres can find the rows through raw.eval_runs' batch_id index. Latency is of the
  model under test: its settled calls.
-#}
with batches as (
    select * from {{ ref('stg_raw__eval_batches') }}
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
        call_figures.latency_p95_ms
    from batches
    left join call_figures on call_figures.batch_id = batches.batch_id
)

select * from final
