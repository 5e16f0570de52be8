{#-
  STAND-IN (pairwise-surfaces): the contract's columns; the rating here is the Elo-scale log-odds
  of each contestant's pooled win rate (centred), its interval from the Wilson interval of that
  rate. pairwise-marts replaces it with Bradley-Terry and item bootstrap intervals. Drop at merge.
-#}
with matrix as (
    select * from {{ ref('fct_pairwise_matrix') }}
),

judgments as (
    select * from {{ ref('int_pairwise_judgments') }}
    where not is_parse_error
),

items as (
    select suite, suite_version, judge_model, judge_prompt_version, contestant,
        count(distinct item_id)::integer as items
    from (
        select suite, suite_version, judge_model, judge_prompt_version, contestant_a as contestant,
            item_id
        from judgments
        union all
        select suite, suite_version, judge_model, judge_prompt_version, contestant_b, item_id
        from judgments
    ) as sides
    group by 1, 2, 3, 4, 5
),

pooled as (
    select
        suite, suite_version, judge_model, judge_prompt_version, contestant,
        sum(wins)::integer as wins,
        sum(ties)::integer as ties,
        sum(losses)::integer as losses,
        sum(wins + ties + losses)::integer as comparisons,
        sum(wins + 0.5 * ties) as score
    from matrix
    group by 1, 2, 3, 4, 5
),

bounded as (
    select
        pooled.*,
        least(greatest(score / comparisons, 0.01), 0.99) as rate,
        least(greatest({{ wilson_low('score', 'comparisons') }}, 0.01), 0.99) as rate_low,
        least(greatest({{ wilson_high('score', 'comparisons') }}, 0.01), 0.99) as rate_high
    from pooled
),

scaled as (
    select
        bounded.*,
        400 * log(rate / (1 - rate)) as raw_rating,
        400 * log(rate_low / (1 - rate_low)) as raw_low,
        400 * log(rate_high / (1 - rate_high)) as raw_high,
        avg(400 * log(rate / (1 - rate))) over (
            partition by suite, suite_version, judge_model, judge_prompt_version
        ) as centre
    from bounded
),

final as (
    select
        scaled.suite,
        scaled.suite_version,
        scaled.judge_model,
        scaled.judge_prompt_version,
        scaled.contestant,
        (scaled.raw_rating - scaled.centre)::float8 as rating,
        (scaled.raw_low - scaled.centre)::float8 as rating_ci_low,
        (scaled.raw_high - scaled.centre)::float8 as rating_ci_high,
        rank() over (
            partition by scaled.suite, scaled.suite_version, scaled.judge_model,
                scaled.judge_prompt_version
            order by scaled.raw_rating desc
        )::integer as rank,
        scaled.wins,
        scaled.ties,
        scaled.losses,
        scaled.comparisons,
        items.items
    from scaled
    inner join items using (suite, suite_version, judge_model, judge_prompt_version, contestant)
)

select * from final
