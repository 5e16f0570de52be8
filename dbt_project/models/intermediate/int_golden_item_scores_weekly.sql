{#-
  Golden accuracy counts per item, model, prompt version and role per week, kept incrementally
  (weeks that received calls are recomputed), so fct_leaderboard sums a small table instead of
  re-deriving every outcome. Outcomes come from int_golden_outcomes (the one definition).
  runs_loaded_through is int_eval_runs' newest load at build time: the outcomes view reads the
  run log itself, so a row it counted before int_eval_runs loaded it makes its week recompute
  once more, never less.
-#}
-- depends_on: {{ ref('int_eval_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='week_start',
        indexes=[{'columns': ['week_start']}],
    )
}}

with outcomes as (
    select * from {{ ref('int_golden_outcomes') }}
    where {{ changed_periods_filter('week_start', ref('int_eval_runs')) }}
),

final as (
    select
        week_start,
        suite,
        suite_version,
        coalesce(category, '(none)') as category,
        role,
        model,
        prompt_version,
        item_id,
        count(*) as n_judged,
        count(*) filter (where is_correct) as n_correct,
        count(*) filter (where outcome = 'parse_error') as n_parse_errors,
        count(*) filter (where outcome = 'unjudged') as n_unjudged,
        (select max(eval_runs.loaded_at) from {{ ref('int_eval_runs') }} as eval_runs)
            as runs_loaded_through
    from outcomes
    group by
        week_start, suite, suite_version, coalesce(category, '(none)'), role, model,
        prompt_version, item_id
)

select * from final
