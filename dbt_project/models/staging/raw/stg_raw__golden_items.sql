with source as (
    select * from {{ source('raw', 'golden_items') }}
),

renamed as (
    select
        suite,
        suite_version,
        item_id,
        item_hash,
        stage,
        category,
        expected ->> 'verdict' as expected_verdict,
        loaded_at
    from source
)

select * from renamed
