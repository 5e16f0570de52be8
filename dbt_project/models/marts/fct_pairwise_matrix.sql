{#-
  The win / tie / loss matrix of a pairwise cohort: one row per contestant × opponent that met
  (both directions, so each pair has two rows that mirror each other). win_rate counts a tie as
  half a win. coverage: the items on which the pair was judged over the suite's items (its
  golden items when the suite version is stored, else the items the cohort judged). The rating
  difference and its 95 % percentile interval come from the same bootstrap replicates as the
  ratings (int_pairwise_rating_fits), so the interval is of the difference itself, not two
  intervals compared.
-#}
with outcomes as (
    select * from {{ ref('int_pairwise_outcomes') }}
),

fits as (
    select * from {{ ref('int_pairwise_rating_fits') }}
),

golden_items as (
    select * from {{ ref('stg_raw__golden_items') }}
),

pairs as (
    select
        cohort_key,
        {{ pairwise_cohort_list() }},
        contestant,
        opponent,
        {{ pairwise_record() }}
    from outcomes
    group by cohort_key, {{ pairwise_cohort_list() }}, contestant, opponent
),

cohort_items as (
    select
        cohort_key,
        max(suite) as suite,
        max(suite_version) as suite_version,
        count(distinct item_id) as judged_items
    from outcomes
    group by cohort_key
),

suite_items as (
    select
        cohort_items.cohort_key,
        coalesce(nullif(count(golden_items.item_id), 0), max(cohort_items.judged_items))
            as suite_items
    from cohort_items
    left join golden_items
        on golden_items.suite = cohort_items.suite
        and golden_items.suite_version = cohort_items.suite_version
    group by cohort_items.cohort_key
),

differences as (
    select
        contestant_fits.cohort_key,
        contestant_fits.replicate,
        contestant_fits.contestant,
        opponent_fits.contestant as opponent,
        contestant_fits.rating - opponent_fits.rating as rating_difference
    from fits as contestant_fits
    inner join fits as opponent_fits
        on opponent_fits.cohort_key = contestant_fits.cohort_key
        and opponent_fits.replicate = contestant_fits.replicate
        and opponent_fits.contestant <> contestant_fits.contestant
),

difference_figures as (
    select
        cohort_key,
        contestant,
        opponent,
        max(rating_difference) filter (where replicate = 0) as rating_difference,
        percentile_cont(0.025) within group (order by rating_difference)
        filter (where replicate > 0) as rating_difference_ci_low,
        percentile_cont(0.975) within group (order by rating_difference)
        filter (where replicate > 0) as rating_difference_ci_high
    from differences
    group by cohort_key, contestant, opponent
),

final as (
    select
        pairs.cohort_key,
        {{ pairwise_cohort_list('pairs') }},
        pairs.contestant,
        pairs.opponent,
        pairs.wins,
        pairs.ties,
        pairs.losses,
        pairs.comparisons,
        (pairs.wins + 0.5 * pairs.ties)::float8 / pairs.comparisons as win_rate,
        pairs.items,
        suite_items.suite_items,
        {{ safe_ratio('pairs.items', 'suite_items.suite_items') }} as coverage,
        difference_figures.rating_difference,
        difference_figures.rating_difference_ci_low,
        difference_figures.rating_difference_ci_high
    from pairs
    inner join suite_items on suite_items.cohort_key = pairs.cohort_key
    left join difference_figures
        on difference_figures.cohort_key = pairs.cohort_key
        and difference_figures.contestant = pairs.contestant
        and difference_figures.opponent = pairs.opponent
)

select * from final
