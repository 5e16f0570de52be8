-- Pairwise ratings per cohort (suite version × judge × judge prompt version × source), best first
-- (fct_pairwise_ratings); optional suite / judge filters.
with ratings as (
    select * from {{ ref('fct_pairwise_ratings') }}
)

select
    ratings.suite,
    ratings.suite_version,
    ratings.judge_model,
    ratings.judge_prompt_version,
    ratings.source,
    ratings.contestant,
    ratings.rating,
    ratings.rating_ci_low,
    ratings.rating_ci_high,
    ratings.rank,
    ratings.wins,
    ratings.ties,
    ratings.losses,
    ratings.comparisons,
    ratings.items
from ratings
where (%(suite)s::text is null or ratings.suite = %(suite)s)
    and (%(judge)s::text is null or ratings.judge_model = %(judge)s)
order by
    ratings.suite, ratings.suite_version, ratings.judge_model, ratings.judge_prompt_version,
    ratings.source,
    ratings.rank, ratings.contestant
