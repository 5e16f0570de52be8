{#- What the calls answered, for the flipped items shown side by side. -#}
select
    run_id,
    verdict,
    output_text
from raw.eval_runs
where run_id = any(%(run_ids)s)
