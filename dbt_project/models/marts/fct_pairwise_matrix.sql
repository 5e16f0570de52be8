{#-
  STAND-IN (pairwise-surfaces): the contract's columns with simple counts per judgment, so the
  pages can be built before pairwise-marts lands. Drop at merge.
-#}
with judgments as (
    select * from {{ ref('int_pairwise_judgments') }}
    where not is_parse_error
),

golden_items as (
    select * from {{ ref('stg_raw__golden_items') }}
),

sides as (
    select
        suite, suite_version, judge_model, judge_prompt_version, item_id,
        contestant_a as contestant, contestant_b as opponent,
        case verdict when 'a' then 1 else 0 end as win,
        case verdict when 'tie' then 1 else 0 end as tie,
        case verdict when 'b' then 1 else 0 end as loss
    from judgments
    union all
    select
        suite, suite_version, judge_model, judge_prompt_version, item_id,
        contestant_b, contestant_a,
        case verdict when 'b' then 1 else 0 end,
        case verdict when 'tie' then 1 else 0 end,
        case verdict when 'a' then 1 else 0 end
    from judgments
),

suite_items as (
    select suite, suite_version, count(*) as n_items
    from golden_items
    group by suite, suite_version
),

final as (
    select
        sides.suite,
        sides.suite_version,
        sides.judge_model,
        sides.judge_prompt_version,
        sides.contestant,
        sides.opponent,
        sum(sides.win)::integer as wins,
        sum(sides.tie)::integer as ties,
        sum(sides.loss)::integer as losses,
        (sum(sides.win) + 0.5 * sum(sides.tie))::float8 / count(*) as win_rate,
        count(distinct sides.item_id)::integer as items,
        count(distinct sides.item_id)::float8 / nullif(max(suite_items.n_items), 0) as coverage
    from sides
    left join suite_items
        on suite_items.suite = sides.suite and suite_items.suite_version = sides.suite_version
    group by 1, 2, 3, 4, 5, 6
)

select * from final
