{#-
  Bradley–Terry ratings of a pairwise cohort's contestants (models / prompt versions / stored
  response sources), on the Elo scale with mean 0, with 95 % percentile intervals from the
  item bootstrap (int_pairwise_rating_fits; definitions in docs/pairwise-ratings.md), and each
  contestant's record: comparisons are parsed judgments (both orders and every trial count).
-#}
with fits as (
    select * from {{ ref('int_pairwise_rating_fits') }}
),

outcomes as (
    select * from {{ ref('int_pairwise_outcomes') }}
),

records as (
    select
        cohort_key,
        {{ pairwise_cohort_list() }},
        contestant,
        {{ pairwise_record() }}
    from outcomes
    group by cohort_key, {{ pairwise_cohort_list() }}, contestant
),

intervals as (
    select
        cohort_key,
        contestant,
        count(*) as bootstrap_replicates,
        percentile_cont(0.025) within group (order by rating) as rating_ci_low,
        percentile_cont(0.975) within group (order by rating) as rating_ci_high
    from fits
    where replicate > 0
    group by cohort_key, contestant
),

point_estimates as (
    select * from fits
    where replicate = 0
),

final as (
    select
        records.cohort_key,
        {{ pairwise_cohort_list('records') }},
        records.contestant,
        point_estimates.rating,
        intervals.rating_ci_low,
        intervals.rating_ci_high,
        rank() over (partition by records.cohort_key order by point_estimates.rating desc)
            as rank,
        records.wins,
        records.ties,
        records.losses,
        records.comparisons,
        records.items,
        records.wins + records.ties > 0 and records.losses + records.ties > 0
            as has_finite_rating,
        coalesce(intervals.bootstrap_replicates, 0) as bootstrap_replicates,
        point_estimates.max_step as fit_max_step
    from records
    inner join point_estimates
        on point_estimates.cohort_key = records.cohort_key
        and point_estimates.contestant = records.contestant
    left join intervals
        on intervals.cohort_key = records.cohort_key
        and intervals.contestant = records.contestant
)

select * from final
