{#-
  Raw rows are immutable (the writer only inserts), so each build appends what was ingested since
  the newest ingested_at already here. The look-back (macro lookback_since) re-reads a window
  before that mark; rows of that window already loaded are skipped by run_id (an index probe
  each), so nothing is deleted and rewritten in a 10M-row table. The window's start is fetched
  first and inlined: as a subquery, it cost 4–10 s instead of 2 s for one day at 10M calls
  (docs/benchmarks.md). The one exception: a corrected import supersedes rows
  (`evalhouse import --replace`); the post-hook removes those from here (a partial index finds
  them), and their replacements arrive as new rows.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} as loaded"
            " using {{ source('raw', 'eval_runs') }} as superseded"
            " where superseded.superseded_at is not null"
            " and superseded.run_id = loaded.run_id{% endif %}",
        ],
        indexes=[
            {'columns': ['run_id'], 'unique': true},
            {'columns': ['loaded_at']},
            {'columns': ['ingested_at']},
            {'columns': ['run_date']},
            {'columns': ['week_start']},
        ],
    )
}}

with runs as (
    select new_runs.* from {{ ref('stg_raw__eval_runs') }} as new_runs
    {% if is_incremental() %}
        where
            new_runs.ingested_at > {{ lookback_since('ingested_at') }}
            and not exists (
                select from {{ this }} as loaded
                where loaded.run_id = new_runs.run_id
            )
    {% endif %}
),

final as (
    select
        run_id,
        idempotency_key,
        batch_id,
        parent_run_id,
        trial,
        attributes ->> 'position' as position,
        source,
        touchpoint,
        suite,
        suite_version,
        item_id,
        stage,
        category,
        role,
        model,
        response_model,
        provider,
        prompt_name,
        prompt_version,
        status,
        status in ('ok', 'parse_error') as is_settled,
        status in ('error', 'timeout') as is_failed,
        error_class,
        attempts,
        verdict,
        passed,
        score,
        issue_tags,
        expected_verdict,
        case
            when expected_verdict is null then null
            when status = 'parse_error' then false
            when status = 'ok' then coalesce(verdict = expected_verdict, false)
        end as is_correct,
        sample_weight,
        started_at,
        {{ evaluated_date() }} as run_date,
        date_trunc('week', {{ evaluated_date() }})::date as week_start,
        (started_at at time zone 'UTC')::date as ran_date,
        latency_ms,
        input_tokens,
        output_tokens,
        coalesce(input_tokens, 0) + coalesce(output_tokens, 0) as total_tokens,
        cost_usd,
        ingested_at,
        now() as loaded_at
    from runs
)

select * from final
