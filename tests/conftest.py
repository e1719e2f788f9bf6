"""Helpers shared by the test suite: small scenarios written inline, run through the real API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import vsim
from vsim.metrics import Recorder
from vsim.scenario import build, scenario_from_data

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"

GHZ = 1e9
MHZ = 1e6
GIB = 1024.0**3


def scenario(text: str, **kwargs: Any) -> vsim.LoadedScenario:
    """Parse an inline YAML scenario (indentation of the triple-quoted block removed)."""
    return vsim.parse_scenario(textwrap.dedent(text), **kwargs)


def scenario_from(data: dict[str, Any]) -> vsim.LoadedScenario:
    """A scenario given as Python data, written to YAML text and parsed like a file."""
    return scenario_from_data(data)


def run_text(text: str, seed: int = 0, **kwargs: Any) -> vsim.Result:
    """Run an inline YAML scenario."""
    return vsim.run(scenario(text, **kwargs), seed=seed)


def datacenter(text: str):
    """The :class:`~vsim.model.datacenter.Datacenter` an inline scenario builds (nothing placed)."""
    return build(scenario(text)).dc


def vsim_cli(*args: str, cwd: Path | str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real command line (``python -m vsim.cli ...``) in ``cwd``, on this checkout's vsim
    whether or not it is installed."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "vsim.cli", *args], cwd=cwd, env={**os.environ, "PYTHONPATH": path},
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def events_of(result: vsim.Result, kind: str) -> list[tuple[float, str, str]]:
    """``(time_s, subject, detail)`` of the events of one kind, in the order they happened."""
    ev = result.tables["events"]
    ev = ev[ev["kind"] == kind]
    return list(zip(ev["time_s"].astype(float), ev["subject"], ev["detail"], strict=True))


# A small run with every availability feature: a host failure restarted by HA under slot
# admission control, then a site loss recovered by a DR plan in two groups; two replications.
AVAILABILITY_TINY = """\
name: avail-tiny
replications: 2
duration: 3 h
period: 10 min
seed: 2
sites:
  - {name: prod, uplink: 1 Gbit/s, storage: 1 GB/s}
  - {name: dr, uplink: 1 Gbit/s, storage: 500 MB/s}
hosts:
  - {name: p, count: 3, site: prod, cores: 16, core_speed: 2 GHz, ram: 128 GiB}
  - {name: d, count: 2, site: dr, cores: 16, core_speed: 2 GHz, ram: 128 GiB}
vms:
  - {name: db, count: 2, vcpus: 4, ram: 16 GiB, priority: 2, hosts: p, workload: w,
     write_rate: 4 MiB/s}
  - {name: web, count: 4, vcpus: 2, ram: 8 GiB, hosts: p, workload: w, write_rate: 1 MiB/s}
workloads:
  w: {kind: constant, level: 30%}
failures:
  - {name: p0-dies, hosts: [p-0], at: 30 min, repair: 30 min}
  - {name: site-loss, site: prod, at: 90 min, repair: never}
ha:
  admission: {policy: slots, host_failures: 1}
dr:
  - name: prod-to-dr
    site: prod
    to: dr
    replication: {mode: async, rpo: 10 min}
    detection: 5 min
    groups:
      - {name: databases, vms: [db]}
      - {name: front, vms: [web]}
"""


class CheckedRecorder(Recorder):
    """A run's recorder that calls ``check()`` (a subclass's invariants) before it records each
    event and period: what the tests assert holds at every instant of the run."""

    def check(self) -> None:
        raise NotImplementedError

    def event(self, *args: Any) -> None:
        self.check()
        super().event(*args)

    def events(self, *args: Any) -> None:
        self.check()
        super().events(*args)

    def period(self, s: Any) -> None:
        self.check()
        super().period(s)
