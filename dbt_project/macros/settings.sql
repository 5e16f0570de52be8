{#-
  One place for every tunable: `--vars` wins, then the EVALHOUSE_DBT_<NAME> variable that
  `evalhouse dbt` derives from evalhouse.yaml, then the default. Plain `dbt build` therefore works
  with no environment at all.
-#}
{% macro setting(name, default) -%}
    {{- return(var(name, env_var('EVALHOUSE_DBT_' ~ (name | upper), default))) -}}
{%- endmacro %}

{#- Trailing baseline window (days before the day itself) for stage flags. -#}
{% macro baseline_days() -%}
    {{- return(setting('baseline_days', '14') | int) -}}
{%- endmacro %}

{#-
  Per-stage pass-rate bands as rows (stage, too_easy_above, stalling_below); a stage not listed
  falls back to the default band. EVALHOUSE_DBT_STAGE_BANDS is JSON:
  {"stage": {"too_easy_above": 0.9, "stalling_below": 0.4}}.
-#}
{% macro stage_bands_relation() -%}
    {%- set bands = fromjson(setting('stage_bands', '{}')) or {} -%}
    {%- if bands | length == 0 -%}
        select null::text as stage, null::float8 as too_easy_above, null::float8 as stalling_below
        where false
    {%- else -%}
        select stage, too_easy_above::float8, stalling_below::float8 from (values
        {%- for stage, band in bands.items() %}
            ({{ dbt.string_literal(stage) }}, {{ band['too_easy_above'] | float }},
             {{ band['stalling_below'] | float }}){{ "," if not loop.last }}
        {%- endfor %}
        ) as bands (stage, too_easy_above, stalling_below)
    {%- endif -%}
{%- endmacro %}

{#-
  The presentation order of a judgment from its attributes.position: 'swapped' for the values
  in the swapped_positions setting (EVALHOUSE_DBT_SWAPPED_POSITIONS, a comma list compared
  lower-case; default swapped, BA, reversed), 'first' for any other value, null without one.
-#}
{% macro presentation_order(position) -%}
    {%- set names = setting('swapped_positions', 'swapped,ba,reversed').split(',') -%}
    case
        when ({{ position }}) is null then null
        when lower({{ position }}) in (
            {%- for name in names -%}
                {{ dbt.string_literal(name | trim | lower) }}{{ ', ' if not loop.last }}
            {%- endfor -%}
        ) then 'swapped'
        else 'first'
    end
{%- endmacro %}

{#- Verdicts that mean "no preference" in a pairwise comparison (compared lower-case). -#}
{% macro tie_verdicts_list() -%}
    {%- set names = setting('tie_verdicts', 'tie').split(',') -%}
    (
    {%- for name in names -%}
        {{ dbt.string_literal(name | trim | lower) }}{{ ', ' if not loop.last }}
    {%- endfor -%}
    )
{%- endmacro %}
