{#-
  Statistics in SQL, written here because `dbt deps` has no network.

  Wilson score interval for a binomial proportion (95 % by default, z = Φ⁻¹(0.975)). The bounds
  are clamped to [0, 1] and to the estimate itself, so float rounding at p = 0 or 1 never puts
  the estimate outside its own interval. Null when n = 0.
-#}
{% macro wilson_low(successes, n, z=1.959963984540054) -%}
    {{ _wilson(successes, n, z, '-') }}
{%- endmacro %}

{% macro wilson_high(successes, n, z=1.959963984540054) -%}
    {{ _wilson(successes, n, z, '+') }}
{%- endmacro %}

{% macro _wilson(successes, n, z, sign) -%}
    case when ({{ n }}) > 0 then
        {{ 'greatest(0.0, least' if sign == '-' else 'least(1.0, greatest' }}(
            ({{ successes }})::float8 / ({{ n }}),
            (
                ({{ successes }})::float8 / ({{ n }})
                + {{ z }} ^ 2 / (2.0 * ({{ n }}))
                {{ sign }} {{ z }} * sqrt(
                    ({{ successes }})::float8 / ({{ n }})
                    * (1.0 - ({{ successes }})::float8 / ({{ n }})) / ({{ n }})
                    + {{ z }} ^ 2 / (4.0 * ({{ n }})::float8 ^ 2)
                )
            ) / (1.0 + {{ z }} ^ 2 / ({{ n }}))
        ))
    end
{%- endmacro %}

{#- A share that is null (not 0) when its denominator is 0. -#}
{% macro safe_ratio(numerator, denominator) -%}
    (({{ numerator }})::float8 / nullif(({{ denominator }}), 0))
{%- endmacro %}

{#- Cohen's kappa from observed and chance agreement; undefined (null) when chance agreement is 1. -#}
{% macro cohens_kappa(observed, expected) -%}
    ((({{ observed }}) - ({{ expected }})) / nullif(1.0 - ({{ expected }}), 0))
{%- endmacro %}

{#-
  The identity of one plotted series: a hash of its dimension columns (nulls included). Every
  mart that draws lines carries it, and the one_version_per_series test checks that no series
  ever spans two prompt versions, models or golden-suite versions.
-#}
{% macro series_key(columns) -%}
    md5(concat_ws('|'
    {%- for column in columns -%}
        , coalesce(({{ column }})::text, '∅')
    {%- endfor -%}
    ))
{%- endmacro %}

{#-
  The dimensions of a stage series (stage_daily, issue distribution, judge consistency, verdict
  agreement): one list, so those marts' series keys cannot drift apart.
-#}
{% macro stage_series_columns() -%}
    {{- return(['stage', 'source', 'role', 'model', 'prompt_version', 'suite', 'suite_version']) -}}
{%- endmacro %}

{#- Those dimensions as a select or group-by list, qualified by `relation` when given. -#}
{% macro stage_series_list(relation=none) -%}
    {%- for column in stage_series_columns() -%}
        {{ relation ~ '.' if relation }}{{ column }}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
