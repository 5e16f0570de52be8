{#- Agreement with the human consensus per judge model within its epoch (prompt version, suite
    and suite version): a judge upgrade starts a new series. -#}
select week_start as day, model, prompt_version, suite, suite_version,
       sum(n)::bigint as n, sum(n_agree)::bigint as agree
from {{ ref('fct_verdict_agreement_weekly') }}
where reference = 'human_consensus'
group by week_start, model, prompt_version, suite, suite_version
