"""Dynamic consolidation: overload detection, VM selection, power-aware placement, underload.

The heuristic of Beloglazov & Buyya (CCPE 2012), with vsim's semantics (what a real datacenter
does): at every consolidation tick

1. hosts whose utilisation the detector flags (THR, IQR, MAD, LR, LRR) give up VMs, chosen by the
   selection policy (MMT, MU, RS, MC), until the detector no longer flags them;
2. those VMs go where they add the least power (PABFD: power-aware best fit, largest demand
   first), never to an overloaded host, to one the VM would overload, or beyond its RAM, vCPU
   ratio or CPU capacity; when no host that is on can take one, a host that is off is switched
   on for it;
3. the least-used hosts are emptied when every one of their VMs finds such a place, so that they
   can be switched off.

The policy reads a :class:`~vsim.model.simulation.ConsolidationView` and returns migrations; it
changes nothing itself. Host scans are numpy operations over all hosts; only the VMs being
moved are looped over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vsim.model.datacenter import HostState, VmState
from vsim.model.interfaces import ConsolidationView, Migration
from vsim.policies.overload import OverloadDetector
from vsim.policies.selection import VmSelection

__all__ = ["DynamicConsolidation", "PowerAwarePlacer"]

_EPS = 1e-9


@dataclass
class PowerAwarePlacer:
    """Tentative state of one consolidation decision: where VMs go, host by host, as arrays."""

    view: ConsolidationView
    detector: OverloadDetector
    cpu_overcommit: float
    ram_overcommit: float
    demand: np.ndarray = field(init=False)  # Hz per host, with tentative moves
    history: np.ndarray = field(init=False)
    n_valid: np.ndarray = field(init=False)
    vcpus: np.ndarray = field(init=False)
    ram: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        v = self.view
        self.demand = v.host_demand_hz.copy()
        self.history = v.host_history.copy()
        self.n_valid = v.host_n_valid.copy()
        self.vcpus = v.placement.host_vcpus_used.copy()
        self.ram = v.placement.host_ram_used.copy()
        self.capacity = v.placement.host_capacity_hz
        self._roomiest: tuple[int, int] | None = None

    def util(self, hosts: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.demand[hosts] / self.capacity[hosts]

    def overloaded(self, hosts: np.ndarray) -> np.ndarray:
        return self.detector(self.util(hosts), self.history[hosts], self.n_valid[hosts])

    def _vm_share(self, vm: int, hosts: np.ndarray) -> np.ndarray:
        """The VM's history as a fraction of each host's capacity."""
        cap = self.view.placement.vm_capacity_hz[vm]
        return self.view.vm_history[vm][None, :] * (cap / self.capacity[hosts])[:, None]

    def move(self, vm: int, source: int, dest: int) -> None:
        """Tentatively take ``vm`` off ``source`` and put it on ``dest`` (-1: nowhere)."""
        p = self.view.placement
        self._roomiest = None
        if source >= 0:
            self.demand[source] -= self.view.vm_demand_hz[vm]
            self.history[source] -= self._vm_share(vm, np.array([source]))[0]
            self.vcpus[source] -= p.vm_vcpus[vm]
            self.ram[source] -= p.vm_ram_bytes[vm]
        if dest >= 0:
            one = np.array([dest])
            self.demand[dest] += self.view.vm_demand_hz[vm]
            self.history[dest] += self._vm_share(vm, one)[0]
            self.n_valid[dest] = max(self.n_valid[dest], self.view.vm_n_valid[vm])
            self.vcpus[dest] += p.vm_vcpus[vm]
            self.ram[dest] += p.vm_ram_bytes[vm]

    def save(self) -> tuple[np.ndarray, ...]:
        return tuple(a.copy() for a in (self.demand, self.history, self.n_valid, self.vcpus, self.ram))

    def restore(self, saved: tuple[np.ndarray, ...]) -> None:
        self.demand, self.history, self.n_valid, self.vcpus, self.ram = saved
        self._roomiest = None

    def might_fit(self, vms: np.ndarray, allowed: np.ndarray) -> bool:
        """A quick necessary condition: each VM alone fits the roomiest allowed host in RAM and
        CPU. Most underload candidates fail it, which spares a full search per VM."""
        if vms.size == 0:
            return True
        p = self.view.placement
        # Rooms only shrink and hosts only leave `allowed` within a tick, so the roomiest hosts
        # stay valid until one of them leaves or takes a VM.
        cached = self._roomiest
        if cached is None or not (allowed[cached[0]] and allowed[cached[1]]):
            if not allowed.any():
                return False
            ram_room = np.where(allowed, p.host_ram_bytes * self.ram_overcommit - self.ram, -np.inf)
            cpu_room = np.where(allowed, self.capacity - self.demand, -np.inf)
            cached = (int(np.argmax(ram_room)), int(np.argmax(cpu_room)))
            self._roomiest = cached
        ram_room = p.host_ram_bytes[cached[0]] * self.ram_overcommit - self.ram[cached[0]]
        cpu_room = self.capacity[cached[1]] - self.demand[cached[1]]
        return bool(p.vm_ram_bytes[vms].max() <= ram_room * (1 + _EPS)
                    and self.view.vm_demand_hz[vms].max() <= cpu_room * (1 + _EPS))

    def best_host(self, vm: int, allowed: np.ndarray) -> int:
        """PABFD's choice for ``vm`` among ``allowed`` hosts, or -1."""
        p, v = self.view.placement, self.view
        r = v.vm_demand_hz[vm]
        ok = allowed & (p.host_cores >= p.vm_vcpus[vm])
        ok &= self.vcpus + p.vm_vcpus[vm] <= p.host_cores * self.cpu_overcommit + _EPS
        ok &= self.ram + p.vm_ram_bytes[vm] <= p.host_ram_bytes * self.ram_overcommit * (1 + _EPS)
        ok &= self.demand + r <= self.capacity * (1 + _EPS)
        cand = np.flatnonzero(ok)
        if cand.size == 0:
            return -1
        after = (self.demand[cand] + r) / self.capacity[cand]
        power = v.power.watts(after, cand) - v.power.watts(self.util(cand), cand)
        # Cheapest first (ties: lowest host id); the detector, the costly test, runs only until
        # a host passes it. An empty host is never refused: the VM alone is what it would run.
        order = np.argsort(power, kind="stable")
        start, chunk = 0, 16
        while start < order.size:
            pick = order[start:start + chunk]
            hosts = cand[pick]
            busy = self.demand[hosts] > 0
            ok = ~busy
            if busy.any():
                b = hosts[busy]
                hist = self.history[b] + self._vm_share(vm, b)
                n = np.maximum(self.n_valid[b], v.vm_n_valid[vm])
                ok[busy] = ~self.detector(after[pick][busy], hist, n)
            if ok.any():
                return int(hosts[np.argmax(ok)])
            start, chunk = start + chunk, chunk * 4
        return -1


@dataclass
class DynamicConsolidation:
    """The consolidation policy: a detector, a selection policy and PABFD, plus underload."""

    detector: OverloadDetector
    selection: VmSelection
    cpu_overcommit: float = 1.0
    ram_overcommit: float = 1.0
    underload: bool = True

    def __call__(self, view: ConsolidationView) -> list[Migration]:
        p = view.placement
        placer = PowerAwarePlacer(view, self.detector, self.cpu_overcommit, self.ram_overcommit)
        on = p.host_state == HostState.ON
        movable = view.vm_state == VmState.RUNNING  # not already migrating
        occupied = on & (np.bincount(view.vm_host[movable], minlength=len(on)) > 0)
        hosts = np.flatnonzero(occupied)
        overloaded = np.zeros(len(on), dtype=bool)
        overloaded[hosts] = placer.overloaded(hosts)

        # 1. Overloaded hosts give up VMs until the detector is satisfied.
        leaving: list[tuple[int, int]] = []  # (vm, source)
        for h in np.flatnonzero(overloaded):
            candidates = list(np.flatnonzero(movable & (view.vm_host == h)))
            while candidates:
                c = np.array(candidates)
                pick = self.selection(p.vm_ram_bytes[c], view.vm_demand_hz[c] / p.vm_capacity_hz[c],
                                      view.vm_history[c], view.vm_n_valid[c])
                vm = int(c[pick])
                candidates.remove(vm)
                placer.move(vm, int(h), -1)
                leaving.append((vm, int(h)))
                if not placer.overloaded(np.array([h]))[0]:
                    break

        # 2. They go where they add the least power, largest demand first.
        decisions: list[Migration] = []
        targets = on & ~overloaded
        order = sorted(leaving, key=lambda item: -view.vm_demand_hz[item[0]])
        off = p.host_state == HostState.OFF
        for vm, source in order:
            dest = placer.best_host(vm, targets)
            if dest < 0 and off.any():
                # No host that is on can take it: switch one on (the simulation boots it first).
                dest = placer.best_host(vm, off)
                if dest >= 0:
                    off[dest] = False
                    targets[dest] = True
            if dest < 0:
                placer.move(vm, -1, source)  # found no place: it stays where it is
                continue
            placer.move(vm, -1, dest)
            decisions.append(Migration(vm, dest, "overload"))
        if not self.underload:
            return decisions

        # 3. Underload: empty the least-used hosts whose VMs all fit elsewhere.
        busy_targets = np.zeros(len(on), dtype=bool)
        for d in decisions:
            busy_targets[d.dest] = True
        sources_done = overloaded | busy_targets | ~occupied
        allowed = on & ~overloaded
        migrating = np.bincount(view.vm_host[view.vm_state == VmState.MIGRATING],
                                minlength=len(on)) > 0
        sources_done |= migrating
        # Only receiving VMs changes a host's utilisation, and receivers leave the candidates,
        # so the order of the candidates (least used first, then lowest id) is fixed up front.
        util = placer.util()
        candidates = np.flatnonzero(~sources_done)
        candidates = candidates[np.argsort(util[candidates], kind="stable")]
        on_host = np.flatnonzero(movable)
        on_host = on_host[np.argsort(view.vm_host[on_host], kind="stable")]
        bounds = np.searchsorted(view.vm_host[on_host], np.arange(len(on) + 1))
        for source in candidates:
            if sources_done[source]:
                continue  # it has received VMs in the meantime
            sources_done[source] = True
            allowed[source] = False
            vms = on_host[bounds[source]:bounds[source + 1]]
            vms = vms[np.argsort(-view.vm_demand_hz[vms], kind="stable")]
            if not placer.might_fit(vms, allowed):
                continue
            saved = placer.save()
            plan: list[Migration] = []
            for vm in vms:
                dest = placer.best_host(int(vm), allowed)
                if dest < 0:
                    break
                placer.move(int(vm), int(source), dest)
                plan.append(Migration(int(vm), dest, "underload"))
            if len(plan) < len(vms):
                placer.restore(saved)  # drop the partial plan, exactly
                continue
            decisions += plan
            for m in plan:
                sources_done[m.dest] = True  # a host that receives VMs is not emptied now
        return decisions
