{#- Two runs' outcomes paired on the same item and trial (a = baseline, b = candidate). -#}
select
    a.item_id,
    a.trial,
    a.stage,
    a.category,
    a.outcome as a_outcome,
    b.outcome as b_outcome,
    a.is_correct as a_correct,
    b.is_correct as b_correct,
    a.run_id as a_run_id,
    b.run_id as b_run_id
from {{ ref('fct_eval_batch_items') }} as a
inner join {{ ref('fct_eval_batch_items') }} as b
    on b.item_id = a.item_id
    and b.trial = a.trial
where a.batch_id = %(a)s
    and b.batch_id = %(b)s
order by a.item_id asc, a.trial asc
