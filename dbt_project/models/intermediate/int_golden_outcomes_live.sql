{#-
  Golden correctness, defined once: every golden-accuracy figure (leaderboard, trend, regression
  check, gate, run summary, Dagster metadata, demo) counts these rows.

  A graded call is the candidate (answer suite) or grader (grader suite) call of one batch ×
  model × prompt version × suite version × item × trial; its newest settled row counts. Its
  outcome:
    parse_error  the call's reply did not parse, or the judge's reply on it did not;
    correct / incorrect
                 its own verdict (grader, or a deterministic scorer) vs the expected verdict;
                 else the verdict of the judge row that graded it (parent_run_id = the call),
                 passing or not in the suite's vocabulary (`passed`); the first settled
                 judgment counts;
    unjudged     an answer with no settled judgment yet (its judge call failed or is pending).
  is_correct is true for `correct` only: parse errors and unjudged answers count as not correct
  and are counted apart as well.

  A view over the run log (not the marts), so the run summary, the gate and Dagster's golden-run
  metadata read it the moment a batch is written, before dbt runs. The marts read
  int_golden_outcomes, this view's rows materialised batch by batch: the same rows, without
  re-running the lateral join over every golden call ever made on each build. The run log is
  referenced twice rather than through a shared CTE: a CTE used twice is materialised, which
  would stop Postgres from pushing a batch or suite filter down to raw.eval_runs' indexes (a
  filter on a DISTINCT ON column reaches the run log: eval_runs_batch_idx).
-#}
with graded as (
    select distinct on (batch_id, model, prompt_version, suite, suite_version, item_id, trial)
        run_id,
        batch_id,
        source,
        model,
        prompt_name,
        prompt_version,
        role,
        suite,
        suite_version,
        item_id,
        stage,
        category,
        trial,
        status,
        verdict,
        passed,
        expected_verdict,
        started_at
    from {{ ref('stg_raw__eval_runs') }}
    where source in ('golden', 'ci')
        and role in ('candidate', 'grader')
        and status in ('ok', 'parse_error')
        and suite is not null
        and item_id is not null
        and expected_verdict is not null
    order by
        batch_id asc,
        model asc,
        prompt_version asc,
        suite asc,
        suite_version asc,
        item_id asc,
        trial asc,
        started_at desc, run_id asc
),

judged as (
    select
        graded.*,
        judgment.run_id as judge_run_id,
        judgment.model as judge_model,
        judgment.prompt_version as judge_prompt_version,
        judgment.status as judge_status,
        judgment.verdict as judge_verdict,
        judgment.passed as judge_passed
    from graded
    left join lateral (
        select
            judge.run_id,
            judge.model,
            judge.prompt_version,
            judge.status,
            judge.verdict,
            judge.passed
        from {{ ref('stg_raw__eval_runs') }} as judge
        where judge.parent_run_id = graded.run_id
            and judge.role = 'judge'
            and judge.status in ('ok', 'parse_error')
        order by judge.started_at, judge.run_id
        limit 1
    ) as judgment on graded.verdict is null and graded.status = 'ok'
),

outcomes as (
    select
        *,
        case
            when status = 'parse_error' then 'parse_error'
            when verdict is not null
                then
                    case when verdict = expected_verdict then 'correct' else 'incorrect' end
            when judge_status = 'parse_error' then 'parse_error'
            when judge_status = 'ok' and judge_passed is not null
                then
                    case when judge_passed then 'correct' else 'incorrect' end
            else 'unjudged'
        end as outcome
    from judged
),

final as (
    select
        run_id,
        batch_id,
        source,
        {{ evaluated_date() }} as run_date,
        date_trunc('week', {{ evaluated_date() }})::date as week_start,
        model,
        prompt_name,
        prompt_version,
        role,
        suite,
        suite_version,
        item_id,
        stage,
        category,
        trial,
        started_at,
        status,
        verdict,
        expected_verdict,
        judge_run_id,
        judge_model,
        judge_prompt_version,
        judge_verdict,
        outcome,
        outcome = 'correct' as is_correct
    from outcomes
)

select * from final
