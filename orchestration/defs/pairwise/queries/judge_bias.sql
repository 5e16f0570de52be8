-- Every pairwise judge cohort with its position bias and consistency (fct_pairwise_judge_bias).
with bias as (
    select * from {{ ref('fct_pairwise_judge_bias') }}
)

select
    bias.suite,
    bias.suite_version,
    bias.judge_model,
    bias.judge_prompt_version,
    bias.source,
    bias.items,
    bias.pairs_both_orders,
    bias.inconsistent_pairs,
    bias.a_rate_first_order,
    bias.a_rate_swapped_order,
    bias.consistency_rate,
    bias.consistency_ci_low,
    bias.consistency_ci_high,
    bias.position_bias,
    bias.position_bias_ci_low,
    bias.position_bias_ci_high
from bias
order by bias.suite, bias.suite_version, bias.judge_model, bias.judge_prompt_version, bias.source
