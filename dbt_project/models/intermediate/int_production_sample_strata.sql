{#-
  The sufficient statistics of the daily production sample, one row per stratum cell: UTC day of
  the graded call × stage (the sampling stratum, '(none)' without one) × the app's cohort (model,
  prompt name and version) × the reference judge's epoch (model, prompt name and version).
  Population: the day's settled production grading calls (source production, role grader,
  status ok), exactly the frame evals/sampling.py draws from. Sample: their re-grades (source
  production_sample, parent_run_id = the graded call), dated by the graded call's day, not by
  the night the re-grade ran. One re-grade counts per graded call and judge epoch (the one with a
  verdict, then the lowest trial). The sampling stratum is the stage; a cohort column splits it
  into cells whose population counts are known, so each cell is a simple random sample of its
  own population (post-stratification) and the mart can estimate every cohort apart.
  Incremental: a day is recomputed when it received production calls or when a re-grade of one
  of its calls was loaded.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='run_date',
        indexes=[{'columns': ['run_date']}],
    )
}}

{%- set regraded_days -%}
    select distinct graded.run_date
    from {{ ref('int_eval_runs') }} as regrades
    inner join {{ ref('int_eval_runs') }} as graded on graded.run_id = regrades.parent_run_id
    where regrades.source = 'production_sample'
        and regrades.loaded_at > {{ watermark() }}
{%- endset %}

with population as (
    select
        run_id,
        run_date,
        coalesce(stage, '(none)') as stratum,
        model as app_model,
        prompt_name as app_prompt_name,
        prompt_version as app_prompt_version,
        verdict,
        passed,
        loaded_at
    from {{ ref('int_eval_runs') }}
    where source = 'production'
        and role = 'grader'
        and status = 'ok'
        and {{
            changed_periods_filter(
                'run_date', ref('int_eval_runs'), also_changed=regraded_days
            )
        }}
),

{# A re-grade runs on or after the day it samples: the run_date bound keeps this an index scan. -#}
regrades as (
    select distinct on (runs.parent_run_id, runs.model, runs.prompt_name, runs.prompt_version)
        runs.parent_run_id,
        runs.model as judge_model,
        runs.prompt_name as judge_prompt_name,
        runs.prompt_version as judge_prompt_version,
        runs.status = 'ok' and runs.passed is not null as has_verdict,
        runs.verdict,
        runs.passed,
        runs.loaded_at
    from {{ ref('int_eval_runs') }} as runs
    inner join population on population.run_id = runs.parent_run_id
    where runs.source = 'production_sample'
        and runs.run_date >= (select min(sampled_days.run_date) from population as sampled_days)
    order by
        runs.parent_run_id asc, runs.model asc, runs.prompt_name asc, runs.prompt_version asc,
        (runs.status = 'ok' and runs.passed is not null) desc, runs.trial, runs.started_at asc,
        runs.run_id asc
),

{#
  The judge epochs that re-graded some call of a day's app cohort: each gets every stratum. A
  cohort-day nobody re-graded keeps one row per stratum with no judge (its population counts),
  so the incremental watermark moves past days without a sample.
-#}
epochs as (
    select distinct
        population.run_date,
        population.app_model,
        population.app_prompt_name,
        population.app_prompt_version,
        regrades.judge_model,
        regrades.judge_prompt_name,
        regrades.judge_prompt_version
    from regrades
    inner join population on population.run_id = regrades.parent_run_id
),

final as (
    select
        population.run_date,
        population.stratum,
        population.app_model,
        population.app_prompt_name,
        population.app_prompt_version,
        epochs.judge_model,
        epochs.judge_prompt_name,
        epochs.judge_prompt_version,
        count(*) as n_population,
        count(population.passed) as n_population_app_verdicts,
        count(*) filter (where population.passed) as n_population_app_passed,
        count(regrades.parent_run_id) as n_sampled,
        count(*) filter (where regrades.has_verdict) as n_sampled_with_verdict,
        count(*) filter (where regrades.has_verdict and regrades.passed) as n_judge_passed,
        count(*) filter (
            where regrades.has_verdict and regrades.verdict is distinct from population.verdict
        ) as n_judge_disagrees_with_app,
        max(greatest(population.loaded_at, regrades.loaded_at)) as runs_loaded_through
    from population
    left join epochs
        on epochs.run_date = population.run_date
        and epochs.app_model = population.app_model
        and epochs.app_prompt_name is not distinct from population.app_prompt_name
        and epochs.app_prompt_version is not distinct from population.app_prompt_version
    left join regrades
        on regrades.parent_run_id = population.run_id
        and regrades.judge_model = epochs.judge_model
        and regrades.judge_prompt_name is not distinct from epochs.judge_prompt_name
        and regrades.judge_prompt_version is not distinct from epochs.judge_prompt_version
    group by
        population.run_date, population.stratum, population.app_model,
        population.app_prompt_name, population.app_prompt_version, epochs.judge_model,
        epochs.judge_prompt_name, epochs.judge_prompt_version
)

select * from final
