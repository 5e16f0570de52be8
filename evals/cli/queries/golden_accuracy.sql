select model, suite, sum(n_correct)::float / nullif(sum(n_with_expected), 0), sum(n_calls)
from {{ ref('fct_trend_daily') }}
where source = 'golden' and role <> 'judge'
group by model, suite
having sum(n_with_expected) > 0  -- no golden truth (a pairwise run's generated responses): no accuracy
order by model, suite
