{#-
  Golden accuracy counts per item, model, prompt version and role per week, kept incrementally
  (weeks that received calls are recomputed), so fct_leaderboard sums a small table instead of
  scanning every golden call. Golden and ci calls with an expected verdict, settled only.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='week_start',
        indexes=[{'columns': ['week_start']}],
    )
}}

with runs as (
    select * from {{ ref('int_eval_runs') }}
    where is_settled
        and expected_verdict is not null
        and suite is not null
        and source in ('golden', 'ci')
        and {{ changed_periods_filter('week_start', ref('int_eval_runs')) }}
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
        max(loaded_at) as runs_loaded_through
    from runs
    group by
        week_start, suite, suite_version, coalesce(category, '(none)'), role, model,
        prompt_version, item_id
)

select * from final
