with source as (
    select * from {{ source('raw', 'alert_deliveries') }}
),

renamed as (
    select
        alert_id,
        webhook,
        attempts as delivery_attempts,
        last_attempt_at,
        delivered_at
    from source
)

select * from renamed
