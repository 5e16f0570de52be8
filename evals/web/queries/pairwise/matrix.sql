-- The win-rate matrix per cohort (fct_pairwise_matrix): contestant × opponent, ties half;
-- optional suite / judge filters.
with matrix as (
    select * from {{ ref('fct_pairwise_matrix') }}
)

select
    matrix.suite,
    matrix.suite_version,
    matrix.judge_model,
    matrix.judge_prompt_version,
    matrix.source,
    matrix.contestant,
    matrix.opponent,
    matrix.wins,
    matrix.ties,
    matrix.losses,
    matrix.win_rate,
    matrix.items,
    matrix.coverage
from matrix
where (%(suite)s::text is null or matrix.suite = %(suite)s)
    and (%(judge)s::text is null or matrix.judge_model = %(judge)s)
order by
    matrix.suite, matrix.suite_version, matrix.judge_model, matrix.judge_prompt_version,
    matrix.source,
    matrix.contestant, matrix.opponent
