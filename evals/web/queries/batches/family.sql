select
    curve_key,
    suite,
    suite_version,
    judge,
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
    accuracy_delta_previous,
    regressed,
    is_best,
    pooled_accuracy,
    is_best_overall
from {{ ref('fct_model_checkpoints') }}
where model_family = %(family)s
order by suite asc, suite_version asc, stage asc, model_step asc nulls last, model asc
