{#- Recent batches, newest first. `alive` splits stored `running` rows into running (true) and
    stale (false) by the heartbeat threshold the caller passes; null means either. -#}
{% include '_batch_columns.sql' %}
where (%(suite)s::text is null or b.suite = %(suite)s)
    and (%(model)s::text is null or b.model = %(model)s)
    and (%(family)s::text is null or b.model_family = %(family)s)
    and (%(status)s::text is null or b.status = %(status)s)
    and (%(alive)s::boolean is null or (b.heartbeat_at >= %(stale_before)s) = %(alive)s)
order by b.started_at desc, b.batch_id asc
limit %(limit)s
