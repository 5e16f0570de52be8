{#- The batch's calls that did not end ok (each links to /runs/{run_id}), newest first. -#}
select
    r.run_id,
    r.item_id,
    r.stage,
    r.role,
    r.model,
    r.status,
    r.error_class,
    r.error_message,
    r.attempts,
    r.started_at
from raw.eval_batches as b
inner join raw.eval_runs as r
    on r.batch_id = b.batch_key
    and r.attributes @> jsonb_build_object('eval_batch_id', b.batch_id::text)
where b.batch_id = %(batch_id)s
    and r.status <> 'ok'
order by r.started_at desc, r.run_id asc
limit %(limit)s
