"""Run a golden suite against a model: items x trials -> LLM calls -> one run-log row per call.

The contract, kept by construction (each module below keeps one part of it):
- idempotent (`units`): every logical call has an idempotency key; keys already settled are
  skipped, keys with only failed rows are called again, so re-running the same command after a
  crash or a `kill -9` makes exactly the missing calls;
- durable (`writer`): finished rows are COPYed in batches committed well under a second apart,
  so a crash loses only the calls in flight;
- shared (`claiming`): a unit is claimed before it is called, so concurrent runs of the same
  batch make each call once between them (evals.claims);
- honest (`calls`): provider failures and unparsable replies are rows, never a silent score;
- lean: no logging, no progress redraw (`display`) and no DB round trip per call.

`driver` puts them together (`run_suite`, given a `RunRequest`); `inputs` resolves suites and
judges, `summary` is what a run reports. This package re-exports what the CLI, the gate and
Dagster use.
"""

from evals.runner.display import render_summary
from evals.runner.driver import arun_suite, run_suite
from evals.runner.inputs import (
    RunnerError,
    RunRequest,
    code_version,
    default_judge,
    resolve_suite,
)
from evals.runner.summary import RunSummary

__all__ = [
    "RunRequest",
    "RunSummary",
    "RunnerError",
    "arun_suite",
    "code_version",
    "default_judge",
    "render_summary",
    "resolve_suite",
    "run_suite",
]
