with source as (
    select * from {{ source('raw', 'prompt_versions') }}
),

renamed as (
    select
        prompt_name,
        prompt_version,
        created_at as prompt_created_at
    from source
)

select * from renamed
