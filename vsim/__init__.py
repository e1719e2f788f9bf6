"""vsim: a discrete-event simulator of virtualized datacenters.

>>> import vsim
>>> scenario = vsim.load_scenario("scenarios/quickstart.yaml", overrides=["hosts.0.count=20"])
>>> result = vsim.run(scenario, seed=1)
>>> result.tables["hosts"].head(), result.summary["energy_kwh"]
"""

from __future__ import annotations

from vsim._version import __version__
from vsim.errors import ScenarioError, VsimError
from vsim.runner import Result, run
from vsim.scenario import LoadedScenario, load_scenario, parse_scenario

__all__ = [
    "LoadedScenario",
    "Result",
    "ScenarioError",
    "VsimError",
    "__version__",
    "load_scenario",
    "parse_scenario",
    "run",
]
