{% include '_bounds.sql' %}
, window_rows as (
    select t.* from bounds b
    join {{ ref('fct_issue_distribution_daily') }} t on t.run_date between b.lo and b.hi
    where true
{% include '_cohort.sql' %}
),
runs as (
    select sum(n_runs) as n_runs from (
        select distinct on (series_key, run_date) n_runs from window_rows
        order by series_key, run_date
    ) as per_series_day
)
select w.issue_tag, sum(w.n_runs_with_tag) as tagged, max(runs.n_runs) as n_runs
from window_rows w cross join runs
group by w.issue_tag
order by tagged desc
limit 12
