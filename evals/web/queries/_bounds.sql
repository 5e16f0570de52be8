{#- The window every overview query shares: the 30 days ending at the newest day in the marts
    unless the filters say otherwise, and the equally long window before it (prev_lo). -#}
with bounds as (
    select lo, hi, lo - (hi - lo + 1) as prev_lo
    from (
        select coalesce(%(date_from)s::date, anchor.hi - (%(default_days)s::int - 1)) as lo,
               anchor.hi
        from (select coalesce(%(date_to)s::date,
                              (select max(run_date) from {{ ref('fct_trend_daily') }}),
                              current_date) as hi) as anchor
    ) as window_
)
