{#- A night's golden outcomes (a judged answer counts by its judge's verdict) are dated by their
    batch `golden:<day>` (a backfill runs past nights today); an item is right on a night when
    every trial of it was. An answer not judged yet is no evidence about the model (a judge outage
    is not a regression): it is left out of the pairing. -#}
select run_date as day, model, suite, item_id, bool_and(is_correct) as correct
from {{ ref('fct_golden_outcomes') }}
where source = 'golden' and batch_id ~ '^golden:[0-9]{4}-[0-9]{2}-[0-9]{2}$'
  and outcome <> 'unjudged'
group by 1, 2, 3, 4
