{#- Links are built from the configured base URLs (alerts.base_url / alerts.dagster_url). -#}
{% set base_url = setting('alerts_base_url', 'http://127.0.0.1:8000').rstrip('/') %}
{% set dagster_url = setting('dagster_url', 'http://127.0.0.1:3000').rstrip('/') %}

with alerts as (
    select * from {{ ref('stg_raw__alerts') }}
),

deliveries as (
    select
        alert_id,
        count(*) as n_webhooks,
        count(delivered_at) as n_webhooks_delivered
    from {{ ref('stg_raw__alert_deliveries') }}
    group by alert_id
),

final as (
    select
        alerts.alert_id,
        alerts.dedupe_key,
        alerts.kind,
        alerts.severity,
        alerts.subject,
        alerts.message,
        alerts.statistic,
        alerts.observed,
        alerts.expected_low,
        alerts.expected_high,
        alerts.window_start,
        alerts.window_end,
        alerts.status,
        alerts.occurrences,
        alerts.created_at,
        (alerts.created_at at time zone 'UTC')::date as created_date,
        alerts.updated_at,
        alerts.resolved_at,
        alerts.delivered_at,
        alerts.acknowledged_at,
        alerts.acknowledged_by,
        case when alerts.acknowledged_at is not null then 'acknowledged' else 'open' end as state,
        coalesce(deliveries.n_webhooks, 0) as n_webhooks,
        coalesce(deliveries.n_webhooks_delivered, 0) as n_webhooks_delivered,
        cardinality(alerts.example_run_ids) as n_example_runs,
        '{{ base_url }}/alerts/' || alerts.alert_id as alert_url,
        array(
            select '{{ base_url }}/runs/' || example.run_id
            from unnest(alerts.example_run_ids) as example (run_id)
        ) as example_run_urls,
        case
            when alerts.orchestrator_run_id is not null
                then '{{ dagster_url }}/runs/' || alerts.orchestrator_run_id
        end as dagster_run_url,
        alerts.orchestrator_run_id
    from alerts
    left join deliveries on deliveries.alert_id = alerts.alert_id
)

select * from final
