{#-
  int_golden_outcomes_live's rows (the one definition of golden correctness) as a table, so the
  marts read golden outcomes by day or week through an index instead of re-running the view's
  lateral join over every golden call ever made (80-98 s per reader at 10M calls).

  Kept by batch, the grain an outcome is decided in: a graded call's newest settled row is
  chosen among its batch's rows, so a batch is rewritten whole (delete+insert on batch_key) when
  int_eval_runs loaded a graded golden / ci call of it, or a judgment of one of its calls (a
  late judge row, a rejudge), since this table's watermark. The batch list is fetched
  first and inlined as literals, so the filter reaches raw.eval_runs' batch index through the
  view. loaded_at is int_eval_runs' newest load at build time: readers pass this table to
  changed_periods_filter like int_eval_runs.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='batch_key',
        indexes=[
            {'columns': ['run_id'], 'unique': true},
            {'columns': ['batch_key']},
            {'columns': ['run_date']},
            {'columns': ['week_start']},
            {'columns': ['loaded_at']},
        ],
    )
}}

{%- set batches = [] -%}
{%- if is_incremental() and execute -%}
    {%- set changed_batches -%}
        with new_runs as (
            select batch_id, source, role, parent_run_id
            from {{ ref('int_eval_runs') }}
            where loaded_at > {{ watermark('loaded_at') }}
        )

        select coalesce(batch_id, '') from new_runs
        where source in ('golden', 'ci') and role in ('candidate', 'grader')
        union
        select coalesce(graded.batch_id, '')
        from new_runs
        inner join {{ ref('int_eval_runs') }} as graded
            on graded.run_id = new_runs.parent_run_id
        where new_runs.role = 'judge'
            and graded.source in ('golden', 'ci')
            and graded.role in ('candidate', 'grader')
        order by 1
    {%- endset -%}
    {%- set batches = run_query(changed_batches).columns[0].values() -%}
{%- endif %}

with outcomes as (
    select * from {{ ref('int_golden_outcomes_live') }}
    {%- if is_incremental() %}
        where
        {%- if batches | length == 0 %} false
        {%- else %} batch_id in (
            {%- for batch in batches -%}
                '{{ batch | replace("'", "''") }}'{{ ", " if not loop.last }}
            {%- endfor -%}
        )
            {%- if '' in batches %} or batch_id is null{% endif %}
        {%- endif %}
    {%- endif %}
),

final as (
    select
        outcomes.run_id,
        outcomes.batch_id,
        outcomes.source,
        outcomes.run_date,
        outcomes.week_start,
        outcomes.model,
        outcomes.prompt_name,
        outcomes.prompt_version,
        outcomes.role,
        outcomes.suite,
        outcomes.suite_version,
        outcomes.item_id,
        outcomes.stage,
        outcomes.category,
        outcomes.trial,
        outcomes.started_at,
        outcomes.status,
        outcomes.verdict,
        outcomes.expected_verdict,
        outcomes.judge_run_id,
        outcomes.judge_model,
        outcomes.judge_prompt_version,
        outcomes.judge_verdict,
        outcomes.outcome,
        outcomes.is_correct,
        coalesce(outcomes.batch_id, '') as batch_key,
        (
            select coalesce(max(eval_runs.loaded_at), '-infinity'::timestamptz)
            from {{ ref('int_eval_runs') }} as eval_runs
        ) as loaded_at
    from outcomes
)

select * from final
