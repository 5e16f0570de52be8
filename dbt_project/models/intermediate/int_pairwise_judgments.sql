{#-
  Pairwise judgments (docs/pairwise-ratings.md): one row per settled judge call that names its
  two contestants (attributes.contestant_a / contestant_b), from the runner or an import. The
  verdict is stored in the item's labelling (a, b, tie), whatever slot each side was shown in;
  presentation_order comes from attributes.position through the presentation_order macro
  (ab: first, ba: swapped), and slot_verdict (which slot the judge chose) is derived from the
  two, so imports that do not carry it read the same as the runner's rows.
  A pair is one judged comparison: cohort, batch, item and the two contestants; its trials and
  orders are its repeated judgments. Its human label follows the agreement marts' item rule
  (macro item_human_majority over the pair's reviewed judgments); its golden label is the
  row's expected verdict, else its golden item's (as in int_order_judgments).
  A table, not a view: four models and the tests read the rows.

  Incremental by pair (delete+insert on pair_key): the human and golden labels are windows
  over a pair, so a build rewrites every pair that got a judgment loaded since the watermark
  (int_eval_runs' loaded_at index, and raw.eval_runs from the first such row's ingested_at
  through its BRIN index), a review or re-review of one of its judgments since the newest
  reviews_ingested_through here less the look-back (macro lookback_since), or a judgment
  superseded by a corrected import (the post-hook drops those rows, as in int_eval_runs).
  Its earlier judgments are taken from this table, not the run log: their run-log rows are
  immutable; labels are joined afresh. Watermarks and pair keys are fetched first and inlined.
  On a warehouse where this was a table, the first build adds reviews_ingested_through and,
  its review watermark being empty, rewrites every reviewed pair once (append_new_columns).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='pair_key',
        on_schema_change='append_new_columns',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} as built"
            " using {{ source('raw', 'eval_runs') }} as superseded"
            " where superseded.superseded_at is not null"
            " and superseded.run_id = built.run_id{% endif %}",
        ],
        indexes=[
            {'columns': ['run_id'], 'unique': true},
            {'columns': ['pair_key']},
            {'columns': ['reviews_ingested_through']},
        ],
    )
}}

{#-
  The new judge rows' first ingested_at, read through the loaded_at index (materialized: as a
  plain min(), Postgres walked the ingested_at index from the oldest row, 117 s at 30M calls);
  -infinity in a full build, as loaded_since (neither column is ever null).
-#}
{%- set loaded_since = watermark('loaded_at') if is_incremental()
    else "'-infinity'::timestamptz" -%}
{%- set first_ingested = "'-infinity'::timestamptz" -%}
{%- if is_incremental() and execute -%}
    {%- set first_ingested = dbt.string_literal(run_query(
        "with new_runs as materialized (select ingested_at from " ~ ref('int_eval_runs')
        ~ " where is_settled and role = 'judge' and loaded_at > " ~ loaded_since
        ~ ") select coalesce(min(ingested_at), 'infinity'::timestamptz)::text from new_runs"
    ).columns[0].values()[0]) ~ "::timestamptz" -%}
{%- endif -%}

{%- set relabelled -%}
    select built.pair_key from {{ this }} as built
    where built.run_id in (
        select run_id from {{ ref('stg_raw__human_reviews') }}
        where ingested_at > {{ lookback_since('reviews_ingested_through') }}
        union all
        select run_id from {{ source('raw', 'eval_runs') }} where superseded_at is not null
    )
{%- endset %}

with runs as (
    select * from {{ ref('int_eval_runs') }}
    where is_settled
        and role = 'judge'
        and loaded_at > {{ loaded_since }}
),

pairwise_attributes as (
    select
        run_id,
        attributes ->> 'contestant_a' as contestant_a,
        attributes ->> 'contestant_b' as contestant_b,
        attributes ->> 'response_a_run_id' as response_a_run_id,
        attributes ->> 'response_b_run_id' as response_b_run_id
    from {{ ref('stg_raw__eval_runs') }}
    where attributes ? 'contestant_a'
        and attributes ? 'contestant_b'
        and status in ('ok', 'parse_error')
        and ingested_at >= {{ first_ingested }}
),

consensus as (
    select * from {{ ref('int_human_consensus') }}
),

golden_items as (
    select * from {{ ref('stg_raw__golden_items') }}
),

judgments as (
    select
        runs.run_id,
        runs.suite,
        runs.suite_version,
        runs.source,
        runs.model as judge_model,
        runs.prompt_version as judge_prompt_version,
        runs.batch_id,
        runs.item_id,
        runs.stage,
        runs.category,
        pairwise_attributes.contestant_a,
        pairwise_attributes.contestant_b,
        pairwise_attributes.response_a_run_id,
        pairwise_attributes.response_b_run_id,
        runs.position,
        {{ presentation_order('runs.position') }} as presentation_order,
        runs.trial,
        runs.status = 'parse_error' as is_parse_error,
        case when runs.status = 'ok' and runs.verdict in ('a', 'b', 'tie') then runs.verdict end
            as verdict,
        {{ reference_label_columns('runs') }},
        runs.started_at,
        runs.loaded_at
    from runs
    inner join pairwise_attributes on pairwise_attributes.run_id = runs.run_id
    left join consensus on consensus.run_id = runs.run_id
    left join golden_items
        on golden_items.suite = runs.suite
        and golden_items.suite_version = runs.suite_version
        and golden_items.item_id = runs.item_id
),

keyed as (
    select
        {{ series_key(pairwise_cohort_columns()) }} as cohort_key,
        {{ series_key(pairwise_cohort_columns() + [
            'batch_id', 'item_id', 'contestant_a', 'contestant_b'
        ]) }} as pair_key,
        judgments.*
    from judgments
),

{% if is_incremental() %}
    affected_pairs as (
        select keyed.pair_key from keyed
        union
        select built.pair_key from {{ this }} as built
        where {{ changed_keys_filter('built.pair_key', relabelled, 'text') }}
    ),

    -- The affected pairs' earlier judgments, their labels joined afresh (a golden item is
    -- immutable once stored, so a stored expected verdict stands).
    earlier as (
        select
            built.cohort_key,
            built.pair_key,
            built.run_id,
            {{ pairwise_cohort_list('built') }},
            built.batch_id,
            built.item_id,
            built.stage,
            built.category,
            built.contestant_a,
            built.contestant_b,
            built.response_a_run_id,
            built.response_b_run_id,
            built.position,
            built.presentation_order,
            built.trial,
            built.is_parse_error,
            built.verdict,
            {{ reference_label_columns('built') }},
            built.started_at,
            built.loaded_at
        from {{ this }} as built
        left join consensus on consensus.run_id = built.run_id
        left join golden_items
            on golden_items.suite = built.suite
            and golden_items.suite_version = built.suite_version
            and golden_items.item_id = built.item_id
        where built.pair_key in (select affected_pairs.pair_key from affected_pairs)
            and not exists (
                select from {{ source('raw', 'eval_runs') }} as superseded
                where superseded.superseded_at is not null and superseded.run_id = built.run_id
            )
    ),
{% endif %}

pair_judgments as (
    select * from keyed
    {% if is_incremental() %}
        union all
        select * from earlier
    {% endif %}
),

final as (
    select
        cohort_key,
        pair_key,
        run_id,
        {{ pairwise_cohort_list() }},
        batch_id,
        item_id,
        stage,
        category,
        contestant_a,
        contestant_b,
        response_a_run_id,
        response_b_run_id,
        position,
        presentation_order,
        trial,
        is_parse_error,
        verdict,
        case
            when verdict = 'tie' then 'tie'
            when verdict is null or presentation_order is null then null
            when (verdict = 'a') = (presentation_order = 'first') then 'first'
            else 'second'
        end as slot_verdict,
        expected_verdict,
        max(expected_verdict) over same_pair as golden_label,
        is_reviewed,
        has_consensus,
        consensus_verdict,
        bool_or(is_reviewed) over same_pair as pair_is_reviewed,
        {{ item_human_majority(
            'is_reviewed', 'has_consensus', 'consensus_verdict', over='over same_pair'
        ) }} as human_label,
        reviews_ingested_through,
        started_at,
        loaded_at
    from pair_judgments
    window same_pair as (partition by pair_key)
)

select * from final
