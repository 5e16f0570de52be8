{#-
  One row per evaluation run × dimension (stage, category) × value: accuracy with a Wilson
  95 % interval, counted from the run's golden outcomes as fct_eval_batches counts them
  ('(none)' for items without a stage or category).

  Kept by run: a build rewrites the runs int_eval_batches rewrote since its last build.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='batch_id',
        indexes=[{'columns': ['batch_id']}],
    )
}}

with items as (
    select * from {{ ref('int_eval_batch_outcomes') }}
    where {{ changed_batches_filter(rebuilt_eval_batches()) }}
),

by_dimension as (
    select
        batch_id,
        'stage' as dimension,
        coalesce(stage, '(none)') as dimension_value,
        is_correct,
        outcome
    from items
    union all
    select
        batch_id,
        'category' as dimension,
        coalesce(category, '(none)') as dimension_value,
        is_correct,
        outcome
    from items
),

counts as (
    select
        batch_id,
        dimension,
        dimension_value,
        count(*) as n_graded,
        count(*) filter (where is_correct) as n_correct,
        count(*) filter (where outcome = 'parse_error') as n_parse_error_outcomes
    from by_dimension
    group by batch_id, dimension, dimension_value
),

final as (
    select
        batch_id,
        dimension,
        dimension_value,
        n_graded,
        n_correct,
        n_parse_error_outcomes,
        {{ safe_ratio('n_correct', 'n_graded') }} as accuracy,
        {{ wilson_low('n_correct', 'n_graded') }} as accuracy_ci_low,
        {{ wilson_high('n_correct', 'n_graded') }} as accuracy_ci_high
    from counts
)

select * from final
