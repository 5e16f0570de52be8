{#-
  A tag counts once per call even if a model repeats it. share_of_runs divides by every ok call
  of the series that day (tagged or not); share_of_tags by all tag mentions of the series that day.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='run_date',
        indexes=[{'columns': ['run_date']}, {'columns': ['stage', 'run_date']}],
    )
}}

with runs as (
    select {{ stage_series_list() }}, run_date, issue_tags, loaded_at
    from {{ ref('int_eval_runs') }}
    where status = 'ok'
        and stage is not null
        and {{ changed_periods_filter('run_date', ref('int_eval_runs')) }}
),

series_totals as (
    select
        {{ stage_series_list() }}, run_date,
        count(*) as n_runs,
        max(loaded_at) as runs_loaded_through
    from runs
    group by {{ stage_series_list() }}, run_date
),

tag_counts as (
    select
        {{ stage_series_list('runs') }}, runs.run_date,
        tags.issue_tag,
        count(*) as n_runs_with_tag
    from runs
    cross join
        lateral (
            select distinct tag from unnest(runs.issue_tags) as tag
            where tag is not null
        ) as tags (issue_tag)
    group by {{ stage_series_list('runs') }}, runs.run_date, tags.issue_tag
),

{# Keys are hashed after aggregation (few rows), so the join is a plain hash join. -#}
keyed_totals as (
    select
        {{ series_key(stage_series_columns()) }}
            as series_key,
        series_totals.*
    from series_totals
),

keyed_tags as (
    select
        {{ series_key(stage_series_columns()) }}
            as series_key,
        tag_counts.*
    from tag_counts
),

final as (
    select
        keyed_tags.series_key,
        keyed_tags.run_date,
        keyed_tags.stage,
        keyed_tags.issue_tag,
        keyed_tags.source,
        keyed_tags.role,
        keyed_tags.model,
        keyed_tags.prompt_version,
        keyed_tags.suite,
        keyed_tags.suite_version,
        keyed_tags.n_runs_with_tag,
        keyed_totals.n_runs,
        {{ safe_ratio('keyed_tags.n_runs_with_tag', 'keyed_totals.n_runs') }} as share_of_runs,
        {{ safe_ratio(
            'keyed_tags.n_runs_with_tag',
            'sum(keyed_tags.n_runs_with_tag) over (partition by keyed_tags.series_key, keyed_tags.run_date)'
        ) }} as share_of_tags,
        keyed_totals.runs_loaded_through
    from keyed_tags
    inner join keyed_totals
        on keyed_totals.series_key = keyed_tags.series_key
        and keyed_totals.run_date = keyed_tags.run_date
)

select * from final
