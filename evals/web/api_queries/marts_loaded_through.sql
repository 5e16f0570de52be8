-- How far the marts have loaded the run log: the newest run-log load time the trend mart holds.
select max(runs_loaded_through) as loaded_through
from {{ ref('fct_trend_daily') }}
