{#-
  The consensus label of a reviewed run is its strict-majority verdict: more than half of the
  reviewers who gave a verdict chose it. A tie or a plurality below half has no consensus: the
  run stays here with has_consensus = false so marts can exclude it and count it.

  Incremental by run: a build recomputes the runs with a review ingested since the newest
  reviews_ingested_through here, less the look-back (macro lookback_since). A new review and a
  re-review (its upsert rewrites ingested_at) both count, so reviews_ingested_through is over
  all of a run's reviews, verdict or not. The pre-hook deletes those runs' rows and the build
  appends them again: a run whose verdicts were all withdrawn loses its row, as in a full build.
  The run list is fetched first and inlined as literals (raw.human_reviews has no ingested_at
  index; it is a few percent of the run log, so one pass over it is cheap).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where"
            " {{ changed_keys_filter('run_id', rereviewed_runs(), 'uuid') }}{% endif %}",
        ],
        indexes=[{'columns': ['run_id'], 'unique': true}],
    )
}}

with reviews as (
    select * from {{ ref('stg_raw__human_reviews') }}
    where {{ changed_keys_filter('run_id', rereviewed_runs(), 'uuid') }}
),

label_counts as (
    select
        run_id,
        verdict,
        count(*) as n_reviewers
    from reviews
    where verdict is not null
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
        max(reviewed_at) filter (where verdict is not null) as last_reviewed_at,
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
