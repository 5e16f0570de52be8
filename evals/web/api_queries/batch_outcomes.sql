-- One batch's golden outcomes per item and trial (fct_golden_outcomes), to pair two batches.
select
    item_id,
    trial,
    stage,
    category,
    model,
    outcome,
    is_correct,
    run_id
from {{ ref('fct_golden_outcomes') }}
where batch_id = %(batch_id)s
