{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='run_date',
        indexes=[{'columns': ['run_date']}, {'columns': ['series_key', 'run_date'], 'unique': true}],
    )
}}

{#-
  A day is redone when it received calls or golden outcomes (a batch rewritten by a late
  judgment of one of its calls) since the last build; both CTEs read the same days.
-#}
{%- set changed_days = changed_periods_filter(
    'run_date', ref('int_eval_runs'),
    also_changed=loaded_periods('run_date', ref('int_golden_outcomes')),
) %}

with runs as (
    select
        model,
        prompt_version,
        suite,
        suite_version,
        source,
        role,
        run_date,
        status,
        is_settled,
        is_failed,
        passed,
        latency_ms,
        input_tokens,
        output_tokens,
        cost_usd,
        loaded_at
    from {{ ref('int_eval_runs') }}
    where {{ changed_days }}
),

{# Accuracy counts golden outcomes (int_golden_outcomes), the one definition of correctness. -#}
golden as (
    select
        model,
        prompt_version,
        suite,
        suite_version,
        source,
        role,
        run_date,
        count(*) as n_with_expected,
        count(*) filter (where is_correct) as n_correct,
        count(*) filter (where outcome = 'parse_error') as n_golden_parse_errors,
        count(*) filter (where outcome = 'unjudged') as n_unjudged
    from {{ ref('int_golden_outcomes') }}
    where {{ changed_days }}
    group by model, prompt_version, suite, suite_version, source, role, run_date
),

aggregated as (
    select
        {{ series_key(['model', 'prompt_version', 'suite', 'suite_version', 'source', 'role']) }}
            as series_key,
        run_date,
        model,
        prompt_version,
        suite,
        suite_version,
        source,
        role,
        count(*) as n_calls,
        count(*) filter (where status = 'ok') as n_ok,
        count(*) filter (where is_failed) as n_failed,
        count(*) filter (where status = 'parse_error') as n_parse_errors,
        count(*) filter (where status = 'ok' and passed is not null) as n_verdicts,
        count(*) filter (where status = 'ok' and passed) as n_passed,
        array_agg(latency_ms) filter (where is_settled and latency_ms is not null)
            as settled_latencies_ms,
        coalesce(sum(input_tokens), 0) as input_tokens,
        coalesce(sum(output_tokens), 0) as output_tokens,
        coalesce(sum(cost_usd), 0) as cost_usd,
        max(loaded_at) as runs_loaded_through
    from runs
    group by model, prompt_version, suite, suite_version, source, role, run_date
),

{#
  Exact percentiles (percentile_cont) of each group's settled latencies. Collecting them in a
  hash aggregate and sorting each small array apart is 4x faster at 10M calls than an
  ordered-set aggregate, which sorts every call by all seven group keys (and spills to disk).
-#}
with_percentiles as (
    select
        aggregated.*,
        coalesce(golden.n_with_expected, 0) as n_with_expected,
        coalesce(golden.n_correct, 0) as n_correct,
        coalesce(golden.n_golden_parse_errors, 0) as n_golden_parse_errors,
        coalesce(golden.n_unjudged, 0) as n_unjudged,
        (
            select percentile_cont(array[0.5, 0.95]) within group (order by latency)
            from unnest(aggregated.settled_latencies_ms) as latency
        ) as latency_percentiles_ms
    from aggregated
    left join golden
        on golden.run_date = aggregated.run_date
        and golden.model = aggregated.model
        and golden.prompt_version is not distinct from aggregated.prompt_version
        and golden.suite = aggregated.suite
        and golden.suite_version is not distinct from aggregated.suite_version
        and golden.source = aggregated.source
        and golden.role = aggregated.role
),

final as (
    select
        series_key,
        run_date,
        model,
        prompt_version,
        suite,
        suite_version,
        source,
        role,
        n_calls,
        n_ok,
        n_failed,
        n_parse_errors,
        {{ safe_ratio('n_failed', 'n_calls') }} as error_rate,
        {{ safe_ratio('n_parse_errors', 'n_calls') }} as parse_error_rate,
        n_verdicts,
        n_passed,
        {{ safe_ratio('n_passed', 'n_verdicts') }} as pass_rate,
        n_with_expected,
        n_correct,
        n_golden_parse_errors,
        n_unjudged,
        {{ safe_ratio('n_correct', 'n_with_expected') }} as accuracy,
        {{ wilson_low('n_correct', 'n_with_expected') }} as accuracy_ci_low,
        {{ wilson_high('n_correct', 'n_with_expected') }} as accuracy_ci_high,
        latency_percentiles_ms[1] as latency_p50_ms,
        latency_percentiles_ms[2] as latency_p95_ms,
        input_tokens,
        output_tokens,
        input_tokens + output_tokens as total_tokens,
        cost_usd,
        {{ safe_ratio('cost_usd', 'n_calls') }} as cost_per_call_usd,
        runs_loaded_through
    from with_percentiles
)

select * from final
