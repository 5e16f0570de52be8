{#-
  No plotted series mixes prompt versions, models (judge models included) or golden-suite
  versions: every row sharing a series_key agrees on each version column (null is a value).
  A mart whose series_key forgot one of them fails here.
-#}
{% test one_version_per_series(model, version_columns, series_key='series_key') %}
select
    {{ series_key }}
    {%- for column in version_columns %},
    count(distinct coalesce({{ column }}::text, '∅')) as n_{{ column }}
    {%- endfor %}
from {{ model }}
group by {{ series_key }}
having
    {%- for column in version_columns %}
    count(distinct coalesce({{ column }}::text, '∅')) > 1{{ " or" if not loop.last }}
    {%- endfor %}
{% endtest %}
