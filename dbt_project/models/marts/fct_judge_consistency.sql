{#-
  Self-consistency of a model that judged one item several times (trials, position swaps).
  An item is one judged thing: the same batch, parent run, suite version and item, judged by one
  model under one prompt version in one role, in one week (a re-run in a later week is a new
  measurement, which also lets the mart recompute only the weeks that received calls). Only
  items judged at least twice (settled calls)
  count. An item is consistent when every judgment parsed and all verdicts are equal; with a
  golden expected verdict it is strictly correct only when every judgment equals it.
  Verdicts are compared as stored: the runner records a position-swapped judgment in the
  original frame (attributes.position says which order the model saw).
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
        and {{ changed_periods_filter('week_start', ref('int_eval_runs')) }}
),

item_runs as (
    select
        {{ series_key([
            'week_start', 'source', 'batch_id', 'parent_run_id', 'suite', 'suite_version',
            'item_id', 'stage', 'role', 'model', 'prompt_version',
        ]) }}
            as item_key,
        runs.*
    from runs
    where item_id is not null or parent_run_id is not null
),

repeated_items as (
    select distinct item_key
    from item_runs
    where trial > 0 or position is not null
),

items as (
    select
        item_runs.item_key,
        item_runs.week_start,
        {{ stage_series_list('item_runs') }},
        count(*) as n_judgments,
        count(*) filter (where item_runs.status = 'parse_error') as n_parse_errors,
        count(distinct item_runs.verdict) as n_distinct_verdicts,
        count(item_runs.verdict) as n_verdicts,
        count(item_runs.is_correct) as n_with_expected,
        count(*) filter (where item_runs.is_correct) as n_correct,
        count(*) filter (where item_runs.position is not null) as n_with_position,
        max(item_runs.loaded_at) as runs_loaded_through
    from item_runs
    inner join repeated_items on repeated_items.item_key = item_runs.item_key
    group by item_runs.item_key, item_runs.week_start, {{ stage_series_list('item_runs') }}
    having count(*) >= 2
),

scored_items as (
    select
        {{ series_key(stage_series_columns()) }}
            as series_key,
        items.*,
        n_parse_errors = 0 and n_verdicts = n_judgments and n_distinct_verdicts = 1
            as is_consistent,
        n_with_expected = n_judgments as has_expected,
        n_with_expected = n_judgments and n_correct = n_judgments as is_strictly_correct
    from items
),

final as (
    select
        series_key,
        week_start,
        {{ stage_series_list() }},
        count(*) as n_items,
        sum(n_judgments) as n_judgments,
        count(*) filter (where n_with_position > 0) as n_items_position_swapped,
        count(*) filter (where n_parse_errors > 0) as n_items_with_parse_error,
        count(*) filter (where is_consistent) as n_items_consistent,
        {{ safe_ratio('count(*) filter (where is_consistent)', 'count(*)') }} as consistency_rate,
        {{ wilson_low('count(*) filter (where is_consistent)', 'count(*)') }}
            as consistency_ci_low,
        {{ wilson_high('count(*) filter (where is_consistent)', 'count(*)') }}
            as consistency_ci_high,
        count(*) filter (where has_expected) as n_items_with_expected,
        count(*) filter (where is_strictly_correct) as n_items_all_correct,
        {{ safe_ratio(
            'count(*) filter (where is_strictly_correct)', 'count(*) filter (where has_expected)'
        ) }} as strict_accuracy,
        {{ wilson_low(
            'count(*) filter (where is_strictly_correct)', 'count(*) filter (where has_expected)'
        ) }} as strict_accuracy_ci_low,
        {{ wilson_high(
            'count(*) filter (where is_strictly_correct)', 'count(*) filter (where has_expected)'
        ) }} as strict_accuracy_ci_high,
        {{ safe_ratio(
            'sum(n_correct) filter (where has_expected)',
            'sum(n_judgments) filter (where has_expected)'
        ) }} as judgment_accuracy,
        max(runs_loaded_through) as runs_loaded_through
    from scored_items
    group by series_key, week_start, {{ stage_series_list() }}
)

select * from final
