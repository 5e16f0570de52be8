{#-
  STAND-IN (pairwise-surfaces): the contract's shape only, so the gate check and the pages can be
  built before pairwise-marts lands. Drop at merge in favour of pairwise-marts' model.
  One row per settled pairwise judgment (role judge, attributes.contestant_a set).
-#}
with runs as (
    select * from {{ ref('stg_raw__eval_runs') }}
    where role = 'judge'
        and status in ('ok', 'parse_error')
        and attributes ? 'contestant_a'
),

final as (
    select
        run_id,
        batch_id,
        source,
        suite,
        suite_version,
        item_id,
        stage,
        category,
        model as judge_model,
        prompt_version as judge_prompt_version,
        trial,
        attributes ->> 'contestant_a' as contestant_a,
        attributes ->> 'contestant_b' as contestant_b,
        attributes ->> 'position' as position,
        {{ presentation_order("attributes ->> 'position'") }} as presentation_order,
        attributes ->> 'slot_verdict' as slot_verdict,
        verdict,
        status = 'parse_error' as is_parse_error,
        started_at
    from runs
)

select * from final
