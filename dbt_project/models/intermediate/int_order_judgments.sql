{#-
  Judgments made in a known presentation order (attributes.position set), one row per settled
  judgment and reference, with the item's reference label. An item is one judged thing
  (macro judged_item_key, shared with fct_judge_consistency). Which position values are the
  swapped order: the presentation_order macro (setting swapped_positions).
  References, per item (not per row: humans label the content, whichever order's row they saw):
  - golden_expected: the item's golden expected verdict;
  - human_majority: the item's human label (macro item_human_majority); an item whose
    reviewers split has reference_label null: the marts exclude it and count it.
  A parse error's label is '<parse_error>': it never equals a reference.
  Labels are joined here from int_human_consensus and the golden items (the expected verdict:
  the row's own, else its golden item's, as in int_runs_with_consensus) rather than through
  that view, whose joins over every call would hide a week filter from int_eval_runs' index.
-#}
with judgments as (
    select * from {{ ref('int_eval_runs') }}
    where is_settled
        and position is not null
),

consensus as (
    select * from {{ ref('int_human_consensus') }}
),

golden_items as (
    select * from {{ ref('stg_raw__golden_items') }}
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
            else coalesce(judgments.verdict, '<no_verdict>')
        end as judge_label,
        coalesce(judgments.expected_verdict, golden_items.expected_verdict) as expected_verdict,
        consensus.run_id is not null as is_reviewed,
        consensus.has_consensus,
        consensus.consensus_verdict,
        judgments.loaded_at
    from judgments
    left join consensus on consensus.run_id = judgments.run_id
    left join golden_items
        on golden_items.suite = judgments.suite
        and golden_items.suite_version = judgments.suite_version
        and golden_items.item_id = judgments.item_id
),

{#
  Item labels as window aggregates partitioned by week and item (item_key includes the week),
  so a filter on week_start reaches int_eval_runs' week index through this view.
-#}
labelled_items as (
    select
        keyed.*,
        max(expected_verdict) over same_item as golden_label,
        bool_or(is_reviewed) over same_item as item_is_reviewed,
        {{ item_human_majority(
            'is_reviewed', 'has_consensus', 'consensus_verdict', over='over same_item'
        ) }} as human_majority_label
    from keyed
    window same_item as (partition by week_start, item_key)
),

final as (
    select
        labelled_items.item_key,
        labelled_items.run_id,
        labelled_items.week_start,
        {{ stage_series_list('labelled_items') }},
        labelled_items.item_id,
        labelled_items.position,
        labelled_items.presentation_order,
        labelled_items.trial,
        labelled_items.started_at,
        labelled_items.judge_label,
        labelled_items.expected_verdict,
        labelled_items.is_reviewed,
        labelled_items.has_consensus,
        labelled_items.consensus_verdict,
        labelled_items.loaded_at,
        item_references.reference,
        item_references.reference_label
    from labelled_items
    cross join
        lateral (
            values
            (
                'golden_expected',
                labelled_items.golden_label,
                labelled_items.golden_label is not null
            ),
            ('human_majority', labelled_items.human_majority_label, labelled_items.item_is_reviewed)
        ) as item_references (reference, reference_label, applies)
    where item_references.applies
)

select * from final
