{#- The window every overview query shares: the 30 days ending at the newest plausible day in the
    marts (none after tomorrow, UTC: one call dated 9999-12-31 must not carry the default window
    there) unless the filters say otherwise, and the equally long window before it (prev_lo).
    Both are kept on or after 0001-01-01, the first day the page can show. -#}
with bounds as (
    select lo, hi, lo - least(hi - lo + 1, lo - date '0001-01-01') as prev_lo
    from (
        select greatest(coalesce(%(date_from)s::date, anchor.hi - (%(default_days)s::int - 1)),
                        date '0001-01-01') as lo,
               anchor.hi
        from (select coalesce(%(date_to)s::date,
                              (select max(run_date) from {{ ref('fct_trend_daily') }}
                               where run_date <= current_date + 1),
                              current_date) as hi) as anchor
    ) as window_
)
