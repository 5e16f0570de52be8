"""The simulator is one seam: only evals/simulated.py knows its model prefix, and only the traffic
scenario (a simulation by design) imports it; the config installs it as a LiteLLM custom
provider. The engine calls a simulated model like any other LiteLLM model, so a branch on the
prefix added anywhere else fails here.
"""

from __future__ import annotations

import re

from conftest import REPO_ROOT

from evals.config import Config

_IMPORTS_SIMULATOR = re.compile(
    r"^\s*(from evals\.simulated import|from evals import simulated"
    r"|import evals\.simulated)",
    re.MULTILINE,
)


def _modules() -> dict[str, str]:
    return {
        path.relative_to(REPO_ROOT).as_posix(): path.read_text()
        for folder in ("evals", "orchestration")
        for path in (REPO_ROOT / folder).rglob("*.py")
    }


def test_only_the_simulator_names_its_model_prefix() -> None:
    assert {name for name, text in _modules().items() if "evalhouse-sim" in text} == {
        "evals/simulated.py"
    }


def test_only_the_traffic_scenario_imports_the_simulator() -> None:
    assert {name for name, text in _modules().items() if _IMPORTS_SIMULATOR.search(text)} == {
        "evals/traffic.py"
    }
    assert Config().custom_providers == ["evals.simulated:register"]
