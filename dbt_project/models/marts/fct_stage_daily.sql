{#-
  Flags compare a day with (a) its stage's configured band and (b) the same series' pooled pass
  rate over the trailing baseline window (the N days before, not the day itself): a day is
  "too easy vs baseline" when even its Wilson lower bound is above the baseline rate, "stalling
  vs baseline" when its upper bound is below it.
-#}
{{ config(indexes=[{'columns': ['run_date']}, {'columns': ['stage', 'run_date']}]) }}

with daily as (
    select * from {{ ref('int_stage_daily_counts') }}
),

configured_bands as (
    {{ stage_bands_relation() }}
),

with_baseline as (
    select
        daily.*,
        coalesce(sum(n_verdicts) over baseline_window, 0) as baseline_n_verdicts,
        coalesce(sum(n_passed) over baseline_window, 0) as baseline_n_passed
    from daily
    window baseline_window as (
        partition by series_key
        order by run_date
        range between interval '{{ baseline_days() }} days' preceding
        and interval '1 day' preceding
    )
),

rates as (
    select
        with_baseline.*,
        {{ safe_ratio('n_passed', 'n_verdicts') }} as pass_rate,
        {{ wilson_low('n_passed', 'n_verdicts') }} as pass_rate_ci_low,
        {{ wilson_high('n_passed', 'n_verdicts') }} as pass_rate_ci_high,
        {{ safe_ratio('weight_passed', 'weight_verdicts') }} as weighted_pass_rate,
        {{ safe_ratio('score_sum', 'n_scored') }} as mean_score,
        {{ safe_ratio('baseline_n_passed', 'baseline_n_verdicts') }} as baseline_pass_rate,
        coalesce(
            configured_bands.too_easy_above,
            {{ setting('too_easy_above', '0.95') | float }}
        ) as band_too_easy_above,
        coalesce(
            configured_bands.stalling_below,
            {{ setting('stalling_below', '0.35') | float }}
        ) as band_stalling_below
    from with_baseline
    left join configured_bands on configured_bands.stage = with_baseline.stage
),

final as (
    select
        series_key,
        run_date,
        {{ stage_series_list() }},
        n_calls,
        n_settled,
        n_failed,
        n_parse_errors,
        n_verdicts,
        n_passed,
        pass_rate,
        pass_rate_ci_low,
        pass_rate_ci_high,
        weighted_pass_rate,
        n_scored,
        mean_score,
        band_too_easy_above,
        band_stalling_below,
        baseline_n_verdicts,
        baseline_pass_rate,
        coalesce(pass_rate > band_too_easy_above, false) as too_easy,
        coalesce(pass_rate < band_stalling_below, false) as stalling,
        coalesce(pass_rate_ci_low > baseline_pass_rate, false) as too_easy_vs_baseline,
        coalesce(pass_rate_ci_high < baseline_pass_rate, false) as stalling_vs_baseline
    from rates
)

select * from final
