{#-
  Additive daily counts per stage series, kept incrementally (days that received rows are
  recomputed whole), so fct_stage_daily can compute its trailing baselines over this small
  table instead of over every call.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='run_date',
        indexes=[{'columns': ['run_date']}, {'columns': ['series_key', 'run_date'], 'unique': true}],
    )
}}

with runs as (
    select * from {{ ref('int_eval_runs') }}
    where stage is not null
        and {{ changed_periods_filter('run_date', ref('int_eval_runs')) }}
),

final as (
    select
        {{ series_key(stage_series_columns()) }}
            as series_key,
        run_date,
        {{ stage_series_list() }},
        count(*) as n_calls,
        count(*) filter (where is_settled) as n_settled,
        count(*) filter (where is_failed) as n_failed,
        count(*) filter (where status = 'parse_error') as n_parse_errors,
        count(*) filter (where status = 'ok' and passed is not null) as n_verdicts,
        count(*) filter (where status = 'ok' and passed) as n_passed,
        coalesce(sum(coalesce(sample_weight, 1.0)) filter (
            where status = 'ok' and passed is not null
        ), 0) as weight_verdicts,
        coalesce(sum(coalesce(sample_weight, 1.0)) filter (where status = 'ok' and passed), 0)
            as weight_passed,
        count(score) filter (where status = 'ok') as n_scored,
        sum(score) filter (where status = 'ok') as score_sum,
        max(loaded_at) as runs_loaded_through
    from runs
    group by {{ stage_series_list() }}, run_date
)

select * from final
