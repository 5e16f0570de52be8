{#-
  A model family's training curve: one row per family × suite yardstick (suite, suite version,
  judge, judge prompt version) × stage (plus '(all)') × checkpoint, from each checkpoint's latest
  completed run on that yardstick. Checkpoints are models whose evalhouse.yaml entry declares a
  `family`; `step` orders them (the run record keeps the lineage it started with).

  regressed  this checkpoint's Wilson 95 % interval lies wholly below the previous checkpoint's
             (the one with the next lower step): non-overlapping intervals, a conservative test
             that needs no pairing of items (runs of different steps may cover other items);
  best       the highest accuracy in its family × yardstick × stage (lowest step on a tie);
  best_overall ('(all)' rows) the checkpoint with the highest accuracy pooled over every
             yardstick of the family it was run on (correct / graded summed).

  Only the latest runs' outcomes are read (through int_golden_outcomes' batch_key index), not
  every run's.
-#}
{{ config(indexes=[{'columns': ['model_family']}]) }}

with batches as (
    select * from {{ ref('stg_raw__eval_batches') }}
),

outcomes as (
    select * from {{ ref('int_eval_batch_outcomes') }}
),

latest as (
    select distinct on (model_family, suite, suite_version, judge, judge_prompt_version, model)
        batch_id,
        model_family,
        model,
        model_checkpoint,
        model_step,
        suite,
        suite_version,
        judge,
        judge_prompt_version,
        started_at
    from batches
    where model_family is not null and status = 'completed'
    order by
        model_family asc, suite asc, suite_version asc, judge asc, judge_prompt_version asc,
        model asc, started_at desc, batch_id asc
),

latest_outcomes as (
    select * from outcomes
    where batch_id in (select latest.batch_id from latest)
),

by_stage as (
    select
        batch_id,
        coalesce(stage, '(none)') as stage,
        is_correct
    from latest_outcomes
    union all
    select
        batch_id,
        '(all)' as stage,
        is_correct
    from latest_outcomes
),

counts as (
    select
        latest.model_family,
        latest.suite,
        latest.suite_version,
        latest.judge,
        latest.judge_prompt_version,
        by_stage.stage,
        latest.model,
        latest.model_checkpoint,
        latest.model_step,
        latest.batch_id,
        count(*) as n_graded,
        count(*) filter (where by_stage.is_correct) as n_correct
    from latest
    inner join by_stage on by_stage.batch_id = latest.batch_id
    group by
        latest.model_family, latest.suite, latest.suite_version, latest.judge,
        latest.judge_prompt_version, by_stage.stage, latest.model, latest.model_checkpoint,
        latest.model_step, latest.batch_id
),

curve as (
    select
        *,
        {{ series_key(['model_family', 'suite', 'suite_version', 'judge',
            'judge_prompt_version', 'stage']) }} as curve_key,
        {{ safe_ratio('n_correct', 'n_graded') }} as accuracy,
        {{ wilson_low('n_correct', 'n_graded') }} as accuracy_ci_low,
        {{ wilson_high('n_correct', 'n_graded') }} as accuracy_ci_high
    from counts
),

pooled as (
    select
        model_family,
        model,
        sum(n_correct)::float8 / sum(n_graded) as pooled_accuracy
    from curve
    where stage = '(all)'
    group by model_family, model
),

ranked as (
    select
        curve.*,
        lag(curve.model) over steps as previous_model,
        lag(curve.accuracy) over steps as previous_accuracy,
        lag(curve.accuracy_ci_low) over steps as previous_ci_low,
        row_number() over (
            partition by curve.curve_key
            order by curve.accuracy desc, curve.model_step asc nulls last, curve.model asc
        ) = 1 as is_best,
        pooled.pooled_accuracy,
        row_number() over (
            partition by curve.model_family, curve.curve_key
            order by pooled.pooled_accuracy desc, curve.model_step asc nulls last, curve.model asc
        ) = 1 as is_best_pooled
    from curve
    inner join pooled
        on pooled.model_family = curve.model_family
        and pooled.model = curve.model
    window steps as (
        partition by curve.curve_key order by curve.model_step asc nulls last, curve.model asc
    )
),

final as (
    select
        curve_key,
        model_family,
        suite,
        suite_version,
        judge,
        judge_prompt_version,
        stage,
        model,
        model_checkpoint,
        model_step,
        batch_id,
        n_graded,
        n_correct,
        accuracy,
        accuracy_ci_low,
        accuracy_ci_high,
        previous_model,
        accuracy - previous_accuracy as accuracy_delta_previous,
        coalesce(accuracy_ci_high < previous_ci_low, false) as regressed,
        is_best,
        pooled_accuracy,
        stage = '(all)' and is_best_pooled as is_best_overall
    from ranked
)

select * from final
