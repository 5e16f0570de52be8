{#-
  The day's production pass rate as the reference judge would grade it, estimated from the
  stratified daily sample (evals/sampling.py) — per stage, and for all stages together.
  Each stratum h (a stage, within one app cohort and judge epoch) has N_h production calls and
  n_h re-grades with a verdict, a simple random sample of them. The Hájek estimate with weights
  N_h / n_h is p = Σ N_h p_h / Σ N_h; its design-based variance is
  Σ N_h² (1 − n_h/N_h) s_h² / n_h / (Σ N_h)² (stratified, finite population correction); the
  95 % interval is Wilson's at the effective sample size p(1 − p) / SE², adjusted for the SE's
  degrees of freedom (macros/stats.sql: it covers where p ± 1.96 SE does not, near 0 or 1, at
  20 draws a stratum, when one stratum dominates). Strata without a re-grade with a verdict are
  not covered: the estimate is over the covered strata, and n_population_uncovered says how
  many calls that leaves out. The judge-vs-app disagreement rate is estimated the same way.
-#}
{{ config(indexes=[{'columns': ['run_date']}]) }}

with strata as (
    select * from {{ ref('int_production_sample_strata') }}
    where judge_model is not null
),

terms as (
    select
        strata.*,
        n_sampled_with_verdict > 0 as is_covered,
        {{ safe_ratio('n_judge_passed', 'n_sampled_with_verdict') }} * n_population
            as judge_passed_total,
        {{ safe_ratio('n_judge_disagrees_with_app', 'n_sampled_with_verdict') }} * n_population
            as disagreements_total,
        {{ stratum_total_variance('n_judge_passed', 'n_sampled_with_verdict', 'n_population') }}
            as judge_passed_total_variance,
        {{ stratum_total_variance(
            'n_judge_disagrees_with_app', 'n_sampled_with_verdict', 'n_population'
        ) }} as disagreements_total_variance
    from strata
),

{# One row per stratum, and one per day and cohort over all its strata (grouping sets). -#}
estimates as (
    select
        run_date,
        app_model,
        app_prompt_name,
        app_prompt_version,
        judge_model,
        judge_prompt_name,
        judge_prompt_version,
        grouping(stratum) = 1 as is_all_stages,
        case when grouping(stratum) = 1 then '(all)' else stratum end as stage,
        count(*) as n_strata,
        count(*) filter (where is_covered) as n_strata_covered,
        sum(n_population) as n_population,
        coalesce(sum(n_population) filter (where not is_covered), 0) as n_population_uncovered,
        sum(n_sampled) as n_sampled,
        sum(n_sampled_with_verdict) as n_sampled_with_verdict,
        coalesce(sum(n_sampled_with_verdict) filter (where is_covered), 0) as n_sampled_covered,
        coalesce(bool_and(n_sampled_with_verdict = n_population) filter (where is_covered), false)
            as is_census,
        sum(n_judge_passed) as n_judge_passed,
        sum(n_judge_disagrees_with_app) as n_judge_disagrees_with_app,
        {{ safe_ratio('sum(n_population_app_passed)', 'sum(n_population_app_verdicts)') }}
            as app_pass_rate,
        {{ safe_ratio(
            'sum(judge_passed_total) filter (where is_covered)',
            'sum(n_population) filter (where is_covered)'
        ) }} as judge_pass_rate_estimate,
        sqrt(sum(judge_passed_total_variance) filter (where is_covered))
        / nullif(sum(n_population) filter (where is_covered), 0) as judge_pass_rate_se,
        {{ satterthwaite_df('judge_passed_total_variance', 'n_sampled_with_verdict') }}
            as judge_pass_rate_df,
        {{ safe_ratio(
            'sum(disagreements_total) filter (where is_covered)',
            'sum(n_population) filter (where is_covered)'
        ) }} as disagreement_rate_estimate,
        sqrt(sum(disagreements_total_variance) filter (where is_covered))
        / nullif(sum(n_population) filter (where is_covered), 0) as disagreement_rate_se,
        {{ satterthwaite_df('disagreements_total_variance', 'n_sampled_with_verdict') }}
            as disagreement_rate_df,
        jsonb_object_agg(stratum, jsonb_build_object(
            'n_sampled_with_verdict', n_sampled_with_verdict, 'n_population', n_population
        )) as strata,
        max(runs_loaded_through) as runs_loaded_through
    from terms
    group by grouping sets (
        (
            run_date, app_model, app_prompt_name, app_prompt_version, judge_model,
            judge_prompt_name, judge_prompt_version, stratum
        ),
        (
            run_date, app_model, app_prompt_name, app_prompt_version, judge_model,
            judge_prompt_name, judge_prompt_version
        )
    )
),

final as (
    select
        {{ series_key([
            'stage', 'app_model', 'app_prompt_name', 'app_prompt_version', 'judge_model',
            'judge_prompt_name', 'judge_prompt_version'
        ]) }} as series_key,
        run_date,
        stage,
        is_all_stages,
        app_model,
        app_prompt_name,
        app_prompt_version,
        judge_model,
        judge_prompt_name,
        judge_prompt_version,
        n_strata,
        n_strata_covered,
        n_population,
        n_population_uncovered,
        n_sampled,
        n_sampled_with_verdict,
        n_judge_passed,
        n_judge_disagrees_with_app,
        app_pass_rate,
        judge_pass_rate_estimate,
        judge_pass_rate_se,
        judge_pass_rate_df,
        {{ design_wilson_low(
            'judge_pass_rate_estimate', 'judge_pass_rate_se', 'judge_pass_rate_df',
            'n_sampled_covered', 'is_census'
        ) }}
            as judge_pass_rate_ci_low,
        {{ design_wilson_high(
            'judge_pass_rate_estimate', 'judge_pass_rate_se', 'judge_pass_rate_df',
            'n_sampled_covered', 'is_census'
        ) }}
            as judge_pass_rate_ci_high,
        disagreement_rate_estimate,
        disagreement_rate_se,
        disagreement_rate_df,
        {{ design_wilson_low(
            'disagreement_rate_estimate', 'disagreement_rate_se', 'disagreement_rate_df',
            'n_sampled_covered', 'is_census'
        ) }}
            as disagreement_rate_ci_low,
        {{ design_wilson_high(
            'disagreement_rate_estimate', 'disagreement_rate_se', 'disagreement_rate_df',
            'n_sampled_covered', 'is_census'
        ) }}
            as disagreement_rate_ci_high,
        strata,
        runs_loaded_through
    from estimates
)

select * from final
