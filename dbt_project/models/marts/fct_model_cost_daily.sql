{#- Cost counts every call, failed ones included (a failed call can still be billed). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='run_date',
        indexes=[{'columns': ['run_date']}, {'columns': ['series_key', 'run_date'], 'unique': true}],
    )
}}

with runs as (
    select * from {{ ref('int_eval_runs') }}
    where {{ changed_periods_filter('run_date', ref('int_eval_runs')) }}
),

aggregated as (
    select
        {{ series_key(['model', 'source', 'role', 'prompt_version']) }} as series_key,
        run_date,
        model,
        source,
        role,
        prompt_version,
        count(*) as n_calls,
        count(*) filter (where status = 'ok') as n_ok,
        count(*) filter (where status = 'parse_error') as n_parse_errors,
        count(*) filter (where is_failed) as n_failed,
        count(*) filter (where status = 'ok' and passed) as n_passing_verdicts,
        coalesce(sum(input_tokens), 0) as input_tokens,
        coalesce(sum(output_tokens), 0) as output_tokens,
        coalesce(sum(cost_usd), 0) as cost_usd,
        max(loaded_at) as runs_loaded_through
    from runs
    group by model, source, role, prompt_version, run_date
),

final as (
    select
        series_key,
        run_date,
        model,
        source,
        role,
        prompt_version,
        n_calls,
        n_ok,
        n_parse_errors,
        n_failed,
        n_passing_verdicts,
        input_tokens,
        output_tokens,
        input_tokens + output_tokens as total_tokens,
        cost_usd,
        {{ safe_ratio('cost_usd', 'n_calls') }} as cost_per_call_usd,
        {{ safe_ratio('cost_usd', 'n_passing_verdicts') }} as cost_per_passing_verdict_usd,
        runs_loaded_through
    from aggregated
)

select * from final
