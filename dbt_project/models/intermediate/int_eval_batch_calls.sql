{#-
  One row per run-log row of an evaluation run: the rows of its batch key that name it in
  attributes.eval_batch_id (judge calls included). Joined by batch key first, so Postgres can
  find them through raw.eval_runs' batch_id index instead of reading every call.
-#}
with batches as (
    select * from {{ ref('stg_raw__eval_batches') }}
),

runs as (
    select * from {{ ref('stg_raw__eval_runs') }}
),

final as (
    select
        batches.batch_id,
        runs.run_id,
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
)

select * from final
