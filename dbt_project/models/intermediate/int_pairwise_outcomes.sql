{#-
  Each parsed pairwise judgment seen from both of its sides: one row per judgment × contestant,
  with the opponent and the contestant's outcome (win, tie, loss). Parse errors and verdicts
  outside a / b / tie are no comparison. The ratings mart counts a contestant's record from
  it, the matrix each contestant × opponent's.
-#}
with judgments as (
    select * from {{ ref('int_pairwise_judgments') }}
    where verdict is not null
        and contestant_a <> contestant_b
),

final as (
    select
        judgments.cohort_key,
        judgments.run_id,
        {{ pairwise_cohort_list('judgments') }},
        judgments.item_id,
        sides.contestant,
        sides.opponent,
        case
            when judgments.verdict = 'tie' then 'tie'
            when judgments.verdict = sides.side then 'win'
            else 'loss'
        end as outcome
    from judgments
    cross join
        lateral (
            values
            ('a', judgments.contestant_a, judgments.contestant_b),
            ('b', judgments.contestant_b, judgments.contestant_a)
        ) as sides (side, contestant, opponent)
)

select * from final
