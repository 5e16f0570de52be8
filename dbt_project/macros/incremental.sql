{#-
  Incremental models over the call-level int_eval_runs recompute whole periods (days or weeks)
  that received rows since their last build. Each such model has a watermark (macro watermark:
  the newest loaded_at it has taken in); the periods to redo are those of rows of `loaded_from` (the
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
        {{ in_literals(period_column, periods, 'date') }}
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

{#- The periods of `loaded_from`'s rows loaded after this model's watermark. -#}
{% macro loaded_periods(period_column, loaded_from) -%}
    select distinct {{ period_column }}
    from {{ loaded_from }}
    where loaded_at > {{ watermark() }}
{%- endmacro %}

{#-
  The newest int_eval_runs.loaded_at this incremental model has taken in: its own column
  (`runs_loaded_through`, or `column`; none for a model without one), or what the last build of
  it recorded in the watermark table (on-run-end, record_watermarks), whichever is newer. The
  table is what a build that wrote no rows leaves behind: a mart that is empty (judge
  consistency without repeated judgments) would otherwise redo every period of the run log on
  every build. In an incremental build it is fetched first and inlined as a literal: as a
  subquery, Postgres estimates `loaded_at > (…)` at a third of the table and scans all of it
  (2.6 s of int_golden_outcomes' batch list at 10M calls) instead of reading the new rows
  through the loaded_at index.
-#}
{% macro watermark(column='runs_loaded_through') -%}
    {%- set query -%}
        select coalesce(greatest(
            {%- if column %}
            (select max({{ column }}) from {{ this }}),
            {%- endif %}
            (
                select recorded.loaded_through from {{ watermarks_table() }} as recorded
                where recorded.model = {{ dbt.string_literal(this | string) }}
            )
        ), '-infinity'::timestamptz)
    {%- endset -%}
    {%- if execute and is_incremental() -%}
        {{ dbt.string_literal(run_query(query ~ "::text").columns[0].values()[0]) }}::timestamptz
    {%- else -%}
        ({{ query }})
    {%- endif -%}
{%- endmacro %}

{% macro watermarks_table() -%}
    intermediate.incremental_watermarks
{%- endmacro %}

{#- on-run-start: the watermark table (intermediate, which no reader role is granted). -#}
{% macro create_watermarks_table() -%}
    create schema if not exists intermediate;
    create table if not exists {{ watermarks_table() }} (
        model text primary key,
        loaded_through timestamptz not null
    )
{%- endmacro %}

{#-
  on-run-end: each incremental model this run built records int_eval_runs' newest loaded_at.
  Every model of the run that reads calls ran after int_eval_runs was loaded, and every loaded_at
  downstream (int_golden_outcomes.loaded_at, views over int_eval_runs) is one of its values.
-#}
{% macro record_watermarks(results) -%}
    {%- set built = [] -%}
    {%- for result in results -%}
        {%- if result.node.resource_type == 'model' and result.status == 'success'
            and result.node.config.materialized == 'incremental' -%}
            {%- do built.append(result.node.relation_name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if execute and built -%}
        {%- set runs = graph.nodes.values() | selectattr('name', 'equalto', 'int_eval_runs')
            | first -%}
        insert into {{ watermarks_table() }} (model, loaded_through)
        select built.model, runs.loaded_through
        from unnest(array[
            {%- for model in built -%}
                {{ dbt.string_literal(model) }}{{ ", " if not loop.last }}
            {%- endfor -%}
        ]) as built (model)
        cross join (select max(loaded_at) as loaded_through from {{ runs.relation_name }}) as runs
        where runs.loaded_through is not null
        on conflict (model) do update set loaded_through = excluded.loaded_through
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#-
  Models kept by evaluation run (raw.eval_batches' batch_id) rewrite the runs `changed` (a
  query of batch ids) returns: fetched first and inlined as literals, so Postgres reaches the
  run's rows through the batch_id / batch_key indexes instead of planning a join over all of them.
-#}
{% macro changed_batches_filter(changed) -%}
    {{ changed_keys_filter('batch_id', changed, 'uuid') }}
{%- endmacro %}

{#-
  `column in (...)` over the keys the query `changed` returns in an incremental build (true in a
  full one): fetched first and inlined as literals, as changed_batches_filter.
-#}
{% macro changed_keys_filter(column, changed, type) -%}
    {%- if is_incremental() -%}
        {%- set keys = run_query(changed ~ " order by 1").columns[0].values() if execute else [] -%}
        {{ in_literals(column, keys, type) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#-
  The newest `column` (a raw ingested_at this incremental model has taken in) less the look-back
  (setting incremental_lookback_minutes, default 60): a writer transaction that began earlier but
  committed later carries an older ingested_at. Fetched first and inlined as a literal: as a
  subquery, Postgres estimated a third of the run log behind it and planned for that. A column
  the table does not have yet (the first build after it was added) gives -infinity.
-#}
{% macro lookback_since(column) -%}
    {%- if execute and is_incremental()
        and column in adapter.get_columns_in_relation(this) | map(attribute='name') -%}
        {%- set since = run_query(
            "select (coalesce(max(" ~ column ~ "), '-infinity'::timestamptz) - interval '"
            ~ (setting("incremental_lookback_minutes", "60") | int) ~ " minutes')::text"
            ~ " from " ~ this
        ).columns[0].values()[0] -%}
        {{ dbt.string_literal(since) }}::timestamptz
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{%- endmacro %}

{#-
  For changed_batches_filter in the marts kept by evaluation run: the runs int_eval_batches
  rewrote since this model's last build, and runs with outcomes this model has no rows of (a
  record written after its outcome rows loaded). A run's golden outcomes only change with its
  outcome rows (its batch key, model, prompt version and suite version are fixed when it opens),
  and int_eval_batches rewrites a run whenever those rows load.
-#}
{% macro rebuilt_eval_batches() -%}
    select batch_id from {{ ref('int_eval_batches') }}
    where loaded_at > {{ watermark(none) }}
    union
    select batches.batch_id from {{ ref('int_eval_batches') }} as batches
    where batches.n_graded > 0
        and not exists (select from {{ this }} as built where built.batch_id = batches.batch_id)
{%- endmacro %}

{#-
  `column in (...)` over values fetched first, inlined as typed literals (false when there are
  none): the filter of the changed-periods and changed-batches macros, which Postgres plans
  through the column's index rather than as a join.
-#}
{% macro in_literals(column, values, type) -%}
    {%- if values | length == 0 -%}
        false
    {%- else -%}
        {{ column }} in (
        {%- for value in values -%}
            '{{ value }}'::{{ type }}{{ ", " if not loop.last }}
        {%- endfor -%}
        )
    {%- endif -%}
{%- endmacro %}

{#-
  int_human_consensus' runs to recompute: those with a review ingested (new, or rewritten by a
  re-review) since its newest reviews_ingested_through, less the look-back.
-#}
{% macro rereviewed_runs() -%}
    select distinct run_id from {{ ref('stg_raw__human_reviews') }}
    where ingested_at > {{ lookback_since('reviews_ingested_through') }}
{%- endmacro %}
