{#-
  Pairwise judgments (docs/pairwise-ratings.md): one row per settled judge call that names its
  two contestants (attributes.contestant_a / contestant_b), from the runner or an import. The
  verdict is stored in the item's labelling (a, b, tie), whatever slot each side was shown in;
  presentation_order comes from attributes.position through the presentation_order macro
  (ab: first, ba: swapped), and slot_verdict (which slot the judge chose) is derived from the
  two, so imports that do not carry it read the same as the runner's rows.
  A pair is one judged comparison: cohort, batch, item and the two contestants; its trials and
  orders are its repeated judgments. Its human label follows the agreement marts' item rule
  (macro item_human_majority over the pair's reviewed judgments); its golden label is the
  row's expected verdict, else its golden item's (as in int_order_judgments).
  A table, not a view: finding the pairwise rows scans the run log, and four models and the
  tests read them; the scan is paid once per build.
-#}
{{ config(materialized='table', indexes=[{'columns': ['run_id'], 'unique': true}]) }}

with runs as (
    select * from {{ ref('int_eval_runs') }}
    where is_settled
        and role = 'judge'
),

pairwise_attributes as (
    select
        run_id,
        attributes ->> 'contestant_a' as contestant_a,
        attributes ->> 'contestant_b' as contestant_b,
        attributes ->> 'response_a_run_id' as response_a_run_id,
        attributes ->> 'response_b_run_id' as response_b_run_id
    from {{ ref('stg_raw__eval_runs') }}
    where attributes ? 'contestant_a'
        and attributes ? 'contestant_b'
        and status in ('ok', 'parse_error')
),

consensus as (
    select * from {{ ref('int_human_consensus') }}
),

golden_items as (
    select * from {{ ref('stg_raw__golden_items') }}
),

judgments as (
    select
        runs.run_id,
        runs.suite,
        runs.suite_version,
        runs.source,
        runs.model as judge_model,
        runs.prompt_version as judge_prompt_version,
        runs.batch_id,
        runs.item_id,
        runs.stage,
        runs.category,
        pairwise_attributes.contestant_a,
        pairwise_attributes.contestant_b,
        pairwise_attributes.response_a_run_id,
        pairwise_attributes.response_b_run_id,
        runs.position,
        {{ presentation_order('runs.position') }} as presentation_order,
        runs.trial,
        runs.status = 'parse_error' as is_parse_error,
        case when runs.status = 'ok' and runs.verdict in ('a', 'b', 'tie') then runs.verdict end
            as verdict,
        coalesce(runs.expected_verdict, golden_items.expected_verdict) as expected_verdict,
        consensus.run_id is not null as is_reviewed,
        consensus.has_consensus,
        consensus.consensus_verdict,
        runs.started_at,
        runs.loaded_at
    from runs
    inner join pairwise_attributes on pairwise_attributes.run_id = runs.run_id
    left join consensus on consensus.run_id = runs.run_id
    left join golden_items
        on golden_items.suite = runs.suite
        and golden_items.suite_version = runs.suite_version
        and golden_items.item_id = runs.item_id
),

keyed as (
    select
        {{ series_key(pairwise_cohort_columns()) }} as cohort_key,
        {{ series_key(pairwise_cohort_columns() + [
            'batch_id', 'item_id', 'contestant_a', 'contestant_b'
        ]) }} as pair_key,
        judgments.*
    from judgments
),

final as (
    select
        cohort_key,
        pair_key,
        run_id,
        {{ pairwise_cohort_list() }},
        batch_id,
        item_id,
        stage,
        category,
        contestant_a,
        contestant_b,
        response_a_run_id,
        response_b_run_id,
        position,
        presentation_order,
        trial,
        is_parse_error,
        verdict,
        case
            when verdict = 'tie' then 'tie'
            when verdict is null or presentation_order is null then null
            when (verdict = 'a') = (presentation_order = 'first') then 'first'
            else 'second'
        end as slot_verdict,
        expected_verdict,
        max(expected_verdict) over same_pair as golden_label,
        is_reviewed,
        has_consensus,
        consensus_verdict,
        bool_or(is_reviewed) over same_pair as pair_is_reviewed,
        {{ item_human_majority(
            'is_reviewed', 'has_consensus', 'consensus_verdict', over='over same_pair'
        ) }} as human_label,
        started_at,
        loaded_at
    from keyed
    window same_pair as (partition by pair_key)
)

select * from final
