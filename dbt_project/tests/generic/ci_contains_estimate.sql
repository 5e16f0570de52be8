{#- A confidence interval contains its own estimate, and all three are null together. -#}
{% test ci_contains_estimate(model, estimate, low, high) %}
select {{ estimate }}, {{ low }}, {{ high }}
from {{ model }}
where ({{ estimate }} is null) <> ({{ low }} is null)
    or ({{ estimate }} is null) <> ({{ high }} is null)
    or not ({{ low }} <= {{ estimate }} and {{ estimate }} <= {{ high }})
{% endtest %}
