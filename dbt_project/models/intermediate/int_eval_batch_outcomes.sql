{#-
  One row per golden outcome of an evaluation run: batch × item × trial, with its outcome and
  the calls behind it. A run's outcomes are int_golden_outcomes' rows of its batch key, model,
  prompt version and suite version (so a run's accuracy is the run summary's and the gate's).
-#}
with batches as (
    select * from {{ ref('stg_raw__eval_batches') }}
),

outcomes as (
    select * from {{ ref('int_golden_outcomes') }}
),

final as (
    select
        batches.batch_id,
        outcomes.item_id,
        outcomes.trial,
        outcomes.stage,
        outcomes.category,
        outcomes.outcome,
        outcomes.is_correct,
        outcomes.run_id,
        outcomes.judge_run_id
    from batches
    inner join outcomes
        on outcomes.batch_id = batches.batch_key
        and outcomes.model = batches.model
        and outcomes.prompt_version = batches.prompt_version
        and outcomes.suite = batches.suite
        and outcomes.suite_version = batches.suite_version
)

select * from final
