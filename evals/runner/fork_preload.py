"""What a run's fork server imports before it forks any worker (evals.runner.processes).

Everything a worker needs is imported, and LiteLLM warmed up, here, once: each forked worker
starts with it, and two workers do not pay it at the same time on the same cores. A module,
not a list of names in evals.fork_server, so that what a worker needs is said in one place.

The warm-up must leave this process with one thread (evals.llm.warm_litellm_before_fork;
tests/test_runner_processes.py checks it): a worker forked while another thread held a lock
hangs on it.
"""

import importlib

# What workers unpickle and call (the golden run's and the regrades' callers) and open (the
# warehouse, their claims, the shared budget).
import evals.claims
import evals.limits
import evals.regrade
import evals.runner.driver
import evals.warehouse.embedded  # noqa: F401
from evals.config import Config
from evals.llm import warm_litellm_before_fork

for provider in Config().custom_providers:  # what a worker registers: the default providers
    importlib.import_module(provider.partition(":")[0])
warm_litellm_before_fork()
