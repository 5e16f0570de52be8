{% include '_batch_columns.sql' %}
where b.batch_id = %(batch_id)s
