{#-
  A model's verdict against a reference label, per week. Two references: the human consensus
  (runs whose reviewers reached no majority are excluded and counted in n_without_consensus) and
  the golden expected verdict. A parse error is the label '<parse_error>': it never equals a
  reference, so it counts as a disagreement, and n_parse_errors reports it apart.
  Kappa: (p_o - p_e) / (1 - p_e), p_e = Σ_label (model share × reference share).
  Judgments made in a known presentation order (attributes.position) are never pooled across
  orders: presentation_order (first / swapped, null without a position) is a series dimension.
  The Wilson interval takes each row's judgments as independent; for repeated judgments of one
  item (trials, both orders) fct_agreement_by_order_weekly has intervals clustered by item.
-#}
{#-
  Incremental by week: a week is recomputed whole when it received calls with a reference label
  (rows of int_runs_with_consensus), or when one of its calls received a review, since the last
  build. Calls without a label never reach this mart, so their weeks need no recomputing.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='week_start',
        indexes=[{'columns': ['week_start']}],
    )
}}

with compared as (
    select * from {{ ref('int_runs_with_consensus') }}
    where {{
        changed_periods_filter(
            'week_start', ref('int_runs_with_consensus'),
            also_changed=reviewed_weeks(ref('int_runs_with_consensus')),
        )
    }}
),

reviews_watermark as (
    select max(ingested_at) as reviews_ingested_through
    from {{ ref('stg_raw__human_reviews') }}
),

against_humans as (
    select
        'human_consensus' as reference,
        compared.*,
        consensus_verdict as reference_label
    from compared
    where is_reviewed
),

against_golden as (
    select
        'golden_expected' as reference,
        compared.*,
        expected_verdict as reference_label
    from compared
    where expected_verdict is not null
),

labelled as (
    select
        {{ series_key(['reference', presentation_order('position')] + stage_series_columns()) }}
            as series_key,
        reference,
        {{ presentation_order('position') }} as presentation_order,
        week_start,
        {{ stage_series_list() }},
        case
            when status = 'parse_error' then '<parse_error>'
            else coalesce(verdict, '<no_verdict>')
        end as model_label,
        reference_label,
        loaded_at
    from (
        select * from against_humans
        union all
        select * from against_golden
    ) as both_references
),

series_weeks as (
    select
        series_key, reference, presentation_order, week_start, {{ stage_series_list() }},
        max(loaded_at) as runs_loaded_through
    from labelled
    group by series_key, reference, presentation_order, week_start, {{ stage_series_list() }}
),

excluded as (
    select
        series_key,
        week_start,
        count(*) as n_without_consensus
    from labelled
    where reference_label is null
    group by series_key, week_start
),

{# The series' dimension columns come from series_weeks; series_key stands for them here. -#}
pairs as (
    select
        series_key,
        week_start,
        model_label,
        reference_label,
        count(*) as n_pairs
    from labelled
    where reference_label is not null
    group by series_key, week_start, model_label, reference_label
),

totals as (
    select
        series_key,
        week_start,
        sum(n_pairs) as n,
        coalesce(sum(n_pairs) filter (where model_label = reference_label), 0) as n_agree,
        coalesce(sum(n_pairs) filter (where model_label = '<parse_error>'), 0) as n_parse_errors,
        jsonb_object_agg(model_label || ' -> ' || reference_label, n_pairs) as confusion_counts
    from pairs
    group by series_key, week_start
),

model_margins as (
    select
        series_key,
        week_start,
        model_label as label,
        sum(n_pairs) as n_label
    from pairs
    group by series_key, week_start, model_label
),

reference_margins as (
    select
        series_key,
        week_start,
        reference_label as label,
        sum(n_pairs) as n_label
    from pairs
    group by series_key, week_start, reference_label
),

chance as (
    select
        totals.series_key,
        totals.week_start,
        coalesce(sum(
            model_margins.n_label::float8 * reference_margins.n_label::float8
        ), 0) / (totals.n::float8 * totals.n::float8) as chance_agreement
    from totals
    left join model_margins
        on model_margins.series_key = totals.series_key
        and model_margins.week_start = totals.week_start
    left join reference_margins
        on reference_margins.series_key = model_margins.series_key
        and reference_margins.week_start = model_margins.week_start
        and reference_margins.label = model_margins.label
    group by totals.series_key, totals.week_start, totals.n
),

final as (
    select
        series_weeks.series_key,
        series_weeks.reference,
        series_weeks.presentation_order,
        series_weeks.week_start,
        {{ stage_series_list('series_weeks') }},
        coalesce(totals.n, 0) as n,
        coalesce(totals.n_agree, 0) as n_agree,
        {{ safe_ratio('totals.n_agree', 'totals.n') }} as agreement,
        {{ wilson_low('totals.n_agree', 'totals.n') }} as agreement_ci_low,
        {{ wilson_high('totals.n_agree', 'totals.n') }} as agreement_ci_high,
        coalesce(totals.n_parse_errors, 0) as n_parse_errors,
        {{ safe_ratio('totals.n_agree', 'totals.n - totals.n_parse_errors') }}
            as agreement_excluding_parse_errors,
        coalesce(excluded.n_without_consensus, 0) as n_without_consensus,
        chance.chance_agreement,
        {{ cohens_kappa(safe_ratio('totals.n_agree', 'totals.n'), 'chance.chance_agreement') }}
            as cohens_kappa,
        coalesce(totals.confusion_counts, '{}'::jsonb) as confusion_counts,
        series_weeks.runs_loaded_through,
        reviews_watermark.reviews_ingested_through
    from series_weeks
    cross join reviews_watermark
    left join totals
        on totals.series_key = series_weeks.series_key
        and totals.week_start = series_weeks.week_start
    left join chance
        on chance.series_key = series_weeks.series_key
        and chance.week_start = series_weeks.week_start
    left join excluded
        on excluded.series_key = series_weeks.series_key
        and excluded.week_start = series_weeks.week_start
)

select * from final
