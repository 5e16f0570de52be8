with source as (
    select * from {{ source('raw', 'eval_batches') }}
),

renamed as (
    select
        batch_id,
        kind,
        batch_key,
        source,
        suite,
        suite_version,
        model,
        models_answered,
        prompt_version,
        judge,
        judge_prompt_version,
        code_version,
        started_by,
        model_family,
        model_checkpoint,
        model_step,
        model_owner,
        model_tags,
        planned_calls,
        status,
        invocations,
        started_at,
        heartbeat_at,
        ended_at,
        calls,
        settled,
        errors,
        parse_errors,
        error_message
    from source
)

select * from renamed
