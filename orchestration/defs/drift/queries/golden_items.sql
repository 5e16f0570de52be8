{#- A night's golden runs are batch `golden:<day>`: a backfill runs past nights today, so the
    night is read from the batch, not from the clock. -#}
select substring(r.batch_id from '^golden:([0-9]{4}-[0-9]{2}-[0-9]{2})')::date as day,
       coalesce(p.model, r.model) as model, r.suite, r.item_id, bool_and(r.is_correct) as correct
from {{ ref('fct_eval_runs') }} r
left join {{ ref('fct_eval_runs') }} p on p.run_id = r.parent_run_id
where r.source = 'golden' and r.is_correct is not null
  and r.batch_id ~ '^golden:[0-9]{4}-[0-9]{2}-[0-9]{2}$'
group by 1, 2, 3, 4
