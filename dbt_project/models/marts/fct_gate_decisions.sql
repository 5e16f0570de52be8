{#-
  Release-gate history: one row per decision with its headline statistics and the names of the
  criteria that failed or were inconclusive, so "what blocked the last releases?" is one query.
  Accuracy decisions fill the accuracy columns, pairwise decisions (kind = 'pairwise') the
  win-rate ones.
-#}
with decisions as (
    select * from {{ ref('stg_raw__gate_decisions') }}
),

criteria as (
    select
        decisions.decision_id,
        count(*) as n_criteria,
        count(*) filter (where elements.criterion ->> 'status' = 'fail') as n_failed,
        count(*) filter (where elements.criterion ->> 'status' = 'insufficient') as n_insufficient,
        coalesce(
            array_agg(elements.criterion ->> 'name' order by elements.ordinality)
            filter (where elements.criterion ->> 'status' = 'fail'),
            '{}'
        ) as failed_criteria,
        coalesce(
            array_agg(elements.criterion ->> 'name' order by elements.ordinality)
            filter (where elements.criterion ->> 'status' = 'insufficient'),
            '{}'
        ) as insufficient_criteria
    from decisions
    cross join
        lateral jsonb_array_elements(decisions.criteria)
        with ordinality as elements (criterion, ordinality)
    group by decisions.decision_id
),

final as (
    select
        decisions.decision_id,
        decisions.suite,
        decisions.suite_version,
        decisions.baseline,
        decisions.baseline_model,
        decisions.baseline_prompt_version,
        decisions.candidate,
        decisions.candidate_model,
        decisions.candidate_prompt_version,
        decisions.decision,
        decisions.kind,
        decisions.judge,
        decisions.decision = 'deploy' as is_deploy,
        decisions.decided_at,
        (decisions.decided_at at time zone 'UTC')::date as decided_date,
        (decisions.summary ->> 'paired_items')::integer as paired_items,
        (decisions.summary ->> 'baseline_accuracy')::float8 as baseline_accuracy,
        (decisions.summary ->> 'candidate_accuracy')::float8 as candidate_accuracy,
        (decisions.summary ->> 'delta')::float8 as accuracy_delta,
        case when decisions.kind = 'accuracy' then (decisions.summary ->> 'ci_low')::float8 end
            as accuracy_delta_ci_low,
        case when decisions.kind = 'accuracy' then (decisions.summary ->> 'ci_high')::float8 end
            as accuracy_delta_ci_high,
        (decisions.summary ->> 'mcnemar_p')::float8 as mcnemar_p,
        (decisions.summary ->> 'baseline_only')::integer as n_regressed_items,
        (decisions.summary ->> 'candidate_only')::integer as n_improved_items,
        (decisions.summary ->> 'win_rate')::float8 as win_rate,
        case when decisions.kind = 'pairwise' then (decisions.summary ->> 'ci_low')::float8 end
            as win_rate_ci_low,
        case when decisions.kind = 'pairwise' then (decisions.summary ->> 'ci_high')::float8 end
            as win_rate_ci_high,
        (decisions.summary ->> 'sign_p')::float8 as sign_test_p,
        (decisions.summary ->> 'item_wins')::integer as n_items_won,
        (decisions.summary ->> 'item_ties')::integer as n_items_tied,
        (decisions.summary ->> 'item_losses')::integer as n_items_lost,
        coalesce(criteria.n_criteria, 0) as n_criteria,
        coalesce(criteria.n_failed, 0) as n_failed_criteria,
        coalesce(criteria.n_insufficient, 0) as n_insufficient_criteria,
        coalesce(criteria.failed_criteria, '{}') as failed_criteria,
        coalesce(criteria.insufficient_criteria, '{}') as insufficient_criteria,
        row_number() over (
            partition by
                decisions.suite, decisions.kind, decisions.judge, decisions.baseline,
                decisions.candidate
            order by decisions.decided_at desc, decisions.decision_id asc
        ) = 1 as is_latest_for_pair,
        decisions.report_path
    from decisions
    left join criteria on criteria.decision_id = decisions.decision_id
)

select * from final
