"""What a run's fork server imports before it forks any worker (evals.runner.processes).

Everything a worker needs is imported here, once: each forked worker starts with it, and two
workers do not import it at the same time on the same cores. A module, not a list of names in
evals.fork_server, so that what a worker needs is said in one place.

LiteLLM is imported, not warmed up (evals.llm's warm-up call stays in each worker): a call
starts LiteLLM's logging thread pool, and a process forked while one of its threads held a lock
(inside pydantic-core, seen here) hangs on that lock at its first call, and its copy of the pool
has no threads to run what it is given.
"""

# What workers unpickle and call (the golden run's and the regrades' callers), open (the
# warehouse, their claims, the shared budget) and register (the default custom provider).
import litellm  # noqa: F401

import evals.claims
import evals.limits
import evals.llm
import evals.regrade
import evals.runner.driver
import evals.simulated
import evals.warehouse.embedded  # noqa: F401
