with source as (
    select * from {{ source('raw', 'golden_suites') }}
),

renamed as (
    select
        suite,
        suite_version,
        kind as suite_kind,
        description,
        verdicts,
        passing_verdicts,
        issue_tags,
        item_count,
        loaded_at
    from source
)

select * from renamed
