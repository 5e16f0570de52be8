{#- Each golden item's outcome on a night (golden_items.sql) with its night's comparability
    epoch per model and suite: the candidate's prompt version, the suite version and, where a
    judge grades the answers, the judge's model and prompt version. A night that mixes versions
    lists them all, an epoch of its own. -#}
with items as (
{% include 'golden_items.sql' %}
),

epochs as (
    select run_date as day, model, suite,
           string_agg(distinct prompt_version, ',') as prompt_version,
           string_agg(distinct suite_version, ',') as suite_version,
           string_agg(distinct judge_model || ' ' || coalesce(judge_prompt_version, '∅'), ',')
               as judge
    from {{ ref('fct_golden_outcomes') }}
    where source = 'golden' and batch_id ~ '^golden:[0-9]{4}-[0-9]{2}-[0-9]{2}$'
    group by 1, 2, 3
)

select items.day, items.model, items.suite, items.item_id, items.correct,
       epochs.prompt_version, epochs.suite_version, epochs.judge
from items
join epochs using (day, model, suite)
