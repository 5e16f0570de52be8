{#-
  Bradley–Terry ratings of every contestant of a pairwise cohort, fitted here in SQL on each
  problem of int_pairwise_rating_problems: replicate 0 on the judgments as they are, replicates
  1…B on the items resampled (docs/pairwise-ratings.md).
  - Model: P(i beats j) = p_i / (p_i + p_j); ties count half a win for each side.
  - Fit: maximum likelihood by fixed-point iterations of Newman's (2023) update
    p_i ← Σ_j w_ij p_j / (p_i + p_j) / Σ_j w_ji / (p_i + p_j), w_ij i's wins over j; its fixed
    point is the likelihood equation Σ_j w_ij = Σ_j n_ij p_i / (p_i + p_j), and it converges
    far faster than Zermelo's. rating = 400 · log10(p), centred to mean 0 over the
    replicate's contestants (those with a finite strength). The point fit stops when a step
    changes no rating by pairwise_rating_tolerance (1e-9 rating points) or more, a bootstrap
    replicate at pairwise_bootstrap_tolerance (1e-6), either after pairwise_rating_iterations
    steps (500) at most; max_step is the last step's largest change.
  - Bootstrap: each replicate of int_pairwise_rating_problems (items resampled with hashed
    Poisson(1) weights) is fitted the same way. A contestant the replicate does not compare is
    absent from it.
  - The likelihood has no finite maximum for a contestant that never wins or never loses (ties
    counting half): its strength is held at 1e-300 or 1e300, it is left out of the centring,
    and the ratings mart reports has_finite_rating.
  The iteration runs as a recursive CTE, one row per cohort × replicate carrying its strengths
  as an array, which finds its problem's comparison arrays by problem_id: each step is one pass
  over a handful of pairs per row.
-#}
{{ config(materialized='table') }}

with recursive problems as (
    select * from {{ ref('int_pairwise_rating_problems') }}
),

{#
  One fixed-point step per recursion over the strengths p (not centred: the update is
  scale-free, so the scale settles with the fit; ratings are centred at the end). A strength
  stays within [1e-300, 1e300] (a contestant without a win or without a loss); one the
  replicate does not compare keeps 1. The point fit (replicate 0) runs to
  pairwise_rating_tolerance, a bootstrap replicate to pairwise_bootstrap_tolerance (its
  percentiles need no more).
-#}
fits (problem_id, replicate, tolerance, iteration, strengths, max_step) as (
    select
        problems.problem_id,
        problems.replicate,
        case
            when problems.replicate = 0 then {{ pairwise_rating_tolerance() }}
            else {{ pairwise_bootstrap_tolerance() }}
        end as tolerance,
        0 as iteration,
        array_fill(1.0::float8, array[cardinality(problems.contestants)]) as strengths,
        null::float8 as max_step
    from problems
    union all
    select
        fits.problem_id,
        fits.replicate,
        fits.tolerance,
        fits.iteration + 1,
        stepped.strengths,
        stepped.max_step
    from fits
    inner join problems on problems.problem_id = fits.problem_id
    cross join
        lateral (
            select
                array_agg(updated.strength order by updated.winner) as strengths,
                max(abs(ln(updated.strength / fits.strengths[updated.winner])))
                * {{ elo_per_ln() }} as max_step
            from (
                select
                    sums.winner,
                    case
                        when sums.wins = 0 and sums.losses = 0 then 1.0
                        else least(greatest(
                                coalesce(sums.numerator / nullif(sums.denominator, 0), 1e300),
                                1e-300
                            ), 1e300)
                    end as strength
                from (
                    select
                        pairs.winner,
                        sum(pairs.wins) as wins,
                        sum(pairs.losses) as losses,
                        sum(
                            pairs.wins * fits.strengths[pairs.loser]
                            / (fits.strengths[pairs.winner] + fits.strengths[pairs.loser])
                        ) as numerator,
                        sum(
                            pairs.losses
                            / (fits.strengths[pairs.winner] + fits.strengths[pairs.loser])
                        ) as denominator
                    from
                        unnest(problems.winners, problems.losers, problems.wins, problems.losses)
                            as pairs (winner, loser, wins, losses)
                    group by pairs.winner
                ) as sums
            ) as updated
        ) as stepped
    where fits.iteration < {{ pairwise_rating_iterations() }}
        and (fits.max_step is null or fits.max_step >= fits.tolerance)
),

converged as (
    select
        problems.cohort_key,
        problems.replicate,
        fits.max_step,
        contestants.contestant,
        ln(fits.strengths[contestants.contestant_index]) as log_strength,
        fits.strengths[contestants.contestant_index] > 1e-300
        and fits.strengths[contestants.contestant_index] < 1e300 as is_finite
    from fits
    inner join problems on problems.problem_id = fits.problem_id
    cross join
        lateral unnest(problems.contestants, problems.compared)
        with ordinality as contestants (contestant, is_compared, contestant_index)
    where contestants.is_compared
        and (
            fits.iteration = {{ pairwise_rating_iterations() }}
            or fits.max_step < fits.tolerance
        )
),

{# Centred on the replicate's contestants with a finite strength. -#}
final as (
    select
        cohort_key,
        replicate,
        contestant,
        (
            log_strength
            - avg(log_strength) filter (where is_finite) over (partition by cohort_key, replicate)
        ) * {{ elo_per_ln() }} as rating,
        max_step
    from converged
)

select * from final
