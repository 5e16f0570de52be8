{#-
  Bradley–Terry ratings of every contestant of a pairwise cohort, fitted here in SQL: replicate 0
  on the judgments as they are, replicates 1…B (setting pairwise_bootstrap_replicates, 200) on
  the items resampled (docs/pairwise-ratings.md).
  - Model: P(i beats j) = p_i / (p_i + p_j). Every parsed judgment is one comparison (both orders
    and every trial count); a tie is half a win for each side. Parse errors are not comparisons.
  - Fit: maximum likelihood by fixed-point iterations of Newman's (2023) update
    p_i ← Σ_j w_ij p_j / (p_i + p_j) / Σ_j w_ji / (p_i + p_j), w_ij i's wins over j; its fixed
    point is the likelihood equation Σ_j w_ij = Σ_j n_ij p_i / (p_i + p_j), and it converges
    far faster than Zermelo's. Each step re-centres log strengths on their mean, so
    rating = 400 · log10(p) has mean 0 over the cohort's contestants. A replicate stops when
    a step changes no rating by pairwise_rating_tolerance (1e-9 rating points) or more, or
    after pairwise_rating_iterations steps (500); max_step is its last step's largest change
    (~50 steps to 1e-10 on 4 contestants).
  - Bootstrap: items are the unit (an item's orders, trials and pairs are not independent).
    Replicate r weights item i by a Poisson(1) draw from a hash of the suite, its version, the
    item and r (macro poisson_one_draw), so resampling needs no random state and a build is
    reproducible. A contestant that no item of a replicate compares is absent from it.
  - The likelihood has no finite maximum for a contestant that never wins or never loses (ties
    counting half): its rating runs off towards ∓∞ as iterations go on (documented; the
    ratings mart reports has_finite_rating).
  The iteration runs as a recursive CTE, one row per cohort × replicate carrying its log
  strengths as an array; its comparison counts are arrays too (problems), so each step is one
  pass over a handful of pairs per row.
-#}
{{ config(materialized='table') }}

with recursive judgments as (
    select * from {{ ref('int_pairwise_judgments') }}
    where verdict is not null
),

contestants as (
    select
        cohort_key,
        contestant,
        dense_rank() over (partition by cohort_key order by contestant)::int as contestant_index
    from (
        select cohort_key, contestant_a as contestant from judgments
        union
        select cohort_key, contestant_b as contestant from judgments
    ) as named
),

{# One row per cohort × item × ordered contestant pair: the item's wins of a over b. -#}
item_pairs as (
    select
        judgments.cohort_key,
        {{ pairwise_cohort_list('judgments') }},
        judgments.item_id,
        contestant_a.contestant_index as index_a,
        contestant_b.contestant_index as index_b,
        sum(case judgments.verdict when 'a' then 1.0 when 'tie' then 0.5 else 0.0 end)
            as wins_a,
        sum(case judgments.verdict when 'b' then 1.0 when 'tie' then 0.5 else 0.0 end)
            as wins_b
    from judgments
    inner join contestants as contestant_a
        on contestant_a.cohort_key = judgments.cohort_key
        and contestant_a.contestant = judgments.contestant_a
    inner join contestants as contestant_b
        on contestant_b.cohort_key = judgments.cohort_key
        and contestant_b.contestant = judgments.contestant_b
    where judgments.contestant_a <> judgments.contestant_b
    group by
        judgments.cohort_key, {{ pairwise_cohort_list('judgments') }}, judgments.item_id,
        contestant_a.contestant_index, contestant_b.contestant_index
),

items as (
    select distinct cohort_key, suite, suite_version, item_id
    from item_pairs
),

item_weights as (
    select
        items.cohort_key,
        items.item_id,
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

{# Both directions of every comparison: i's (weighted) wins over j, and j's over i. -#}
directed as (
    select
        item_pairs.cohort_key,
        item_weights.replicate,
        sides.winner,
        sides.loser,
        sum(item_weights.weight * sides.wins) as wins,
        sum(item_weights.weight * sides.losses) as losses
    from item_pairs
    inner join item_weights
        on item_weights.cohort_key = item_pairs.cohort_key
        and item_weights.item_id = item_pairs.item_id
    cross join lateral (
        values
        (item_pairs.index_a, item_pairs.index_b, item_pairs.wins_a, item_pairs.wins_b),
        (item_pairs.index_b, item_pairs.index_a, item_pairs.wins_b, item_pairs.wins_a)
    ) as sides (winner, loser, wins, losses)
    where item_weights.weight > 0
    group by item_pairs.cohort_key, item_weights.replicate, sides.winner, sides.loser
),

problems as (
    select
        directed.cohort_key,
        directed.replicate,
        max(cohort_sizes.n_contestants) as n_contestants,
        array_agg(directed.winner order by directed.winner, directed.loser) as winners,
        array_agg(directed.loser order by directed.winner, directed.loser) as losers,
        array_agg(directed.wins::float8 order by directed.winner, directed.loser) as wins,
        array_agg(directed.losses::float8 order by directed.winner, directed.loser) as losses
    from directed
    inner join (
        select cohort_key, count(*)::int as n_contestants
        from contestants
        group by cohort_key
    ) as cohort_sizes on cohort_sizes.cohort_key = directed.cohort_key
    group by directed.cohort_key, directed.replicate
),

{#
  One fixed-point step per recursion: each contestant's new log strength from the current
  strengths, then centred on the mean of the contestants present (null for one absent from the
  replicate). A strength stays within [1e-300, 1e300] (a contestant without a win or without a
  loss), so ln is defined.
-#}
fits (cohort_key, replicate, iteration, log_strengths, max_step) as (
    select
        problems.cohort_key,
        problems.replicate,
        0,
        array_fill(0.0::float8, array[problems.n_contestants]),
        null::float8
    from problems
    union all
    select
        fits.cohort_key,
        fits.replicate,
        fits.iteration + 1,
        stepped.log_strengths,
        stepped.max_step
    from fits
    inner join problems
        on problems.cohort_key = fits.cohort_key
        and problems.replicate = fits.replicate
    cross join lateral (
        select
            array_agg(centred.log_strength order by centred.contestant_index) as log_strengths,
            max(abs(centred.log_strength - fits.log_strengths[centred.contestant_index]))
            * {{ elo_per_ln() }} as max_step
        from (
            select
                indexes.contestant_index,
                updated.log_strength - avg(updated.log_strength) over () as log_strength
            from generate_series(1, problems.n_contestants) as indexes (contestant_index)
            left join (
                select
                    terms.winner,
                    ln(least(greatest(coalesce(
                        sum(terms.wins * terms.p_loser / (terms.p_winner + terms.p_loser))
                        / nullif(sum(terms.losses / (terms.p_winner + terms.p_loser)), 0),
                        1e300
                    ), 1e-300), 1e300)) as log_strength
                from (
                    select
                        pairs.winner,
                        pairs.wins,
                        pairs.losses,
                        exp(fits.log_strengths[pairs.winner]) as p_winner,
                        exp(fits.log_strengths[pairs.loser]) as p_loser
                    from unnest(problems.winners, problems.losers, problems.wins, problems.losses)
                        as pairs (winner, loser, wins, losses)
                ) as terms
                group by terms.winner
            ) as updated on updated.winner = indexes.contestant_index
        ) as centred
    ) as stepped
    where fits.iteration < {{ pairwise_rating_iterations() }}
        and (fits.max_step is null or fits.max_step >= {{ pairwise_rating_tolerance() }})
),

final as (
    select
        fits.cohort_key,
        fits.replicate,
        contestants.contestant,
        fits.log_strengths[contestants.contestant_index] * {{ elo_per_ln() }} as rating,
        fits.max_step
    from fits
    inner join contestants on contestants.cohort_key = fits.cohort_key
    where (
        fits.iteration = {{ pairwise_rating_iterations() }}
        or fits.max_step < {{ pairwise_rating_tolerance() }}
    )
        and fits.log_strengths[contestants.contestant_index] is not null
)

select * from final
