{#- MODEL@PROMPT_VERSION is split so BI can filter by model without parsing strings. -#}
with source as (
    select * from {{ source('raw', 'gate_decisions') }}
),

renamed as (
    select
        decision_id,
        suite,
        suite_version,
        baseline,
        split_part(baseline, '@', 1) as baseline_model,
        nullif(split_part(baseline, '@', 2), '') as baseline_prompt_version,
        candidate,
        split_part(candidate, '@', 1) as candidate_model,
        nullif(split_part(candidate, '@', 2), '') as candidate_prompt_version,
        decision,
        kind,
        judge,
        criteria,
        summary,
        report_path,
        decided_at
    from source
)

select * from renamed
