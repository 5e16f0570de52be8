with source as (
    select * from {{ source('raw', 'alerts') }}
),

renamed as (
    select
        alert_id,
        dedupe_key,
        kind,
        severity,
        subject,
        message,
        statistic,
        observed,
        expected_low,
        expected_high,
        window_start,
        window_end,
        evidence,
        example_run_ids,
        orchestrator_run_id,
        status,
        revision,
        occurrences,
        created_at,
        updated_at,
        resolved_at,
        delivered_at,
        delivery_attempts,
        acknowledged_at,
        acknowledged_by
    from source
)

select * from renamed
