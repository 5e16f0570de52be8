with source as (
    select * from {{ source('raw', 'review_queue') }}
),

renamed as (
    select
        run_id,
        stratum,
        reason as queue_reason,
        queued_at,
        exported_at
    from source
)

select * from renamed
