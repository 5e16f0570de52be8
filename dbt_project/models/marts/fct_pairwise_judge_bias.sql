{#-
  STAND-IN (pairwise-surfaces): the contract's columns with simple definitions (Wilson intervals
  over pairs, not item-clustered; no human agreement), so the bias check can be built before
  pairwise-marts lands. Drop at merge.
-#}
with judgments as (
    select * from {{ ref('int_pairwise_judgments') }}
),

pairs as (
    select
        suite, suite_version, judge_model, judge_prompt_version, source, contestant_a,
        contestant_b, item_id, trial,
        max(verdict) filter (where presentation_order = 'first') as first_verdict,
        max(verdict) filter (where presentation_order = 'swapped') as swapped_verdict,
        max(slot_verdict) filter (where presentation_order = 'first') as first_slot,
        max(slot_verdict) filter (where presentation_order = 'swapped') as swapped_slot
    from judgments
    where not is_parse_error
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9
),

both_orders as (
    select
        *,
        first_verdict = swapped_verdict as is_consistent,
        first_verdict <> swapped_verdict
        and first_slot = 'first' and swapped_slot = 'first' as favours_first
    from pairs
    where first_verdict is not null and swapped_verdict is not null
),

cohort_pairs as (
    select
        suite, suite_version, judge_model, judge_prompt_version, source,
        count(*)::integer as pairs_both_orders,
        count(*) filter (where is_consistent)::integer as consistent_pairs,
        count(*) filter (where not is_consistent)::integer as inconsistent_pairs,
        count(*) filter (where favours_first)::integer as first_slot_pairs
    from both_orders
    group by 1, 2, 3, 4, 5
),

cohort_judgments as (
    select
        suite, suite_version, judge_model, judge_prompt_version, source,
        count(distinct item_id)::integer as items,
        avg((verdict = 'a')::int) filter (
            where presentation_order = 'first' and not is_parse_error
        )::float8 as a_rate_first_order,
        avg((verdict = 'a')::int) filter (
            where presentation_order = 'swapped' and not is_parse_error
        )::float8 as a_rate_swapped_order,
        max(started_at) as last_judged_at
    from judgments
    group by 1, 2, 3, 4, 5
),

final as (
    select
        j.suite,
        j.suite_version,
        j.judge_model,
        j.judge_prompt_version,
        j.source,
        j.items,
        coalesce(p.pairs_both_orders, 0) as pairs_both_orders,
        j.a_rate_first_order,
        j.a_rate_swapped_order,
        {{ safe_ratio('p.consistent_pairs', 'p.pairs_both_orders') }}::float8 as consistency_rate,
        {{ wilson_low('p.consistent_pairs', 'p.pairs_both_orders') }}::float8
            as consistency_ci_low,
        {{ wilson_high('p.consistent_pairs', 'p.pairs_both_orders') }}::float8
            as consistency_ci_high,
        {{ safe_ratio('p.first_slot_pairs', 'p.inconsistent_pairs') }}::float8 as position_bias,
        {{ wilson_low('p.first_slot_pairs', 'p.inconsistent_pairs') }}::float8
            as position_bias_ci_low,
        {{ wilson_high('p.first_slot_pairs', 'p.inconsistent_pairs') }}::float8
            as position_bias_ci_high,
        coalesce(p.inconsistent_pairs, 0) as inconsistent_pairs,
        null::float8 as human_agreement_first,
        null::float8 as human_agreement_swapped,
        null::float8 as human_agreement_consistent,
        0 as reviewed_items,
        j.last_judged_at
    from cohort_judgments as j
    left join cohort_pairs as p
        using (suite, suite_version, judge_model, judge_prompt_version, source)
)

select * from final
