with source as (
    select * from {{ source('raw', 'human_reviews') }}
),

renamed as (
    select
        review_id,
        run_id,
        reviewer,
        verdict,
        score,
        issue_tags,
        source as review_source,
        reviewed_at,
        ingested_at
    from source
)

select * from renamed
