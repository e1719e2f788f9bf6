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
# How close to the limit LR's linear screen may land and still decide: its rounding differs from
# the exact fit's by ~1e-15 for utilisation histories of order 1, so 1e-9 leaves a wide berth.
SCREEN_MARGIN = 1e-9
_OK, _OVER, _UNSURE = 0, 1, 2


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
        p = v.placement
        self.demand = v.host_demand_hz.copy()
        self.history = v.host_history.copy()
        self.n_valid = v.host_n_valid.copy()
        self.vcpus = p.host_vcpus_used.copy()
        self.ram = p.host_ram_used.copy()
        self.capacity = p.host_capacity_hz
        self._roomiest: tuple[int, int] | None = None
        self._lr_room: dict[tuple[float, int], tuple[float, int]] = {}  # see might_pass_screen
        self._saved: tuple = (None, {})  # both caches as they were when a plan began
        self._log: list[tuple] | None = None  # undo records while a plan is tentative
        # Per-host limits of best_host's filters, fixed within a tick.
        self.vcpu_limit = p.host_cores * self.cpu_overcommit + _EPS
        self.ram_limit = p.host_ram_bytes * self.ram_overcommit * (1 + _EPS)
        self.cpu_limit = self.capacity * (1 + _EPS)
        self.power_now = v.power.watts(self.util())  # elementwise: the same as per host
        # LR's prediction is linear in the history, so a host's prediction with a VM added is
        # its own plus the VM's scaled share, up to rounding: best_host screens all candidates
        # with that and runs the detector only where the screen lands within SCREEN_MARGIN of
        # the limit. THR reads only the utilisation and is decided for all candidates at once.
        self.lr_weights: np.ndarray | None = None
        weights = getattr(self.detector, "linear_weights", None)
        if weights is not None and self.history.shape[1] >= len(weights()):
            self.lr_weights = np.asarray(weights())
            k = len(self.lr_weights)
            self.lin = self.history[:, -k:] @ self.lr_weights
            self.vm_lin = v.vm_history[:, -k:] @ self.lr_weights

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
        self._lr_room = {}
        for h in (source, dest):
            if h >= 0 and self._log is not None:
                self._log.append((h, self.demand[h], self.history[h].copy(), self.n_valid[h],
                                  self.vcpus[h], self.ram[h]))
        if source >= 0:
            self.demand[source] -= self.view.vm_demand_hz[vm]
            self.history[source] -= self._vm_share(vm, np.array([source]))[0]
            self.vcpus[source] -= p.vm_vcpus[vm]
            self.ram[source] -= p.vm_ram_bytes[vm]
            self._changed(source)
        if dest >= 0:
            one = np.array([dest])
            self.demand[dest] += self.view.vm_demand_hz[vm]
            self.history[dest] += self._vm_share(vm, one)[0]
            self.n_valid[dest] = max(self.n_valid[dest], self.view.vm_n_valid[vm])
            self.vcpus[dest] += p.vm_vcpus[vm]
            self.ram[dest] += p.vm_ram_bytes[vm]
            self._changed(dest)

    def _changed(self, h: int) -> None:
        """Refresh the per-host quantities derived from the tentative state."""
        self.power_now[h] = self.view.power.watts(self.util(np.array([h])), np.array([h]))[0]
        if self.lr_weights is not None:
            self.lin[h] = self.history[h, -len(self.lr_weights):] @ self.lr_weights

    def tentative(self) -> None:
        """Start recording moves so that ``rollback`` can undo them exactly."""
        self._log = []
        self._saved = (self._roomiest, self._lr_room)

    def commit(self) -> None:
        self._log = None

    def rollback(self) -> None:
        """Undo the moves since ``tentative``, restoring the very same values."""
        assert self._log is not None
        for h, demand, history, n_valid, vcpus, ram in reversed(self._log):
            self.demand[h], self.history[h], self.n_valid[h] = demand, history, n_valid
            self.vcpus[h], self.ram[h] = vcpus, ram
            self._changed(h)
        self._log = None
        # The very same values are back, so are the caches of before the plan.
        self._roomiest, self._lr_room = self._saved

    def room(self, allowed: np.ndarray) -> tuple[float, float]:
        """The most RAM and CPU room (bytes, Hz) of any allowed host (-inf if none)."""
        if not allowed.any():
            return -np.inf, -np.inf
        p = self.view.placement
        ram_room = np.where(allowed, p.host_ram_bytes * self.ram_overcommit - self.ram, -np.inf)
        cpu_room = np.where(allowed, self.capacity - self.demand, -np.inf)
        return float(ram_room.max()), float(cpu_room.max())

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

    def might_pass_screen(self, vm: int, allowed: np.ndarray) -> bool:
        """A quick necessary condition for ``best_host`` to find ``vm`` a host under LR: some
        allowed host with room for its RAM and vCPUs could pass the screen. The screen refuses
        host h when lin[h] + c / C[h] x vm_lin > 1 + margin (c the VM's capacity, C[h] the
        host's), that is when c x vm_lin exceeds the host's room (1 + margin - lin[h]) x C[h]
        (taken with twice the margin, which rounding cannot cross); hosts that the screen does not judge (empty ones, too short a history) have unlimited
        room. Under underload most sources fail here: their first VM fits nowhere, since the
        hosts with room under LR have no RAM left."""
        if self.lr_weights is None:
            return True
        p = self.view.placement
        key = (float(p.vm_ram_bytes[vm]), int(p.vm_vcpus[vm]))
        cached = self._lr_room.get(key)
        # Rooms change only with moves (which drop the cache) and hosts only leave `allowed`, so
        # a cached maximum stays an upper bound; it is taken again once its host has left.
        if cached is None or not allowed[cached[1]]:
            fits = allowed & (p.host_cores >= key[1]) & (self.vcpus + key[1] <= self.vcpu_limit)
            fits &= self.ram + key[0] <= self.ram_limit
            if not fits.any():
                return False
            room = (1.0 + 2 * SCREEN_MARGIN - self.lin) * self.capacity
            room[(self.demand <= 0) | (self.n_valid < len(self.lr_weights))] = np.inf
            room = np.where(fits, room, -np.inf)
            h = int(np.argmax(room))
            cached = self._lr_room[key] = (float(room[h]), h)
        need = p.vm_capacity_hz[vm] * self.vm_lin[vm]
        return bool(need < cached[0])

    def best_host(self, vm: int, allowed: np.ndarray) -> int:
        """PABFD's choice for ``vm`` among ``allowed`` hosts, or -1."""
        p, v = self.view.placement, self.view
        r = v.vm_demand_hz[vm]
        # The filters, on the hosts that pass the cheapest one first (the same comparisons).
        cand = np.flatnonzero(allowed & (self.demand + r <= self.cpu_limit))
        if cand.size == 0:
            return -1
        vcpus, ram = p.vm_vcpus[vm], p.vm_ram_bytes[vm]
        ok = (p.host_cores[cand] >= vcpus) & (self.vcpus[cand] + vcpus <= self.vcpu_limit[cand])
        ok &= self.ram[cand] + ram <= self.ram_limit[cand]
        cand = cand[ok]
        if cand.size == 0:
            return -1
        after = (self.demand[cand] + r) / self.capacity[cand]
        power = v.power.watts(after, cand) - self.power_now[cand]
        verdict = self._screen(vm, cand, after)
        if verdict is None:
            return self._first_not_overloaded(vm, cand, after, power)
        # Cheapest first, lowest host id on ties (argmin takes the first minimum), skipping
        # the hosts the screen found overloaded; an uncertain one gets the detector itself.
        power[verdict == _OVER] = np.inf
        while True:
            i = int(np.argmin(power))
            if power[i] == np.inf:
                return -1
            if verdict[i] == _OK or not self._overloaded_with(vm, cand[i:i + 1], after[i:i + 1])[0]:
                return int(cand[i])
            power[i] = np.inf

    def _overloaded_with(self, vm: int, hosts: np.ndarray, after: np.ndarray) -> np.ndarray:
        """The detector on ``hosts`` (all busy) with ``vm`` added."""
        hist = self.history[hosts] + self._vm_share(vm, hosts)
        n = np.maximum(self.n_valid[hosts], self.view.vm_n_valid[vm])
        return self.detector(after, hist, n)

    def _screen(self, vm: int, cand: np.ndarray, after: np.ndarray) -> np.ndarray | None:
        """Verdicts (_OK, _OVER, _UNSURE) on ``cand`` with ``vm`` added, or None when the
        detector needs its full test throughout. An empty host is never refused: the VM alone
        is what it would run."""
        if not getattr(self.detector, "uses_history", True):
            verdict = self._by_utilisation(after).view(np.int8)
        elif self.lr_weights is not None:
            v = self.view
            k = len(self.lr_weights)
            share = v.placement.vm_capacity_hz[vm] / self.capacity[cand]
            predicted = self.lin[cand] + share * self.vm_lin[vm]
            verdict = (predicted >= 1.0).view(np.int8)  # _OVER or _OK
            verdict[np.abs(predicted - 1.0) <= SCREEN_MARGIN] = _UNSURE
            short = np.maximum(self.n_valid[cand], v.vm_n_valid[vm]) < k
            if short.any():  # too little history to fit a line: the detector's fallback
                verdict[short] = self._by_utilisation(after[short])
        else:
            return None
        verdict[self.demand[cand] <= 0] = _OK
        return verdict

    def _by_utilisation(self, util: np.ndarray) -> np.ndarray:
        """The detector's verdict on hosts without (enough) history: it reads only ``util``."""
        n = len(util)
        return self.detector(util, np.zeros((n, 0)), np.zeros(n, dtype=np.int64))

    def _first_not_overloaded(self, vm: int, cand: np.ndarray, after: np.ndarray,
                              power: np.ndarray) -> int:
        """The cheapest candidate that ``vm`` would not overload, testing a chunk at a time:
        the detector, the costly test, runs only until a host passes it."""
        order = np.argsort(power, kind="stable")
        start, chunk = 0, 16
        while start < order.size:
            pick = order[start:start + chunk]
            hosts = cand[pick]
            busy = self.demand[hosts] > 0
            ok = ~busy
            if busy.any():
                ok[busy] = ~self._overloaded_with(vm, hosts[busy], after[pick][busy])
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
        # The movable VMs grouped by host, in id order: host h's are on_host[bounds[h]:bounds[h + 1]].
        on_host = np.flatnonzero(movable)
        on_host = on_host[np.argsort(view.vm_host[on_host], kind="stable")]
        bounds = np.searchsorted(view.vm_host[on_host], np.arange(len(on) + 1))

        # 1. Overloaded hosts give up VMs until the detector is satisfied.
        leaving: list[tuple[int, int]] = []  # (vm, source)
        for h in np.flatnonzero(overloaded):
            candidates = on_host[bounds[h]:bounds[h + 1]].tolist()
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
        # might_fit compares a source's largest VM with the roomiest allowed host. Rooms only
        # shrink and hosts only leave `allowed` during the loop (a dropped plan is undone), so a
        # source that fails against the roomiest host now fails at its turn too. Such hopeless
        # sources are skipped; all their turn did was leave `allowed` (unless they had received
        # VMs by then), which is applied, in order, before the next source that is tried.
        hopeless = self._hopeless(placer, candidates, allowed, on_host, bounds)
        pending: list[int] = []
        for source, skip in zip(candidates.tolist(), hopeless.tolist(), strict=True):
            if skip:
                pending.append(source)
                continue
            for earlier in pending:
                if not sources_done[earlier]:
                    sources_done[earlier] = True
                    allowed[earlier] = False
            pending.clear()
            if sources_done[source]:
                continue  # it has received VMs in the meantime
            sources_done[source] = True
            allowed[source] = False
            vms = on_host[bounds[source]:bounds[source + 1]]
            vms = vms[np.argsort(-view.vm_demand_hz[vms], kind="stable")]
            if vms.size and not placer.might_pass_screen(int(vms[0]), allowed):
                continue  # its first VM finds no host: the plan would fail at once
            if not placer.might_fit(vms, allowed):
                continue
            placer.tentative()
            plan: list[Migration] = []
            for vm in vms.tolist():
                dest = placer.best_host(vm, allowed)
                if dest < 0:
                    break
                placer.move(vm, int(source), dest)
                plan.append(Migration(vm, dest, "underload"))
            if len(plan) < len(vms):
                placer.rollback()  # drop the partial plan, exactly
                continue
            placer.commit()
            decisions += plan
            for m in plan:
                sources_done[m.dest] = True  # a host that receives VMs is not emptied now
        return decisions

    @staticmethod
    def _hopeless(placer: PowerAwarePlacer, candidates: np.ndarray, allowed: np.ndarray,
                  on_host: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Sources whose largest VM (RAM or CPU) exceeds the most room of any allowed host."""
        v = placer.view
        ram_room, cpu_room = placer.room(allowed)
        starts = bounds[:-1]
        some = bounds[1:] > starts
        ram_max = np.zeros(len(starts))
        cpu_max = np.zeros(len(starts))
        if some.any():
            ram_max[some] = np.maximum.reduceat(v.placement.vm_ram_bytes[on_host], starts[some])
            cpu_max[some] = np.maximum.reduceat(v.vm_demand_hz[on_host], starts[some])
        fits = (ram_max <= ram_room * (1 + _EPS)) & (cpu_max <= cpu_room * (1 + _EPS))
        return some[candidates] & ~fits[candidates]
