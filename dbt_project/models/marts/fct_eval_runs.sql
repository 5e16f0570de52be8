{#-
  The call-level fact as BI reads it: a view of int_eval_runs, which is where it is built
  (incrementally) and where every other model reads it, so the marts stay leaves. A view costs
  no copy of the largest table; Postgres checks the view owner's rights on int_eval_runs, so the
  BI role reads it without access to the intermediate schema.
-#}
{{ config(materialized='view') }}

with runs as (
    select * from {{ ref('int_eval_runs') }}
),

final as (
    select
        run_id,
        idempotency_key,
        batch_id,
        parent_run_id,
        trial,
        position,
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
        is_settled,
        is_failed,
        error_class,
        attempts,
        verdict,
        passed,
        score,
        issue_tags,
        expected_verdict,
        is_correct,
        sample_weight,
        started_at,
        run_date,
        week_start,
        ran_date,
        latency_ms,
        input_tokens,
        output_tokens,
        total_tokens,
        cost_usd,
        ingested_at,
        loaded_at
    from runs
)

select * from final
