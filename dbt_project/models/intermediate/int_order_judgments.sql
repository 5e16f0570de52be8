{#-
  Judgments made in a known presentation order (attributes.position set), one row per settled
  judgment and reference, with the item's reference label. An item is one judged thing
  (macro judged_item_key, shared with fct_judge_consistency). Which position values are the swapped order: the
  presentation_order macro (setting swapped_positions).
  References, per item (not per row: humans label the content, whichever order's row they saw):
  - golden_expected: the item's golden expected verdict;
  - human_majority: the item's human label (macro item_human_majority); an item whose
    reviewers split has reference_label null: the marts exclude it and count it.
  A parse error's label is '<parse_error>': it never equals a reference.
-#}
with judgments as (
    select * from {{ ref('fct_eval_runs') }}
    where is_settled
        and position is not null
),

labels as (
    select * from {{ ref('int_runs_with_consensus') }}
    where position is not null
),

keyed as (
    select
        {{ judged_item_key('judgments') }} as item_key,
        judgments.run_id,
        judgments.week_start,
        {{ stage_series_list('judgments') }},
        judgments.item_id,
        judgments.position,
        {{ presentation_order('judgments.position') }} as presentation_order,
        judgments.trial,
        judgments.started_at,
        case when judgments.status = 'parse_error' then '<parse_error>'
            else coalesce(judgments.verdict, '<no_verdict>') end as judge_label,
        labels.expected_verdict,
        coalesce(labels.is_reviewed, false) as is_reviewed,
        labels.has_consensus,
        labels.consensus_verdict,
        judgments.loaded_at
    from judgments
    left join labels on labels.run_id = judgments.run_id
),

items as (
    select
        item_key,
        max(expected_verdict) as golden_label,
        count(*) filter (where is_reviewed) > 0 as is_reviewed,
        {{ item_human_majority('is_reviewed', 'has_consensus', 'consensus_verdict') }}
            as human_majority_label
    from keyed
    group by item_key
),

final as (
    select
        keyed.*,
        item_references.reference,
        item_references.reference_label
    from keyed
    inner join items on items.item_key = keyed.item_key
    cross join lateral (
        values
            ('golden_expected', items.golden_label, items.golden_label is not null),
            ('human_majority', items.human_majority_label, items.is_reviewed)
    ) as item_references (reference, reference_label, applies)
    where item_references.applies
)

select * from final
