{#- Golden accuracy per model, prompt version and suite version on the newest night of the window
    that graded it: each night re-grades the same items, so nights are not pooled (an item graded
    on 14 nights is one item, not 14 observations). Never blended with production. -#}
{% include '_bounds.sql' %}
, nights as (
    select t.*, max(t.run_date) over (
        partition by t.model, t.prompt_version, t.suite, t.suite_version) as newest_night
    from bounds b
    join {{ ref('fct_trend_daily') }} t on t.run_date between b.lo and b.hi
    where t.source = 'golden' and t.role <> 'judge' and t.n_with_expected > 0
        and (%(suite)s::text is null or t.suite = %(suite)s)
        and (%(model)s::text is null or t.model = %(model)s)
        and (%(prompt_version)s::text is null or t.prompt_version = %(prompt_version)s)
)
select model, prompt_version, suite, suite_version, run_date as night,
    n_with_expected as n_items, n_correct as correct
from nights
where run_date = newest_night
order by suite, suite_version, model, prompt_version
