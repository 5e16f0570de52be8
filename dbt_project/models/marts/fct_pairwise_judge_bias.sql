{#-
  How a pairwise judge treats the order it is shown two responses in, per cohort (suite × suite
  version × source × judge model × judge prompt version); definitions in
  docs/pairwise-ratings.md.
  - A pair trial is one pair (cohort, batch, item, contestants) at one trial; it is judged in
    both orders when it has a settled judgment in each (the first by start time if a re-run
    left two). It is consistent when both verdicts parsed and are equal, inconsistent when both
    parsed and differ (a parse error is neither).
  - Position bias: of the inconsistent pair trials, the share that favour the first slot: the
    slots the two verdicts chose (first +1, second −1, tie 0) sum to more than 0. The sum is
    never 0 for an inconsistent pair trial (a then b: +2; a then tie: +1; tie then b: +1; and
    the mirrors, −2 and −1). An unbiased judge's inconsistencies split 0.5.
  - Items are the unit of every interval: an item's trials and pairs are not independent. The
    consistency rate and the position bias are ratios over items, with the cluster-robust SE
    (macro cluster_robust_se) and Wilson's interval at the effective sample size with t on
    G − 1 df (macro design_wilson_low / high), as in fct_agreement_by_order_weekly.
  - Human agreement uses the agreement marts' item rule (a pair's label: macro
    item_human_majority, in int_pairwise_judgments); a parse error never agrees.
-#}
with judgments as (
    select * from {{ ref('int_pairwise_judgments') }}
),

cohorts as (
    select
        cohort_key,
        {{ pairwise_cohort_list() }},
        count(distinct item_id) as items,
        count(*) as judgments,
        count(*) filter (where is_parse_error) as parse_errors,
        count(*) filter (where presentation_order = 'first' and verdict is not null)
            as first_order_verdicts,
        count(*) filter (where presentation_order = 'swapped' and verdict is not null)
            as swapped_order_verdicts,
        {{ safe_ratio(
            "count(*) filter (where presentation_order = 'first' and verdict = 'a')",
            "count(*) filter (where presentation_order = 'first' and verdict is not null)"
        ) }} as a_rate_first_order,
        {{ safe_ratio(
            "count(*) filter (where presentation_order = 'swapped' and verdict = 'a')",
            "count(*) filter (where presentation_order = 'swapped' and verdict is not null)"
        ) }} as a_rate_swapped_order,
        count(*) filter (where presentation_order = 'first' and human_label is not null)
            as human_labelled_first,
        {{ safe_ratio(
            "count(*) filter (where presentation_order = 'first' and verdict = human_label)",
            "count(*) filter (where presentation_order = 'first' and human_label is not null)"
        ) }} as human_agreement_first,
        count(*) filter (where presentation_order = 'swapped' and human_label is not null)
            as human_labelled_swapped,
        {{ safe_ratio(
            "count(*) filter (where presentation_order = 'swapped' and verdict = human_label)",
            "count(*) filter (where presentation_order = 'swapped' and human_label is not null)"
        ) }} as human_agreement_swapped,
        count(distinct item_id) filter (where pair_is_reviewed) as reviewed_items,
        count(distinct pair_key) filter (where pair_is_reviewed and human_label is null)
            as pairs_without_human_majority,
        max(started_at) as last_judged_at
    from judgments
    group by cohort_key, {{ pairwise_cohort_list() }}
),

order_verdicts as (
    select
        cohort_key,
        item_id,
        pair_key,
        trial,
        presentation_order,
        max(human_label) as human_label,
        (array_agg(
            coalesce(verdict, '<unparsed>') order by started_at, run_id
        ))[1] as label
    from judgments
    where presentation_order is not null
    group by cohort_key, item_id, pair_key, trial, presentation_order
),

pair_trials as (
    select
        cohort_key,
        item_id,
        pair_key,
        trial,
        max(human_label) as human_label,
        max(label) filter (where presentation_order = 'first') as first_label,
        max(label) filter (where presentation_order = 'swapped') as swapped_label
    from order_verdicts
    group by cohort_key, item_id, pair_key, trial
),

classified as (
    select
        pair_trials.*,
        first_label = swapped_label and first_label <> '<unparsed>' as is_consistent,
        first_label <> swapped_label
        and '<unparsed>' not in (first_label, swapped_label) as is_inconsistent,
        (case first_label when 'a' then 1 when 'b' then -1 else 0 end)
        + (case swapped_label when 'b' then 1 when 'a' then -1 else 0 end) > 0
            as favours_first_slot
    from pair_trials
    where first_label is not null
        and swapped_label is not null
),

{# One row per cohort × item: the clusters. -#}
item_counts as (
    select
        cohort_key,
        item_id,
        count(*) as pairs_both_orders,
        count(*) filter (where is_consistent) as consistent_pairs,
        count(*) filter (where is_inconsistent) as inconsistent_pairs,
        count(*) filter (where is_inconsistent and favours_first_slot) as first_slot_pairs,
        count(*) filter (where is_consistent and human_label is not null)
            as human_labelled_consistent,
        count(*) filter (where is_consistent and first_label = human_label)
            as human_agree_consistent
    from classified
    group by cohort_key, item_id
),

items_with_rates as (
    select
        item_counts.*,
        sum(consistent_pairs) over same_cohort::float8
        / sum(pairs_both_orders) over same_cohort as consistency_rate,
        sum(first_slot_pairs) over same_cohort::float8
        / nullif(sum(inconsistent_pairs) over same_cohort, 0) as position_bias
    from item_counts
    window same_cohort as (partition by cohort_key)
),

order_figures as (
    select
        cohort_key,
        count(*) as items_both_orders,
        sum(pairs_both_orders) as pairs_both_orders,
        sum(consistent_pairs) as consistent_pairs,
        max(consistency_rate) as consistency_rate,
        {{ cluster_robust_se(
            'consistent_pairs - consistency_rate * pairs_both_orders',
            'count(*)', 'sum(pairs_both_orders)'
        ) }} as consistency_se_clustered,
        count(*) filter (where inconsistent_pairs > 0) as items_inconsistent,
        sum(inconsistent_pairs) as inconsistent_pairs,
        sum(first_slot_pairs) as first_slot_pairs,
        max(position_bias) as position_bias,
        {{ cluster_robust_se(
            'first_slot_pairs - position_bias * inconsistent_pairs',
            'count(*) filter (where inconsistent_pairs > 0)', 'sum(inconsistent_pairs)'
        ) }} as position_bias_se_clustered,
        sum(human_labelled_consistent) as human_labelled_consistent,
        {{ safe_ratio('sum(human_agree_consistent)', 'sum(human_labelled_consistent)') }}
            as human_agreement_consistent
    from items_with_rates
    group by cohort_key
),

final as (
    select
        cohorts.cohort_key,
        {{ pairwise_cohort_list('cohorts') }},
        cohorts.items,
        cohorts.judgments,
        cohorts.parse_errors,
        coalesce(order_figures.items_both_orders, 0) as items_both_orders,
        coalesce(order_figures.pairs_both_orders, 0) as pairs_both_orders,
        cohorts.first_order_verdicts,
        cohorts.swapped_order_verdicts,
        cohorts.a_rate_first_order,
        cohorts.a_rate_swapped_order,
        coalesce(order_figures.consistent_pairs, 0) as consistent_pairs,
        order_figures.consistency_rate,
        order_figures.consistency_se_clustered,
        {{ design_wilson_low(
            'order_figures.consistency_rate', 'order_figures.consistency_se_clustered',
            'order_figures.items_both_orders - 1', 'order_figures.items_both_orders', 'false'
        ) }} as consistency_ci_low,
        {{ design_wilson_high(
            'order_figures.consistency_rate', 'order_figures.consistency_se_clustered',
            'order_figures.items_both_orders - 1', 'order_figures.items_both_orders', 'false'
        ) }} as consistency_ci_high,
        coalesce(order_figures.inconsistent_pairs, 0) as inconsistent_pairs,
        coalesce(order_figures.first_slot_pairs, 0) as first_slot_pairs,
        coalesce(order_figures.items_inconsistent, 0) as items_inconsistent,
        order_figures.position_bias,
        order_figures.position_bias_se_clustered,
        {{ design_wilson_low(
            'order_figures.position_bias', 'order_figures.position_bias_se_clustered',
            'order_figures.items_inconsistent - 1', 'order_figures.items_inconsistent', 'false'
        ) }} as position_bias_ci_low,
        {{ design_wilson_high(
            'order_figures.position_bias', 'order_figures.position_bias_se_clustered',
            'order_figures.items_inconsistent - 1', 'order_figures.items_inconsistent', 'false'
        ) }} as position_bias_ci_high,
        cohorts.human_labelled_first,
        cohorts.human_agreement_first,
        cohorts.human_labelled_swapped,
        cohorts.human_agreement_swapped,
        coalesce(order_figures.human_labelled_consistent, 0) as human_labelled_consistent,
        order_figures.human_agreement_consistent,
        cohorts.reviewed_items,
        cohorts.pairs_without_human_majority,
        cohorts.last_judged_at
    from cohorts
    left join order_figures on order_figures.cohort_key = cohorts.cohort_key
)

select * from final
