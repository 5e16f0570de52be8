{#-
  Statistics in SQL, written here because `dbt deps` has no network.

  Wilson score interval for a binomial proportion (95 % by default, z = Φ⁻¹(0.975)). The bounds
  are clamped to [0, 1] and to the estimate itself, so float rounding at p = 0 or 1 never puts
  the estimate outside its own interval. Null when n = 0.
-#}
{% macro wilson_low(successes, n) -%}
    {{ _wilson(successes, n, z95(), '-') }}
{%- endmacro %}

{% macro wilson_high(successes, n) -%}
    {{ _wilson(successes, n, z95(), '+') }}
{%- endmacro %}

{#- Φ⁻¹(0.975): the normal quantile of every 95 % interval. -#}
{% macro z95() -%}
    1.959963984540054
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

{#-
  One stratum's term of a stratified estimate of a proportion (the stratum's estimated total's
  variance): N² (1 − n/N) s² / n, with s² = p(1 − p) n / (n − 1), the sample variance of the
  0/1 outcome, and the finite population correction (1 − n/N). A stratum with a single sampled
  row has no sample variance: it contributes the largest a 0/1 outcome can have, s² = 1/4 (a
  conservative choice, documented in docs/bi.md). 0 when n = N (the stratum was observed whole);
  null when n = 0 (the stratum is not covered).
-#}
{% macro stratum_total_variance(successes, n, population) -%}
    case when ({{ n }}) > 0 then
        ({{ population }})::float8 ^ 2
        * (1.0 - ({{ n }})::float8 / ({{ population }}))
        * case
            when ({{ n }}) > 1 then
                ({{ successes }})::float8 / ({{ n }})
                * (1.0 - ({{ successes }})::float8 / ({{ n }}))
                * ({{ n }}) / (({{ n }}) - 1.0)
            else 0.25
        end
        / ({{ n }})
    end
{%- endmacro %}

{#-
  95 % interval of a rate estimated from a stratified sample: Wilson's interval at the
  effective sample size (Korn & Graubard's adjustment):
  n_eff = p(1 − p) / SE² × (z / t_df)², df the Satterthwaite degrees of freedom of the SE.
  Unlike p ± 1.96 SE it stays inside [0, 1] and keeps its coverage near p = 0 or 1, with few
  draws per stratum and when one stratum dominates (docs/bi.md has the measured coverage of
  both). When SE = 0 or p is 0 or 1, n_eff is undefined: the interval is the estimate itself
  when every stratum was observed whole (`exact`), else Wilson's at the sample size `n`.
-#}
{% macro design_wilson_low(estimate, se, df, n, exact) -%}
    {{ _design_wilson(estimate, se, df, n, exact, wilson_low) }}
{%- endmacro %}

{% macro design_wilson_high(estimate, se, df, n, exact) -%}
    {{ _design_wilson(estimate, se, df, n, exact, wilson_high) }}
{%- endmacro %}

{% macro _design_wilson(estimate, se, df, n, exact, bound) -%}
    {%- set n_eff -%}
        (case
            when ({{ se }}) > 0 and ({{ estimate }}) * (1.0 - ({{ estimate }})) > 0
                then ({{ estimate }}) * (1.0 - ({{ estimate }})) / ({{ se }}) ^ 2
                    * ({{ z95() }} / {{ t975(df) }}) ^ 2
            else ({{ n }})::float8
        end)
    {%- endset -%}
    case
        when ({{ estimate }}) is null then null
        when ({{ exact }}) then ({{ estimate }})
        else {{ bound('(' ~ estimate ~ ') * ' ~ n_eff, n_eff) }}
    end
{%- endmacro %}

{#-
  Student's t 0.975 quantile at `df` degrees of freedom, rounded down (conservative): exact
  values (scipy) below 30, the Cornish–Fisher series (Abramowitz & Stegun 26.7.5, error < 1e-6
  from 30 on) above. Postgres has no inverse t.
-#}
{% macro t975(df) -%}
    {%- set z = 1.959963984540054 -%}
    (case
        when ({{ df }}) is null then null
        when ({{ df }}) >= 30 then
            {{ z }}
            + {{ (z ** 3 + z) / 4 }} / ({{ df }})
            + {{ (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96 }} / ({{ df }})::float8 ^ 2
            + {{ (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384 }} / ({{ df }})::float8 ^ 3
            + {{ (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160 }}
                / ({{ df }})::float8 ^ 4
        else (array[
            12.706204736174694, 4.302652729749462, 3.1824463052837078, 2.7764451051977934,
            2.5705818356363146, 2.4469118511449786, 2.364624251592784, 2.306004135204166,
            2.262157162798205, 2.228138851986274, 2.200985160091639, 2.1788128296672284,
            2.1603686564627913, 2.144786687917804, 2.131449545559776, 2.1199052992212546,
            2.1098155778333156, 2.1009220402410382, 2.0930240544083087, 2.085963447265864,
            2.0796138447276795, 2.0738730679040254, 2.0686576104190486, 2.0638985616280245,
            2.0595385527532972, 2.0555294386428735, 2.0518305164802846, 2.0484071417952454,
            2.045229642132703
        ]::float8[])[greatest(1, floor({{ df }}))::int]
    end)
{%- endmacro %}

{#-
  Satterthwaite degrees of freedom of a stratified variance Σ v_h, v_h a stratum's variance
  term estimated from n_h draws: (Σ v_h)² / Σ v_h² / (n_h − 1) (a one-draw stratum counts 1).
-#}
{% macro satterthwaite_df(variance_term, n) -%}
    (sum({{ variance_term }}) ^ 2
        / nullif(sum(({{ variance_term }}) ^ 2 / greatest(({{ n }}) - 1, 1)), 0))
{%- endmacro %}

{#-
  One judged item: the same week, source, batch, parent run, suite version, item, stage, role,
  model and prompt version. Its repeated judgments (trials, presentation orders) share the key.
-#}
{% macro judged_item_key(relation) -%}
    {{ series_key([
        relation ~ '.week_start', relation ~ '.source', relation ~ '.batch_id',
        relation ~ '.parent_run_id', relation ~ '.suite', relation ~ '.suite_version',
        relation ~ '.item_id', relation ~ '.stage', relation ~ '.role', relation ~ '.model',
        relation ~ '.prompt_version'
    ]) }}
{%- endmacro %}

{#-
  A judgment's reference labels, from the CTEs `consensus` (int_human_consensus) and
  `golden_items` (stg_raw__golden_items) left-joined beside `rows`: its expected verdict (the
  row's own, else its golden item's), whether humans reviewed it, and their consensus.
-#}
{% macro reference_label_columns(rows) -%}
    coalesce({{ rows }}.expected_verdict, golden_items.expected_verdict) as expected_verdict,
    consensus.run_id is not null as is_reviewed,
    consensus.has_consensus,
    consensus.consensus_verdict,
    consensus.reviews_ingested_through
{%- endmacro %}

{#-
  An item's human label, an aggregate over its judgments (int_human_consensus columns): the
  strict-majority verdict of each reviewed judgment's reviewers, when every reviewed judgment
  has one and they all name the same verdict; null when the reviewers split anywhere (a tie, a
  plurality below half, or two reviewed judgments with different majorities) or nobody
  reviewed. Humans label the content, so the row a reviewer saw does not matter.
-#}
{% macro item_human_majority(is_reviewed, has_consensus, consensus_verdict, over='') -%}
    {#- over: '' as an aggregate, or a window clause ('over same_item') as a window function. -#}
    case
        when count(*) filter (where {{ is_reviewed }} and not {{ has_consensus }}) {{ over }} = 0
            and min({{ consensus_verdict }}) {{ over }} = max({{ consensus_verdict }}) {{ over }}
            then max({{ consensus_verdict }}) {{ over }}
    end
{%- endmacro %}

{#-
  Cluster-robust (ratio-estimator / sandwich) standard error of a ratio Σ a_i / Σ m_i over G
  clusters (items): sqrt(G/(G − 1) Σ_i residual_i²) / total, an aggregate over one row per
  cluster whose residual is a_i − p m_i (or a linearisation's per-cluster sum). Null for G = 1.
-#}
{% macro cluster_robust_se(residual, n_clusters, total) -%}
    sqrt(
        sum(({{ residual }}) ^ 2)
        * ({{ n_clusters }}) / nullif(({{ n_clusters }}) - 1.0, 0)
    ) / ({{ total }})
{%- endmacro %}
