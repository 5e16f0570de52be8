{% include '_bounds.sql' %}
select
    t.reference,
    coalesce(sum(t.n), 0) as n,
    coalesce(sum(t.n_agree), 0) as n_agree,
    coalesce(sum(t.n_parse_errors), 0) as n_parse_errors
from bounds b
join {{ ref('fct_verdict_agreement_weekly') }} t
    on t.week_start between date_trunc('week', b.lo)::date and b.hi
{% include '_cohort.sql' %}
group by t.reference
