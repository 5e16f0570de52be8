select week_start as day, model, sum(n)::bigint as n, sum(n_agree)::bigint as agree
from {{ ref('fct_verdict_agreement_weekly') }}
where reference = 'human_consensus'
group by week_start, model
