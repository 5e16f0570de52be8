{#-
  Pairwise judgments (issue 13; docs/pairwise-ratings.md). A cohort is one suite × suite version
  × source × judge model × judge prompt version: no pairwise figure pools judges, versions or
  sources (a CI gate's run never mixes with the nightly ones).
-#}
{% macro pairwise_cohort_columns() -%}
    {{- return(['suite', 'suite_version', 'source', 'judge_model', 'judge_prompt_version']) -}}
{%- endmacro %}

{#- The cohort columns as a select or group-by list, qualified by `relation` when given. -#}
{% macro pairwise_cohort_list(relation=none) -%}
    {%- for column in pairwise_cohort_columns() -%}
        {{ relation ~ '.' if relation }}{{ column }}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- Bootstrap replicates of the rating intervals (setting pairwise_bootstrap_replicates). -#}
{% macro pairwise_bootstrap_replicates() -%}
    {{- return(setting('pairwise_bootstrap_replicates', '200') | int) -}}
{%- endmacro %}

{#- Most fixed-point iterations of a Bradley–Terry fit (setting pairwise_rating_iterations). -#}
{% macro pairwise_rating_iterations() -%}
    {{- return(setting('pairwise_rating_iterations', '500') | int) -}}
{%- endmacro %}

{#-
  A Bradley–Terry fit has converged when a step changes no rating by this many rating points
  (setting pairwise_rating_tolerance).
-#}
{% macro pairwise_rating_tolerance() -%}
    {{- return(setting('pairwise_rating_tolerance', '1e-9') | float) -}}
{%- endmacro %}

{#- The same for a bootstrap replicate (setting pairwise_bootstrap_tolerance). -#}
{% macro pairwise_bootstrap_tolerance() -%}
    {{- return(setting('pairwise_bootstrap_tolerance', '1e-6') | float) -}}
{%- endmacro %}

{#-
  A Poisson(1) draw that is a pure function of `key` (text): the bootstrap weight of one item in
  one replicate. A uniform from the first 52 bits of md5(key), then the Poisson(1) inverse CDF
  (width_bucket counts the cumulative probabilities P(X ≤ k), k = 0…10, at or below it). The same
  item gets the same weight in every model that reads it, and in every build.
-#}
{% macro poisson_one_draw(key) -%}
    width_bucket(
        ('x' || substr(md5({{ key }}), 1, 13))::bit(52)::bigint / 4503599627370496.0::float8,
        array[
            0.36787944117144233, 0.7357588823428847, 0.9196986029286058, 0.9810118431238463,
            0.9963401531726563, 0.9994058151824183, 0.999916758850712, 0.9999897508033253,
            0.999998874797402, 0.9999998885745216, 0.9999999899522336
        ]::float8[]
    )
{%- endmacro %}

{#- Elo points per natural-log unit of Bradley–Terry strength: rating = 400 · log10(p). -#}
{% macro elo_per_ln() -%}
    {{ 400.0 / 2.302585092994046 }}
{%- endmacro %}

{#-
  A contestant's record over the int_pairwise_outcomes rows of its group: wins, ties, losses,
  comparisons (parsed judgments: every order and trial) and the items they cover.
-#}
{% macro pairwise_record() -%}
    count(*) filter (where outcome = 'win') as wins,
    count(*) filter (where outcome = 'tie') as ties,
    count(*) filter (where outcome = 'loss') as losses,
    count(*) as comparisons,
    count(distinct item_id) as items
{%- endmacro %}
