{#- The cohort's calls dated after the window: with the default window, calls dated in the
    future, which the page points out rather than hides. -#}
{% include '_bounds.sql' %}
select coalesce(sum(t.n_calls), 0) as calls
from bounds b
join {{ ref('fct_trend_daily') }} t on t.run_date > b.hi
{% include '_cohort.sql' %}
