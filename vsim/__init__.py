"""vsim: a discrete-event simulator of virtualized datacenters.

>>> import vsim
>>> scenario = vsim.load_scenario("scenarios/quickstart.yaml", overrides=["hosts.0.count=20"])
>>> result = vsim.run(scenario, seed=1)
>>> result.tables["hosts"].head(), result.summary["energy_kwh"]
"""

from __future__ import annotations

from importlib import metadata

from vsim.errors import ScenarioError, VsimError
from vsim.runner import Result, run
from vsim.scenario import LoadedScenario, load_scenario, parse_scenario

try:
    __version__ = metadata.version("vsim")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

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
