{#-
  Golden outcomes for the marts' readers (the night-over-night regression check, BI): one row per
  graded golden / ci call, as int_golden_outcomes_live defines it. A view of int_golden_outcomes,
  which keeps them incrementally: no copy, and the BI role reads it with the view owner's rights.
-#}
{{ config(materialized='view') }}

with outcomes as (
    select * from {{ ref('int_golden_outcomes') }}
),

final as (
    select
        run_id,
        batch_id,
        source,
        run_date,
        week_start,
        model,
        prompt_name,
        prompt_version,
        role,
        suite,
        suite_version,
        item_id,
        stage,
        category,
        trial,
        started_at,
        status,
        verdict,
        expected_verdict,
        judge_run_id,
        judge_model,
        judge_prompt_version,
        judge_verdict,
        outcome,
        is_correct
    from outcomes
)

select * from final
