{#-
  One row per golden outcome of an evaluation run (batch × item × trial). Two runs are paired
  on (item_id, trial): a run's flipped items against its previous comparable run, and the
  compare page's McNemar test and bootstrap, read this.

  Kept by run: a build rewrites the runs int_eval_batches rewrote since its last build.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='batch_id',
        indexes=[{'columns': ['batch_id', 'item_id', 'trial'], 'unique': true}],
    )
}}

with outcomes as (
    select * from {{ ref('int_eval_batch_outcomes') }}
    where {{ changed_batches_filter(rebuilt_eval_batches()) }}
),

final as (
    select
        batch_id,
        item_id,
        trial,
        stage,
        category,
        outcome,
        is_correct,
        run_id,
        judge_run_id
    from outcomes
)

select * from final
