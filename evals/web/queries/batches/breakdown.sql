select
    dimension,
    dimension_value,
    n_graded,
    n_correct,
    n_parse_error_outcomes,
    accuracy,
    accuracy_ci_low,
    accuracy_ci_high
from {{ ref('fct_eval_batch_breakdown') }}
where batch_id = %(batch_id)s
order by dimension desc, dimension_value asc
