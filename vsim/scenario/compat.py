"""Building CloudSim 3.0.3's model (``semantics: cloudsim``) from a scenario.

The compatibility model takes what CloudSim's power examples take: hosts with cores of some MIPS,
a SPECpower-style table of 11 points, RAM and bandwidth; one-vCPU VMs with a MIPS rating, RAM and
bandwidth, each following one PlanetLab trace. What it cannot express is refused with the field
to change, rather than silently dropped.
"""

from __future__ import annotations

import numpy as np

from vsim.errors import Problem, ScenarioError
from vsim.model.cloudsim_compat import CompatSpec
from vsim.policies.overload import make_overload_detector
from vsim.policies.selection import make_vm_selection
from vsim.rng import RandomStreams
from vsim.scenario.build import RunSetup, build
from vsim.scenario.loader import LoadedScenario

__all__ = ["build_cloudsim"]

# CloudSim's examples: hosts of 1 Gbit/s and VMs of 100 Mbit/s in its own bandwidth units.
_BW_UNITS_PER_BYTE_S = 1e6 / 125e6


def _eleven_points(curve: np.ndarray, n: int) -> np.ndarray:
    """A host's power curve at 0 %, 10 %, ..., 100 %."""
    x = np.linspace(0.0, 1.0, n)
    return np.interp(np.linspace(0.0, 1.0, 11), x, curve[:n])


def build_cloudsim(loaded: LoadedScenario, seed: int) -> tuple[CompatSpec, RunSetup]:
    """CloudSim's model of the scenario, and the vsim setup it was read from (for the tables)."""
    spec = loaded.spec
    problems: list[Problem] = []

    def fail(loc: tuple[str | int, ...], message: str, hint: str) -> None:
        problems.append(Problem(message, ".".join(map(str, loc)), loaded.line_of(loc), hint))

    setup = build(loaded, seed)  # the same hosts, VMs and traces as the vsim semantics
    dc = setup.dc
    h, v = dc.hosts, dc.vms
    for g, group in enumerate(spec.vms):
        if group.vcpus != 1:
            fail(("vms", g, "vcpus"), "CloudSim's power examples have one-vCPU VMs",
                 "use vcpus: 1 with semantics: cloudsim")
        w = spec.workloads.get(group.workload or "")
        if w is None or w.kind != "planetlab":
            fail(("vms", g, "workload"), "semantics: cloudsim replays PlanetLab traces only",
                 "give the group a planetlab workload, or use semantics: vsim")
    if spec.jobs:
        fail(("jobs",), "semantics: cloudsim has no finite jobs", "remove jobs: or use semantics: vsim")
    for key in ("failures", "ha", "dr"):
        if getattr(spec, key):
            fail((key,), "semantics: cloudsim has no host failures, HA or DR",
                 f"remove {key}: or use semantics: vsim")
    if any(src.by_sample is None for src in setup.sources):
        fail(("workloads",), "semantics: cloudsim replays one day of traces, not tiled days",
             "remove tile_days, or use semantics: vsim")
    steps = {s.step_s for s in setup.sources}
    if steps - {300.0}:
        fail(("workloads",), "CloudSim's PlanetLab model samples every 300 s", "use planetlab traces")
    if problems:
        raise ScenarioError(problems, file=loaded.file)

    percent = np.zeros((len(v), 288))
    for src in setup.sources:
        assert src.by_sample is not None
        percent[src.vms] = np.rint(src.by_sample.T * 100)
    c = spec.consolidation
    if c is not None:
        mode = "migration"
        detector = make_overload_detector(c.overload.detector, **c.overload.params())
        selection = make_vm_selection(c.selection, RandomStreams(seed).generator("vm-selection"))
    else:
        # Without consolidation: Dvfs (idle hosts draw nothing) or NPA (every host at full power
        # all the time) when hosts never switch off.
        mode = "npa" if spec.power_management.idle_off_after == float("inf") else "dvfs"
        detector, selection = None, None
    table = np.array([_eleven_points(h.power.points[i], int(h.power.n_points[i]))
                      for i in range(len(h))])
    return CompatSpec(
        pe_mips=h.core_hz / 1e6, pes=h.cores, ram_mb=h.ram_bytes / 1e6,
        bw=h.nic_bytes_s * _BW_UNITS_PER_BYTE_S, power_table=table,
        vm_mips=v.vcpu_hz / 1e6, vm_ram_mb=v.ram_bytes / 1e6,
        vm_bw=np.full(len(v), 125e5 * _BW_UNITS_PER_BYTE_S), trace=percent.astype(np.int64),
        mode=mode, detector=detector, selection=selection, duration=spec.duration,
    ), setup
