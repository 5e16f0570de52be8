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
    select * from {{ ref('fct_eval_runs') }}
    where status = 'ok'
        and stage is not null
        and {{ changed_periods_filter('run_date') }}
),

series_runs as (
    select
        {{ series_key(['stage', 'source', 'role', 'model', 'prompt_version', 'suite', 'suite_version']) }}
            as series_key,
        *
    from runs
),

series_totals as (
    select
        series_key,
        run_date,
        count(*) as n_runs,
        max(loaded_at) as runs_loaded_through
    from series_runs
    group by series_key, run_date
),

run_tags as (
    select distinct
        series_runs.series_key,
        series_runs.run_date,
        series_runs.stage,
        series_runs.source,
        series_runs.role,
        series_runs.model,
        series_runs.prompt_version,
        series_runs.suite,
        series_runs.suite_version,
        series_runs.run_id,
        tag.issue_tag
    from series_runs
    cross join lateral unnest(series_runs.issue_tags) as tag (issue_tag)
    where tag.issue_tag is not null
),

tag_counts as (
    select
        series_key,
        run_date,
        stage,
        source,
        role,
        model,
        prompt_version,
        suite,
        suite_version,
        issue_tag,
        count(*) as n_runs_with_tag
    from run_tags
    group by series_key, run_date, stage, source, role, model, prompt_version, suite,
        suite_version, issue_tag
),

final as (
    select
        tag_counts.series_key,
        tag_counts.run_date,
        tag_counts.stage,
        tag_counts.issue_tag,
        tag_counts.source,
        tag_counts.role,
        tag_counts.model,
        tag_counts.prompt_version,
        tag_counts.suite,
        tag_counts.suite_version,
        tag_counts.n_runs_with_tag,
        series_totals.n_runs,
        {{ safe_ratio('tag_counts.n_runs_with_tag', 'series_totals.n_runs') }} as share_of_runs,
        {{ safe_ratio(
            'tag_counts.n_runs_with_tag',
            'sum(tag_counts.n_runs_with_tag) over (partition by tag_counts.series_key, tag_counts.run_date)'
        ) }} as share_of_tags,
        series_totals.runs_loaded_through
    from tag_counts
    inner join series_totals
        on series_totals.series_key = tag_counts.series_key
        and series_totals.run_date = tag_counts.run_date
)

select * from final
