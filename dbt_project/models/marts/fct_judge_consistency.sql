{#-
  Self-consistency of a model that judged one item several times (trials, position swaps).
  An item is one judged thing: the same batch, parent run, suite version and item, judged by one
  model under one prompt version in one role, in one week (a re-run in a later week is a new
  measurement, which also lets the mart recompute only the weeks that received calls). Only
  items judged at least twice (settled calls)
  count. An item is consistent when every judgment parsed and all verdicts are equal; with a
  golden expected verdict it is strictly correct only when every judgment equals it; with a
  human label (macro item_human_majority: the reviewers' strict majority, split votes leave the
  item without one and counted) it strictly agrees with humans only when every judgment equals
  that label. A week is recomputed when it received calls or one of its calls a review.
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
        and {{
            changed_periods_filter(
                'week_start', ref('int_eval_runs'),
                also_changed=reviewed_weeks(ref('int_eval_runs')),
            )
        }}
),

consensus as (
    select * from {{ ref('int_human_consensus') }}
),

reviews_watermark as (
    select max(ingested_at) as reviews_ingested_through
    from {{ ref('stg_raw__human_reviews') }}
),

item_runs as (
    select
        {{ judged_item_key('runs') }} as item_key,
        runs.*,
        consensus.run_id is not null as is_reviewed,
        consensus.has_consensus,
        consensus.consensus_verdict
    from runs
    left join consensus on consensus.run_id = runs.run_id
    where runs.item_id is not null or runs.parent_run_id is not null
),

human_labels as (
    select
        item_key,
        count(*) filter (where is_reviewed) > 0 as is_reviewed,
        {{ item_human_majority('is_reviewed', 'has_consensus', 'consensus_verdict') }}
            as human_majority_label
    from item_runs
    group by item_key
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
        bool_or(human_labels.is_reviewed) as is_reviewed,
        max(human_labels.human_majority_label) as human_majority_label,
        count(*) filter (
            where item_runs.status = 'ok' and item_runs.verdict = human_labels.human_majority_label
        ) as n_agree_with_human,
        max(item_runs.loaded_at) as runs_loaded_through
    from item_runs
    inner join repeated_items on repeated_items.item_key = item_runs.item_key
    inner join human_labels on human_labels.item_key = item_runs.item_key
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
        n_with_expected = n_judgments and n_correct = n_judgments as is_strictly_correct,
        human_majority_label is not null as has_human_majority,
        n_agree_with_human = n_judgments as agrees_with_human_in_every_judgment
    from items
),

final as (
    select
        scored_items.series_key,
        scored_items.week_start,
        {{ stage_series_list('scored_items') }},
        count(*) as n_items,
        sum(scored_items.n_judgments) as n_judgments,
        count(*) filter (where scored_items.n_with_position > 0) as n_items_position_swapped,
        count(*) filter (where scored_items.n_parse_errors > 0) as n_items_with_parse_error,
        count(*) filter (where scored_items.is_consistent) as n_items_consistent,
        {{ safe_ratio('count(*) filter (where scored_items.is_consistent)', 'count(*)') }}
            as consistency_rate,
        {{ wilson_low('count(*) filter (where scored_items.is_consistent)', 'count(*)') }}
            as consistency_ci_low,
        {{ wilson_high('count(*) filter (where scored_items.is_consistent)', 'count(*)') }}
            as consistency_ci_high,
        count(*) filter (where scored_items.has_expected) as n_items_with_expected,
        count(*) filter (where scored_items.is_strictly_correct) as n_items_all_correct,
        {{ safe_ratio(
            'count(*) filter (where scored_items.is_strictly_correct)',
            'count(*) filter (where scored_items.has_expected)'
        ) }} as strict_accuracy,
        {{ wilson_low(
            'count(*) filter (where scored_items.is_strictly_correct)',
            'count(*) filter (where scored_items.has_expected)'
        ) }} as strict_accuracy_ci_low,
        {{ wilson_high(
            'count(*) filter (where scored_items.is_strictly_correct)',
            'count(*) filter (where scored_items.has_expected)'
        ) }} as strict_accuracy_ci_high,
        {{ safe_ratio(
            'sum(scored_items.n_correct) filter (where scored_items.has_expected)',
            'sum(scored_items.n_judgments) filter (where scored_items.has_expected)'
        ) }} as judgment_accuracy,
        count(*) filter (where scored_items.has_human_majority) as n_items_with_human_majority,
        count(*) filter (where scored_items.is_reviewed and not scored_items.has_human_majority)
            as n_items_without_human_majority,
        count(*) filter (
            where scored_items.has_human_majority
            and scored_items.agrees_with_human_in_every_judgment
        ) as n_items_all_agree_with_human_majority,
        {{ safe_ratio(
            'count(*) filter (where scored_items.has_human_majority'
            ~ ' and scored_items.agrees_with_human_in_every_judgment)',
            'count(*) filter (where scored_items.has_human_majority)'
        ) }} as strict_agreement_with_human_majority,
        {{ wilson_low(
            'count(*) filter (where scored_items.has_human_majority'
            ~ ' and scored_items.agrees_with_human_in_every_judgment)',
            'count(*) filter (where scored_items.has_human_majority)'
        ) }} as strict_agreement_with_human_majority_ci_low,
        {{ wilson_high(
            'count(*) filter (where scored_items.has_human_majority'
            ~ ' and scored_items.agrees_with_human_in_every_judgment)',
            'count(*) filter (where scored_items.has_human_majority)'
        ) }} as strict_agreement_with_human_majority_ci_high,
        max(scored_items.runs_loaded_through) as runs_loaded_through,
        max(reviews_watermark.reviews_ingested_through) as reviews_ingested_through
    from scored_items
    cross join reviews_watermark
    group by
        scored_items.series_key, scored_items.week_start, {{ stage_series_list('scored_items') }}
)

select * from final
