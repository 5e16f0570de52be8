"""Pairwise evaluation: a judge compares two responses to one question, in both orders.

The API (the CLI, the nightly Dagster asset and the release gate call it):

    run_pairwise(config: Config, request: PairwiseRequest, *, progress=False) -> PairwiseSummary
    arun_pairwise(config, request, *, progress=False, client: LLMClient | None = None)  # async

`PairwiseRequest(suite, judge, baseline=None, candidate=None, orders=2, trials=1, limit=None,
source="golden", batch_key=None, as_of=None, orchestrator_run_id=None, concurrency=None,
kind="run", started_by=None)`: `suite` is a pairwise suite or an answer suite (its questions);
`baseline` / `candidate` are `MODEL[@PROMPT]` and answer the items without stored responses.
`PairwiseSummary` holds this invocation's calls (`.calls`, a RunSummary) and the batch's
preferences: wins / ties / losses per contestant, pairs judged in both orders, consistency.
RunnerError (nothing called) for a bad request; ConfigError / GoldenSetError as the runner.

What it writes is the pairwise contract (docs/pairwise.md): generated responses are ordinary
`candidate` rows, one per item x side, reused on re-run; each judgment is one `judge` row with
the verdict in the item's labelling (a / b / tie), `attributes.position` (ab / ba), the
contestants, the response rows' ids and the slot the judge named. Modules: `request` (what to
compare), `units` (the plan and its keys), `calls` (render, call, parse, rows), `engine` (the
run), `summary` (what it reports).
"""

from evals.pairwise.engine import arun_pairwise, run_pairwise
from evals.pairwise.request import PairwiseRequest
from evals.pairwise.summary import PairwiseSummary, render_pairwise

__all__ = ["PairwiseRequest", "PairwiseSummary", "arun_pairwise", "render_pairwise", "run_pairwise"]
