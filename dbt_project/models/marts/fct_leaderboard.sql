{#-
  Golden-suite accuracy per model, prompt version and role, per suite version and category, plus
  one '(all)' row per suite version. Accuracy = correct golden outcomes / outcomes
  (int_golden_outcomes: a judged answer is correct when its judge's verdict passes; a parse error
  or a missing judgment is not correct, and is counted in its own column). Coverage = distinct items judged / items in the suite version
  (raw.golden_items; null when that suite version's items were never loaded).
-#}
with item_scores as (
    select * from {{ ref('int_golden_item_scores_weekly') }}
),

golden_items as (
    select * from {{ ref('stg_raw__golden_items') }}
),

by_category as (
    select
        model,
        prompt_version,
        role,
        suite,
        suite_version,
        category,
        item_id,
        n_judged,
        n_correct,
        n_parse_errors,
        n_unjudged
    from item_scores
    union all
    select
        model,
        prompt_version,
        role,
        suite,
        suite_version,
        '(all)' as category,
        item_id,
        n_judged,
        n_correct,
        n_parse_errors,
        n_unjudged
    from item_scores
),

suite_items as (
    select
        suite,
        suite_version,
        coalesce(category, '(none)') as category,
        item_id
    from golden_items
    union all
    select
        suite,
        suite_version,
        '(all)' as category,
        item_id
    from golden_items
),

items_per_category as (
    select
        suite,
        suite_version,
        category,
        count(*) as n_items_in_suite
    from suite_items
    group by suite, suite_version, category
),

loaded_versions as (
    select distinct
        suite,
        suite_version
    from golden_items
),

scores as (
    select
        by_category.model,
        by_category.prompt_version,
        by_category.role,
        by_category.suite,
        by_category.suite_version,
        by_category.category,
        sum(by_category.n_judged) as n_judged,
        sum(by_category.n_correct) as n_correct,
        sum(by_category.n_parse_errors) as n_parse_errors,
        sum(by_category.n_unjudged) as n_unjudged,
        count(distinct suite_items.item_id) as n_items_judged
    from by_category
    left join suite_items
        on suite_items.suite = by_category.suite
        and suite_items.suite_version = by_category.suite_version
        and suite_items.category = by_category.category
        and suite_items.item_id = by_category.item_id
    group by
        by_category.model, by_category.prompt_version, by_category.role,
        by_category.suite, by_category.suite_version, by_category.category
),

final as (
    select
        {{ series_key([
            'scores.model', 'scores.prompt_version', 'scores.role', 'scores.suite',
            'scores.suite_version', 'scores.category',
        ]) }}
            as series_key,
        scores.suite,
        scores.suite_version,
        scores.category,
        scores.role,
        scores.model,
        scores.prompt_version,
        scores.n_judged,
        scores.n_correct,
        scores.n_parse_errors,
        scores.n_unjudged,
        {{ safe_ratio('scores.n_correct', 'scores.n_judged') }} as accuracy,
        {{ wilson_low('scores.n_correct', 'scores.n_judged') }} as accuracy_ci_low,
        {{ wilson_high('scores.n_correct', 'scores.n_judged') }} as accuracy_ci_high,
        case when loaded_versions.suite is not null then scores.n_items_judged end
            as n_items_judged,
        case when loaded_versions.suite is not null
                then coalesce(items_per_category.n_items_in_suite, 0)
        end as n_items_in_suite,
        {{ safe_ratio(
            'case when loaded_versions.suite is not null then scores.n_items_judged end',
            'items_per_category.n_items_in_suite'
        ) }} as coverage,
        rank() over (
            partition by scores.suite, scores.suite_version, scores.category, scores.role
            order by {{ safe_ratio('scores.n_correct', 'scores.n_judged') }} desc
        ) as accuracy_rank
    from scores
    left join loaded_versions
        on loaded_versions.suite = scores.suite
        and loaded_versions.suite_version = scores.suite_version
    left join items_per_category
        on items_per_category.suite = scores.suite
        and items_per_category.suite_version = scores.suite_version
        and items_per_category.category = scores.category
)

select * from final
