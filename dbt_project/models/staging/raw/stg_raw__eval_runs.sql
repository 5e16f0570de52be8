-- The run log without the learner- and prompt-text columns (submission, messages, output…):
-- nothing downstream aggregates them, and BI must never see them. Rows superseded by a
-- corrected import (`evalhouse import --replace`) stay in raw only.
with source as (
    select * from {{ source('raw', 'eval_runs') }}
    where superseded_at is null
),

renamed as (
    select
        run_id,
        idempotency_key,
        batch_id,
        parent_run_id,
        trial,
        source,
        touchpoint,
        suite,
        suite_version,
        item_id,
        item_hash,
        stage,
        category,
        role,
        model,
        response_model,
        provider,
        prompt_name,
        prompt_version,
        verdict,
        passed,
        score,
        issue_tags,
        expected_verdict,
        sample_weight,
        attributes,
        started_at,
        latency_ms,
        input_tokens,
        output_tokens,
        cost_usd,
        status,
        error_class,
        attempts,
        ingested_at
    from source
)

select * from renamed
