{#-
  Give the read-only BI role (created by migration 0003) SELECT on a freshly built mart. A
  post-hook rather than dbt's `grants:` config, which on incremental models revokes any grant
  it was not told about (the web app's role among them). Skipped when the role does not exist
  (e.g. a warehouse migrated before 0003, or a managed Postgres where it was not created).
-#}
{% macro grant_select_to_bi() -%}
    {%- set role = setting('bi_role', 'evalhouse_bi') -%}
    do $grant$
    begin
        if exists (select from pg_roles where rolname = {{ dbt.string_literal(role) }}) then
            execute format('grant select on %s to %I', {{ dbt.string_literal(this) }}, {{ dbt.string_literal(role) }});
        end if;
    end
    $grant$
{%- endmacro %}

{#- Usage on the marts schema, in case dbt (re)created it after migration 0003 granted it. -#}
{% macro grant_marts_usage_to_bi() -%}
    {%- set role = setting('bi_role', 'evalhouse_bi') -%}
    do $grant$
    begin
        if exists (select from pg_roles where rolname = {{ dbt.string_literal(role) }})
            and exists (select from pg_namespace where nspname = 'marts') then
            execute format('grant usage on schema marts to %I', {{ dbt.string_literal(role) }});
        end if;
    end
    $grant$
{%- endmacro %}
