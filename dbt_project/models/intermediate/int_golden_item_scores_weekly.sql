{#-
  Golden accuracy counts per item, model, prompt version and role per week, kept incrementally
  (weeks that received golden outcomes since the last build are recomputed), so fct_leaderboard
  sums a small table instead of re-deriving every outcome. Outcomes come from
  int_golden_outcomes (the one definition, materialised by batch).
-#}
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
    where {{ changed_periods_filter('week_start', ref('int_golden_outcomes')) }}
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
        max(loaded_at) as runs_loaded_through
    from outcomes
    group by
        week_start, suite, suite_version, coalesce(category, '(none)'), role, model,
        prompt_version, item_id
)

select * from final
