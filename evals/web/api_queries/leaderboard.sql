-- Models × suites over all categories: accuracy with its interval, coverage and rank
-- (fct_leaderboard, newest suite version each); optional suite / role filters.
with board as (
    select * from {{ ref('fct_leaderboard') }}
),

newest_version as (
    select distinct on (suite)
        suite,
        suite_version
    from board
    order by suite, suite_version desc
)

select
    board.suite,
    board.suite_version,
    board.model,
    board.prompt_version,
    board.role,
    board.n_judged,
    board.n_correct,
    board.accuracy,
    board.accuracy_ci_low,
    board.accuracy_ci_high,
    board.n_items_judged,
    board.n_items_in_suite,
    board.coverage,
    board.accuracy_rank
from board
inner join newest_version using (suite, suite_version)
where board.category = '(all)'
    and (%(suite)s::text is null or board.suite = %(suite)s)
    and (%(role)s::text is null or board.role = %(role)s)
order by board.suite, board.accuracy_rank, board.model
