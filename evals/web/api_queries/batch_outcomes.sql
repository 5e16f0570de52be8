-- One batch's golden outcomes per item and trial (fct_golden_outcomes), to pair two batches;
-- a batch that graded several models is narrowed to one.
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
    and (%(model)s::text is null or model = %(model)s)
