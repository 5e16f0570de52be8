    and (%(suite)s::text is null or t.suite = %(suite)s)
    and (%(source)s::text is null or t.source = %(source)s)
