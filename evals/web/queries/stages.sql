{% include '_bounds.sql' %}
select
    t.stage, t.model, t.prompt_version,
    sum(t.n_calls) as calls,
    sum(t.n_verdicts) as verdicts,
    sum(t.n_passed) as passed,
    count(*) filter (where t.too_easy and t.n_verdicts >= %(min_daily_n)s) as too_easy_days,
    count(*) filter (where t.stalling and t.n_verdicts >= %(min_daily_n)s) as stalling_days,
    count(*) filter (where t.too_easy_vs_baseline) as too_easy_vs_baseline_days,
    count(*) filter (where t.stalling_vs_baseline) as stalling_vs_baseline_days,
    count(distinct t.run_date) as days,
    max(t.band_too_easy_above) as band_too_easy_above,
    min(t.band_stalling_below) as band_stalling_below
from bounds b
join {{ ref('fct_stage_daily') }} t on t.run_date between b.lo and b.hi
{% include '_cohort.sql' %}
    and t.stage is not null
group by t.stage, t.model, t.prompt_version
order by t.stage, t.model, t.prompt_version
