{#-
  Settled calls that have something to be compared with: a human consensus (or reviews without
  one, kept to be counted), or a golden expected verdict (the row's own, else the golden item's).
  A view over int_eval_runs so filters on week_start and loaded_at reach its indexes.
-#}
with runs as (
    select * from {{ ref('int_eval_runs') }}
    where is_settled
),

consensus as (
    select * from {{ ref('int_human_consensus') }}
),

golden_items as (
    select * from {{ ref('stg_raw__golden_items') }}
),

prompt_versions as (
    select * from {{ ref('stg_raw__prompt_versions') }}
),

joined as (
    select
        runs.run_id,
        runs.week_start,
        runs.run_date,
        runs.source,
        runs.role,
        runs.stage,
        runs.category,
        runs.suite,
        runs.suite_version,
        runs.item_id,
        runs.batch_id,
        runs.parent_run_id,
        runs.trial,
        runs.position,
        runs.model,
        runs.prompt_name,
        runs.prompt_version,
        prompt_versions.prompt_created_at,
        runs.status,
        runs.verdict,
        runs.passed,
        {{ reference_label_columns('runs') }},
        consensus.n_reviews,
        runs.loaded_at
    from runs
    left join consensus
        on consensus.run_id = runs.run_id
    left join golden_items
        on golden_items.suite = runs.suite
        and golden_items.suite_version = runs.suite_version
        and golden_items.item_id = runs.item_id
    left join prompt_versions
        on prompt_versions.prompt_name = runs.prompt_name
        and prompt_versions.prompt_version = runs.prompt_version
)

select * from joined
where is_reviewed or expected_verdict is not null
