{#- One cohort (docs/bi.md, "Cohorts"): a null filter means any; role 'graded' is every call but
    the judges', 'judge' only theirs, 'all' both. -#}
    and (%(suite)s::text is null or t.suite = %(suite)s)
    and (%(source)s::text is null or t.source = %(source)s)
    and (%(model)s::text is null or t.model = %(model)s)
    and (%(prompt_version)s::text is null or t.prompt_version = %(prompt_version)s)
    and case %(role)s::text when 'judge' then t.role = 'judge' when 'graded' then t.role <> 'judge'
        else true end
