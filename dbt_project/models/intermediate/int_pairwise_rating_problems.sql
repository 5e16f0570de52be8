{#-
  The Bradley–Terry fitting problems of int_pairwise_rating_fits (docs/pairwise-ratings.md): one
  row per pairwise cohort × replicate, with every ordered pair of its contestants' (weighted)
  wins as arrays. Replicate 0 counts the judgments as they are; replicate r (1…B, setting
  pairwise_bootstrap_replicates, 200) weights item i by a Poisson(1) draw from a hash of the
  suite, its version, the item and r (macro poisson_one_draw): items are the unit (an item's
  orders, trials and pairs are not independent), resampling needs no random state and every
  build gives the same replicates. Every parsed judgment is one comparison (both orders and
  every trial count), a tie half a win for each side.
  Contestants are numbered 1…n per cohort (`contestants`, in name order); each has a zero row
  against itself, so every contestant has a place in the arrays of every replicate, and
  `compared` says which the replicate compares at all. A table of its own (indexed) so the fit's
  recursion finds a problem by key instead of rescanning them.
-#}
{{ config(materialized='table', indexes=[{'columns': ['problem_id'], 'unique': true}]) }}

with judgments as (
    select * from {{ ref('int_pairwise_judgments') }}
    where verdict is not null
        and contestant_a <> contestant_b
),

{#
  Integer keys and float8 counts: the heavy join and grouping below (items × replicates) never
  compares text or adds numerics.
-#}
cohorts as (
    select
        cohort_key,
        (row_number() over (order by cohort_key))::int as cohort_number
    from (
        select distinct cohort_key
        from judgments
    ) as distinct_cohorts
),

contestants as (
    select
        named.cohort_key,
        cohorts.cohort_number,
        named.contestant,
        dense_rank() over (partition by named.cohort_key order by named.contestant)::int
            as contestant_index
    from (
        select
            cohort_key,
            contestant_a as contestant
        from judgments
        union
        select
            cohort_key,
            contestant_b as contestant
        from judgments
    ) as named
    inner join cohorts on cohorts.cohort_key = named.cohort_key
),

items as (
    select
        judged.cohort_key,
        cohorts.cohort_number,
        judged.suite,
        judged.suite_version,
        judged.item_id,
        (row_number() over (order by judged.cohort_key, judged.item_id))::int as item_number
    from (
        select distinct
            cohort_key,
            suite,
            suite_version,
            item_id
        from judgments
    ) as judged
    inner join cohorts on cohorts.cohort_key = judged.cohort_key
),

{# One row per item × ordered contestant pair: the item's wins of a over b. -#}
item_pairs as (
    select
        items.cohort_number,
        items.item_number,
        contestant_a.contestant_index as index_a,
        contestant_b.contestant_index as index_b,
        sum(case judgments.verdict when 'a' then 1.0 when 'tie' then 0.5 else 0.0 end)::float8
            as wins_a,
        sum(case judgments.verdict when 'b' then 1.0 when 'tie' then 0.5 else 0.0 end)::float8
            as wins_b
    from judgments
    inner join items
        on items.cohort_key = judgments.cohort_key
        and items.item_id = judgments.item_id
    inner join contestants as contestant_a
        on contestant_a.cohort_key = judgments.cohort_key
        and contestant_a.contestant = judgments.contestant_a
    inner join contestants as contestant_b
        on contestant_b.cohort_key = judgments.cohort_key
        and contestant_b.contestant = judgments.contestant_b
    group by
        items.cohort_number, items.item_number,
        contestant_a.contestant_index, contestant_b.contestant_index
),

item_weights as materialized (
    select
        items.item_number,
        replicates.replicate,
        case when replicates.replicate = 0 then 1 else
            {{ poisson_one_draw(
                "concat_ws('|', coalesce(items.suite, '∅'), coalesce(items.suite_version, '∅'),"
                ~ " items.item_id, replicates.replicate)"
            ) }}
        end as weight
    from items
    cross join generate_series(0, {{ pairwise_bootstrap_replicates() }}) as replicates (replicate)
),

{# The pair's weighted wins per replicate, then both directions: i's wins over j, j's over i. -#}
pair_totals as (
    select
        item_pairs.cohort_number,
        item_weights.replicate,
        item_pairs.index_a,
        item_pairs.index_b,
        sum(item_weights.weight * item_pairs.wins_a) as wins_a,
        sum(item_weights.weight * item_pairs.wins_b) as wins_b
    from item_pairs
    inner join item_weights on item_weights.item_number = item_pairs.item_number
    where item_weights.weight > 0
    group by
        item_pairs.cohort_number, item_weights.replicate, item_pairs.index_a, item_pairs.index_b
),

directed as (
    select
        pair_totals.cohort_number,
        pair_totals.replicate,
        sides.winner,
        sides.loser,
        sum(sides.wins) as wins,
        sum(sides.losses) as losses
    from pair_totals
    cross join
        lateral (
            values
            (pair_totals.index_a, pair_totals.index_b, pair_totals.wins_a, pair_totals.wins_b),
            (pair_totals.index_b, pair_totals.index_a, pair_totals.wins_b, pair_totals.wins_a)
        ) as sides (winner, loser, wins, losses)
    group by pair_totals.cohort_number, pair_totals.replicate, sides.winner, sides.loser
    union all
    select
        contestants.cohort_number,
        replicates.replicate,
        contestants.contestant_index as winner,
        contestants.contestant_index as loser,
        0.0::float8 as wins,
        0.0::float8 as losses
    from contestants
    cross join generate_series(0, {{ pairwise_bootstrap_replicates() }}) as replicates (replicate)
),

compared as (
    select
        cohort_number,
        replicate,
        array_agg(wins + losses > 0 order by winner) as compared
    from (
        select
            cohort_number,
            replicate,
            winner,
            sum(wins) as wins,
            sum(losses) as losses
        from directed
        group by cohort_number, replicate, winner
    ) as totals
    group by cohort_number, replicate
),

names as (
    select
        cohort_number,
        max(cohort_key) as cohort_key,
        array_agg(contestant order by contestant_index) as contestants
    from contestants
    group by cohort_number
),

arrays as (
    select
        cohort_number,
        replicate,
        array_agg(winner order by winner, loser) as winners,
        array_agg(loser order by winner, loser) as losers,
        array_agg(wins order by winner, loser) as wins,
        array_agg(losses order by winner, loser) as losses
    from directed
    group by cohort_number, replicate
),

final as (
    select
        (row_number() over (order by names.cohort_key, arrays.replicate))::int as problem_id,
        names.cohort_key,
        arrays.replicate,
        names.contestants,
        compared.compared,
        arrays.winners,
        arrays.losers,
        arrays.wins,
        arrays.losses
    from arrays
    inner join names on names.cohort_number = arrays.cohort_number
    inner join compared
        on compared.cohort_number = arrays.cohort_number
        and compared.replicate = arrays.replicate
)

select * from final
