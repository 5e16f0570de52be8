{#-
  The consensus label of a reviewed run is its strict-majority verdict: more than half of the
  reviewers who gave a verdict chose it. A tie or a plurality below half has no consensus: the
  run stays here with has_consensus = false so marts can exclude it and count it.
-#}
{{ config(materialized='table', indexes=[{'columns': ['run_id'], 'unique': true}]) }}

with reviews as (
    select * from {{ ref('stg_raw__human_reviews') }}
    where verdict is not null
),

label_counts as (
    select
        run_id,
        verdict,
        count(*) as n_reviewers
    from reviews
    group by run_id, verdict
),

ranked as (
    select
        run_id,
        verdict,
        n_reviewers,
        sum(n_reviewers) over (partition by run_id) as n_reviews,
        count(*) over (partition by run_id) as n_distinct_verdicts,
        row_number() over (
            partition by run_id order by n_reviewers desc, verdict asc
        ) as rank_in_run
    from label_counts
),

review_times as (
    select
        run_id,
        max(reviewed_at) as last_reviewed_at,
        max(ingested_at) as reviews_ingested_through
    from reviews
    group by run_id
),

final as (
    select
        ranked.run_id,
        ranked.n_reviews,
        ranked.n_distinct_verdicts,
        ranked.n_reviewers as n_top_verdict,
        ranked.n_reviewers * 2 > ranked.n_reviews as has_consensus,
        case when ranked.n_reviewers * 2 > ranked.n_reviews then ranked.verdict end
            as consensus_verdict,
        review_times.last_reviewed_at,
        review_times.reviews_ingested_through
    from ranked
    inner join review_times on review_times.run_id = ranked.run_id
    where ranked.rank_in_run = 1
)

select * from final
