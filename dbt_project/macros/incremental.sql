{#-
  Incremental models over the call-level int_eval_runs recompute whole periods (days or weeks)
  that received rows since their last build. Each such model stores `runs_loaded_through` (the
  newest loaded_at it has aggregated); the periods to redo are those of rows of `loaded_from` (the
  relation the model aggregates: int_eval_runs, a view over it or int_golden_outcomes, carrying
  `loaded_at` and the period column) loaded later. The list is fetched first and inlined as
  literals, so Postgres reads those periods through the period index instead of planning a join
  over the whole table.
-#}
{% macro changed_periods_filter(period_column, loaded_from, also_changed=none) -%}
    {#-
      also_changed: a query of more periods to redo (e.g. weeks whose runs got new reviews, or
      loaded_periods() of a second relation the model aggregates).
    -#}
    {%- if is_incremental() -%}
        {%- set query -%}
            select period::text
            from ({{ loaded_periods(period_column, loaded_from) }}) as loaded (period)
            {%- if also_changed %}
            union
            select period::text from ({{ also_changed }}) as also_changed (period)
            {%- endif %}
            order by 1
        {%- endset -%}
        {%- set periods = run_query(query).columns[0].values() if execute else [] -%}
        {%- if periods | length == 0 -%}
            false
        {%- else -%}
            {{ period_column }} in (
            {%- for period in periods -%}
                '{{ period }}'::date{{ ", " if not loop.last }}
            {%- endfor -%}
            )
        {%- endif -%}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#-
  For changed_periods_filter's also_changed in models that compare with human reviews: the weeks
  of calls (rows of `runs`, the relation the model aggregates) that received a review since the
  model's last build (its reviews_ingested_through).
-#}
{% macro reviewed_weeks(runs) -%}
    select distinct runs.week_start
    from {{ ref('stg_raw__human_reviews') }} as reviews
    inner join {{ runs }} as runs on runs.run_id = reviews.run_id
    where reviews.ingested_at > (
        select coalesce(max(reviews_ingested_through), '-infinity'::timestamptz) from {{ this }}
    )
{%- endmacro %}

{#- The periods of `loaded_from`'s rows loaded after this model's runs_loaded_through. -#}
{% macro loaded_periods(period_column, loaded_from) -%}
    select distinct {{ period_column }}
    from {{ loaded_from }}
    where loaded_at > (
        select coalesce(max(runs_loaded_through), '-infinity'::timestamptz) from {{ this }}
    )
{%- endmacro %}
