{#-
  A judge's verdicts against a reference, per presentation order, for judgments made in a known
  order (int_order_judgments): first order, swapped order, and all orders pooled; whether each
  item is right in every order; and how often the verdict follows the slot instead of the
  content (position bias). Repeated judgments of one item (orders, trials) are not independent:
  every judgment-level interval is clustered by item — a cluster-robust (ratio-estimator /
  sandwich) variance SE² = G/(G − 1) Σ_i (a_i − p m_i)² / M² over the G items (a_i of an item's
  m_i judgments agree, M = Σ m_i; macro cluster_robust_se), and Wilson's interval at the effective sample size
  p(1 − p) / SE² with t on G − 1 degrees of freedom (macros/stats.sql). Kappa's SE is the same sandwich over the
  per-item sums of its linearisation (influence) values, its interval κ ± t SE.
  Item-level rates (one observation per item) have Wilson intervals.
  Incremental by week, like fct_verdict_agreement_weekly (a week is redone when it received
  calls or one of its calls received a review). Those weeks are looked up in int_eval_runs, not
  in int_order_judgments: that view's per-item window aggregates keep a loaded_at or run_id
  filter from reaching the index, so the lookup read every judge call (~10 s at 30M calls).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='week_start',
        indexes=[{'columns': ['week_start']}],
    )
}}

with judgments as (
    select
        {{ series_key(['reference'] + stage_series_columns()) }} as series_key,
        int_order_judgments.*
    from {{ ref('int_order_judgments') }} as int_order_judgments
    where {{
        changed_periods_filter(
            'week_start', ref('int_eval_runs'),
            also_changed=reviewed_weeks(ref('int_eval_runs')),
        )
    }}
),

reviews_watermark as (
    select max(ingested_at) as reviews_ingested_through
    from {{ ref('stg_raw__human_reviews') }}
),

series_weeks as (
    select
        series_key, reference, week_start, {{ stage_series_list() }},
        count(distinct item_key) filter (where reference_label is null)
            as n_items_without_human_majority,
        max(loaded_at) as runs_loaded_through
    from judgments
    group by series_key, reference, week_start, {{ stage_series_list() }}
),

compared as (
    select
        series_key,
        week_start,
        item_key,
        run_id,
        presentation_order,
        trial,
        started_at,
        judge_label,
        reference_label,
        judge_label = reference_label as agrees
    from judgments
    where reference_label is not null
),

{# Judgment-level figures: each order on its own, and both pooled. -#}
scoped as (
    select
        presentation_order as scope,
        compared.*
    from compared
    union all
    select
        'all_orders' as scope,
        compared.*
    from compared
),

{#
  Kappa's linearisation: judgment j (judge label x, reference label y) contributes
  ((agrees − p_o) − (r_x + q_y − 2 p_e)(1 − κ)) / (1 − p_e), r_x the share of judgments whose
  reference is x, q_y the share whose judge label is y (and p_e = mean of r_x). An item's
  contribution is the sum over its judgments. The shares come from window counts over both
  labels of every judgment, so no CTE joins another (the planner cannot size CTE joins).
-#}
labels as (
    select
        series_key,
        week_start,
        scope,
        item_key,
        'judge' as side,
        judge_label as label,
        agrees
    from scoped
    union all
    select
        series_key,
        week_start,
        scope,
        item_key,
        'reference' as side,
        reference_label as label,
        null as agrees
    from scoped
),

label_counts as (
    select
        labels.*,
        count(*) filter (where side = 'reference') over same_label as n_reference_with_label,
        count(*) filter (where side = 'judge') over same_label as n_judge_with_label
    from labels
    window same_label as (partition by series_key, week_start, scope, label)
),

item_scopes as (
    select
        series_key,
        week_start,
        scope,
        item_key,
        count(*) filter (where side = 'judge') as n_judgments,
        count(*) filter (where side = 'judge' and agrees) as n_agree,
        sum(n_reference_with_label) filter (where side = 'judge') as reference_label_mass,
        sum(n_judge_with_label) filter (where side = 'reference') as judge_label_mass
    from label_counts
    group by series_key, week_start, scope, item_key
),

items_with_totals as (
    select
        item_scopes.*,
        count(*) over scope_items as scope_n_items,
        sum(n_judgments) over scope_items as scope_n_judgments,
        sum(n_agree) over scope_items::float8 / sum(n_judgments) over scope_items as p_o,
        sum(reference_label_mass) over scope_items::float8
        / (sum(n_judgments) over scope_items)::float8 ^ 2 as p_e
    from item_scopes
    window scope_items as (partition by series_key, week_start, scope)
),

scope_totals as (
    select
        series_key,
        week_start,
        scope,
        scope_n_items as n_items,
        scope_n_judgments as n_judgments,
        sum(n_agree) as n_agree,
        p_o as agreement,
        {{ cluster_robust_se('n_agree - p_o * n_judgments', 'scope_n_items', 'scope_n_judgments') }}
            as agreement_se,
        {{ cohens_kappa('p_o', 'p_e') }} as kappa,
        {{ cluster_robust_se(
            '(n_agree - p_o * n_judgments)'
            ~ ' - ((reference_label_mass + judge_label_mass)::float8 / scope_n_judgments'
            ~ ' - 2 * p_e * n_judgments) * (1.0 - p_o) / nullif(1.0 - p_e, 0)',
            'scope_n_items',
            'nullif((1.0 - p_e) * scope_n_judgments, 0)',
        ) }} as kappa_se
    from items_with_totals
    group by series_key, week_start, scope, scope_n_items, scope_n_judgments, p_o, p_e
),

scope_figures as (
    select
        scope_totals.*,
        {{ design_wilson_low(
            'agreement', 'agreement_se', 'n_items - 1', 'n_items', 'false'
        ) }} as agreement_ci_low,
        {{ design_wilson_high(
            'agreement', 'agreement_se', 'n_items - 1', 'n_items', 'false'
        ) }} as agreement_ci_high,
        {{ t975('n_items - 1') }} as t_quantile
    from scope_totals
),

{#
  Item-level figures over items judged in both orders. An order's verdict is its first
  judgment (lowest trial, then earliest). A decisive verdict is neither a tie nor a parse error.
-#}
items as (
    select
        series_key,
        week_start,
        item_key,
        bool_and(agrees) as all_judgments_agree,
        (
            array_agg(judge_label order by trial, started_at, run_id)
            filter (where presentation_order = 'first')
        )[1
        ] as first_order_label,
        (
            array_agg(judge_label order by trial, started_at, run_id)
            filter (where presentation_order = 'swapped')
        )[1
        ] as swapped_order_label
    from compared
    group by series_key, week_start, item_key
),

classified_items as (
    select
        items.*,
        first_order_label <> swapped_order_label as order_changed_verdict,
        lower(first_order_label) in {{ tie_verdicts_list() }} as first_is_tie,
        lower(swapped_order_label) in {{ tie_verdicts_list() }} as swapped_is_tie,
        first_order_label not in ('<parse_error>', '<no_verdict>')
        and lower(first_order_label) not in {{ tie_verdicts_list() }} as first_is_decisive,
        swapped_order_label not in ('<parse_error>', '<no_verdict>')
        and lower(swapped_order_label) not in {{ tie_verdicts_list() }}
            as swapped_is_decisive
    from items
    where first_order_label is not null
        and swapped_order_label is not null
),

item_figures as (
    select
        series_key,
        week_start,
        count(*) as n_items_both_orders,
        count(*) filter (where all_judgments_agree) as n_items_right_in_every_order,
        count(*) filter (
            where order_changed_verdict and first_is_decisive and swapped_is_decisive
        ) as n_items_decisive_verdict_flipped,
        count(*) filter (
            where order_changed_verdict
            and ((first_is_tie and swapped_is_decisive) or (swapped_is_tie and first_is_decisive))
        ) as n_items_flipped_to_or_from_tie,
        count(*) filter (where order_changed_verdict) as n_items_verdict_changed
    from classified_items
    group by series_key, week_start
),

final as (
    select
        series_weeks.series_key,
        series_weeks.reference,
        series_weeks.week_start,
        {{ stage_series_list('series_weeks') }},
        series_weeks.n_items_without_human_majority,
        {%- for scope in ['first', 'swapped', 'all_orders'] %}
            {%- set prefix = scope if scope == 'all_orders' else scope ~ '_order' %}
            coalesce({{ scope }}_figures.n_items, 0) as {{ prefix }}_n_items,
            coalesce({{ scope }}_figures.n_judgments, 0) as {{ prefix }}_n_judgments,
            coalesce({{ scope }}_figures.n_agree, 0) as {{ prefix }}_n_agree,
            {{ scope }}_figures.agreement as {{ prefix }}_agreement,
            {{ scope }}_figures.agreement_se as {{ prefix }}_agreement_se_clustered,
            {{ scope }}_figures.agreement_ci_low as {{ prefix }}_agreement_ci_low,
            {{ scope }}_figures.agreement_ci_high as {{ prefix }}_agreement_ci_high,
            {{ scope }}_figures.kappa as {{ prefix }}_kappa,
            {{ scope }}_figures.kappa_se as {{ prefix }}_kappa_se_clustered,
            greatest(
                -1.0, {{ scope }}_figures.kappa
                - {{ scope }}_figures.t_quantile * {{ scope }}_figures.kappa_se)
                as {{ prefix }}_kappa_ci_low,
            least(
                1.0, {{ scope }}_figures.kappa
                + {{ scope }}_figures.t_quantile * {{ scope }}_figures.kappa_se)
                as {{ prefix }}_kappa_ci_high,
        {%- endfor %}
        coalesce(item_figures.n_items_both_orders, 0) as n_items_both_orders,
        coalesce(item_figures.n_items_right_in_every_order, 0) as n_items_right_in_every_order,
        {{ safe_ratio(
            'item_figures.n_items_right_in_every_order', 'item_figures.n_items_both_orders'
        ) }} as both_orders_agreement,
        {{ wilson_low(
            'item_figures.n_items_right_in_every_order', 'item_figures.n_items_both_orders'
        ) }} as both_orders_agreement_ci_low,
        {{ wilson_high(
            'item_figures.n_items_right_in_every_order', 'item_figures.n_items_both_orders'
        ) }} as both_orders_agreement_ci_high,
        coalesce(item_figures.n_items_decisive_verdict_flipped, 0)
            as n_items_decisive_verdict_flipped,
        coalesce(item_figures.n_items_flipped_to_or_from_tie, 0) as n_items_flipped_to_or_from_tie,
        coalesce(item_figures.n_items_verdict_changed, 0) as n_items_verdict_changed,
        {{ safe_ratio(
            'item_figures.n_items_decisive_verdict_flipped', 'item_figures.n_items_both_orders'
        ) }} as position_bias_rate_decisive_flips,
        {{ wilson_low(
            'item_figures.n_items_decisive_verdict_flipped', 'item_figures.n_items_both_orders'
        ) }} as position_bias_rate_decisive_flips_ci_low,
        {{ wilson_high(
            'item_figures.n_items_decisive_verdict_flipped', 'item_figures.n_items_both_orders'
        ) }} as position_bias_rate_decisive_flips_ci_high,
        {{ safe_ratio('item_figures.n_items_verdict_changed', 'item_figures.n_items_both_orders') }}
            as order_changed_verdict_rate_incl_ties,
        series_weeks.runs_loaded_through,
        reviews_watermark.reviews_ingested_through
    from series_weeks
    cross join reviews_watermark
    {%- for scope in ['first', 'swapped', 'all_orders'] %}
        left join scope_figures as {{ scope }}_figures
            on {{ scope }}_figures.series_key = series_weeks.series_key
            and {{ scope }}_figures.week_start = series_weeks.week_start
            and {{ scope }}_figures.scope = '{{ scope }}'
    {%- endfor %}
    left join item_figures
        on item_figures.series_key = series_weeks.series_key
        and item_figures.week_start = series_weeks.week_start
)

select * from final
