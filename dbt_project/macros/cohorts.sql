{#-
  The day a call belongs to in every daily series: the night a golden batch evaluates
  (`golden:<day>`, its partition) and the production day a re-grade audits (`sample:<day>`, the
  sampling partition) and the day of the graded call a rejudge re-grades (`rejudge:…:<day>`),
  not the day the backfill or re-grade happened to run; any other call's UTC day of started_at. When it actually ran stays in `ran_date` (fct_eval_runs).
-#}
{% macro evaluated_date(source='source', batch_id='batch_id', started_at='started_at') -%}
    case
        when ({{ source }} = 'golden' and {{ batch_id }} ~ '^golden:\d{4}-\d{2}-\d{2}$')
            or ({{ source }} = 'production_sample' and {{ batch_id }} ~ '^sample:\d{4}-\d{2}-\d{2}$')
            then substring({{ batch_id }} from 8)::date
        when {{ source }} = 'rejudge' and {{ batch_id }} ~ '^rejudge:.*:\d{4}-\d{2}-\d{2}$'
            then right({{ batch_id }}, 10)::date
        else ({{ started_at }} at time zone 'UTC')::date
    end
{%- endmacro %}
