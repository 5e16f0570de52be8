{#- Every non-null value lies in [min_value, max_value] (rates in [0, 1], counts ≥ 0). -#}
{% test between(model, column_name, min_value=0, max_value=1) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < {{ min_value }}
    {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
{% endtest %}
