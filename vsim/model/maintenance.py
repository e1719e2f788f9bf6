"""Maintenance windows: drain hosts by live migration, switch them off, bring them back.

A drain asks the placement policy for a destination for each VM on the hosts (other hosts only,
switching off hosts on if allowed), reserves the room, and queues the migrations under the drain's
own concurrency limit besides the fabric's per-host limits. When the last VM has left, the hosts go
off. Its record keeps how long that took beside what RAM / NIC bandwidth, N at a time, predicts.
"""

from __future__ import annotations

import heapq
import math
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import HostState, VmState
from vsim.model.interfaces import EvacuationRecord, Maintenance

if TYPE_CHECKING:
    from vsim.model.simulation import Simulation

__all__ = ["MaintenanceWindows", "list_schedule_makespan"]


def list_schedule_makespan(durations: np.ndarray, slots: float) -> float:
    """When the last of ``durations`` ends, started in order on ``slots`` parallel slots."""
    if durations.size == 0:
        return 0.0
    k = int(min(slots, durations.size))
    ends = [0.0] * k
    for d in durations.tolist():
        heapq.heappush(ends, heapq.heappop(ends) + d)
    return max(ends)


class MaintenanceWindows:
    """The maintenance drains of one simulation; group ``k`` of the fabric is window ``k``."""

    def __init__(self, sim: Simulation, windows: list[Maintenance]) -> None:
        self.sim = sim
        self.windows = windows
        self.records: list[EvacuationRecord | None] = [None] * len(windows)
        self.over = [False] * len(windows)
        self.host_off = np.zeros(len(sim.dc.hosts), dtype=bool)  # no new VMs on these
        for k, w in enumerate(windows):
            sim.fabric.group_limit[k] = w.max_concurrent

    def schedule(self) -> None:
        eng = self.sim.engine
        for k, w in enumerate(self.windows):
            eng.at(w.start_s, partial(self._begin, k))
            if math.isfinite(w.end_s):
                eng.at(w.end_s, partial(self._end, k))

    def _vms_on(self, k: int) -> np.ndarray:
        v = self.sim.dc.vms
        on = np.isin(v.host, self.windows[k].hosts)
        return np.flatnonzero(on & ((v.state == VmState.RUNNING) | (v.state == VmState.STARTING)
                                    | (v.state == VmState.MIGRATING)))

    def _begin(self, k: int) -> None:
        sim, w = self.sim, self.windows[k]
        self.host_off[w.hosts] = True
        vms = self._vms_on(k)
        h, v = sim.dc.hosts, sim.dc.vms
        nic = h.nic_bytes_s
        assert nic is not None  # Hosts fills in the default
        # The peers' estimate: each VM's RAM over its host's NIC, N at a time, nothing shared.
        predicted = list_schedule_makespan(v.ram_bytes[vms] / nic[v.host[vms]], w.max_concurrent)
        self.records[k] = EvacuationRecord(w.name, sim.engine.now, int(vms.size),
                                           predicted_ram_over_bandwidth_s=predicted)
        sim.obs.event(sim.engine.now, "maintenance_start", w.name, f"{vms.size} VMs to move")
        self.evacuate(k)

    def note(self, k: int, downtime_s: float, nbytes: float) -> None:
        """A migration of drain ``k`` ended."""
        rec = self.records[k]
        if rec is not None:
            rec.migrations += 1
            rec.worst_downtime_s = max(rec.worst_downtime_s, downtime_s)
            rec.bytes += nbytes
        self.evacuate(k)

    def evacuate(self, k: int) -> None:
        """Find destinations for the VMs still on the drained hosts; finish when none is left."""
        sim, w, rec = self.sim, self.windows[k], self.records[k]
        if rec is None or not math.isnan(rec.end_s) or self.over[k]:
            return
        v, h = sim.dc.vms, sim.dc.hosts
        vms = self._vms_on(k)
        todo = vms[v.state[vms] == VmState.RUNNING]
        if todo.size:
            chosen = sim.choose_hosts(todo, ~self.host_off & sim.normal_hosts,
                                      "room for a maintenance drain")
            for vm, dest in zip(todo[chosen >= 0].tolist(), chosen[chosen >= 0].tolist(), strict=True):
                sim.migrate(vm, dest, "maintenance", group=k)
        vms = self._vms_on(k)
        in_flight = np.count_nonzero(v.state[vms] == VmState.MIGRATING)
        if vms.size == 0:
            rec.end_s = sim.engine.now
            for host in w.hosts.tolist():
                if h.state[host] != HostState.OFF:
                    h.state[host] = HostState.OFF
                    sim.obs.event(sim.engine.now, "host_off", h.name[host], "maintenance")
            sim.obs.event(sim.engine.now, "maintenance_drained", w.name,
                          f"{rec.vms} VMs in {rec.end_s - rec.start_s:.1f} s")
            sim.changed()
        elif in_flight == 0 and not (h.state == HostState.BOOTING).any():
            rec.unplaced = int(vms.size)
            sim.obs.event(sim.engine.now, "maintenance_stuck", w.name,
                          f"{vms.size} VMs have nowhere to go")

    def _end(self, k: int) -> None:
        sim, w = self.sim, self.windows[k]
        self.over[k] = True  # VMs still on their way out finish moving; no more leave
        self.host_off[w.hosts] = False
        for host in w.hosts.tolist():
            if sim.dc.hosts.state[host] == HostState.OFF and sim.dc.hosts.vm_count[host] == 0:
                sim.power_on(host, "maintenance over")
        sim.obs.event(sim.engine.now, "maintenance_end", w.name, "")

    def finished(self) -> list[EvacuationRecord]:
        return [r for r in self.records if r is not None]
