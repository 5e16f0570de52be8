{#- What the reference judge says about all of production on the newest day of the window that
    has a re-graded sample: the stratified estimate (fct_production_estimate_daily, all stages)
    per app cohort and judge epoch, beside the app's own rate. Production's graded calls only,
    not cut by suite (the sample is drawn per stage over every suite). -#}
{% include '_bounds.sql' %}
, estimates as (
    select t.*, max(t.run_date) over () as newest_day
    from bounds b
    join {{ ref('fct_production_estimate_daily') }} t on t.run_date between b.lo and b.hi
    where t.is_all_stages and t.judge_model is not null and t.n_sampled_with_verdict > 0
        and %(source)s::text = 'production' and %(role)s::text = 'graded'
        and %(suite)s::text is null
        and (%(model)s::text is null or t.app_model = %(model)s)
        and (%(prompt_version)s::text is null or t.app_prompt_version = %(prompt_version)s)
)
select run_date, app_model, app_prompt_version, judge_model, judge_prompt_version,
    n_population, n_sampled_with_verdict, app_pass_rate,
    judge_pass_rate_estimate, judge_pass_rate_ci_low, judge_pass_rate_ci_high,
    disagreement_rate_estimate, disagreement_rate_ci_low, disagreement_rate_ci_high
from estimates
where run_date = newest_day
order by app_model, app_prompt_version, judge_model, judge_prompt_version
