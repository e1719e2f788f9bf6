"""CloudSim 3.0.3's power-aware datacenter, rule for rule: ``semantics: cloudsim``.

This is not how vsim models a datacenter; it reproduces the simulator that produced a decade of
published consolidation figures (Beloglazov & Buyya, CCPE 2012), so that vsim's results can be
put next to them. The rules, CloudSim's bugs included, are those of
``shared/reference/cloudsim-planetlab.md``; the comments name them. In short:

* demand is the trace linearly interpolated at the update times 300.1, 600.1, ... (a running sum
  of 300 from 0.1), and at every migration completion;
* a host shares its MIPS among capped requests, scaled down (and floored) when oversubscribed;
  a VM migrating in takes 0.1 of its request on the destination, one migrating out 0.9 of its
  share on the source;
* a VM that is not migrating and requests exactly 0 MIPS at an update is destroyed for good;
* energy per host and interval is the mean of the power at both ends, zero when the host was idle
  at the start; a migration takes RAM / 62.5 MB/s;
* RAM and bandwidth only limit the initial placement.

Hosts are scanned with array operations; CloudSim's sequential decisions (one VM after another,
one host after another) stay sequential, as their results depend on the order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vsim.model.cloudsim_planner import HISTORY, Planner, PowerTable

__all__ = ["CompatResult", "CompatSpec", "run_cloudsim"]

STEP = 300.0  # scheduling interval and trace step
MIGRATION_BYTES_PER_S = 1e9 / 16000 * 1e3  # host bandwidth / 16000 in MB/s -> 62.5 MB/s


class Detector(Protocol):
    """An overload detector (see vsim.policies.overload): all hosts at once, or one."""

    def __call__(self, util: np.ndarray, history: np.ndarray, n_valid: np.ndarray) -> np.ndarray: ...
    def one(self, util: float, values: list[float]) -> bool: ...


@dataclass
class CompatSpec:
    pe_mips: np.ndarray  # (H,) MIPS of one core
    pes: np.ndarray  # (H,) cores
    ram_mb: np.ndarray  # (H,)
    bw: np.ndarray  # (H,) bandwidth (CloudSim units: Mbit/s)
    power_table: np.ndarray  # (H, 11) watts at 0, 10, ..., 100 %
    vm_mips: np.ndarray  # (N,)
    vm_ram_mb: np.ndarray
    vm_bw: np.ndarray
    trace: np.ndarray  # (N, 288) integer percent
    mode: str  # "dvfs", "npa" or "migration"
    detector: Detector | None = None
    selection: Callable[..., int] | None = None
    fallback_threshold: float = 0.7
    duration: float = 86400.0


@dataclass
class CompatResult:
    energy_j: float
    migrations: list[tuple[float, int, int, int, float, str]] = field(default_factory=list)
    slatah: float = 0.0
    pdm: float = 0.0
    overall: float = 0.0
    shutdowns: int = 0
    destroyed: int = 0
    updates: int = 0
    timeline: list[tuple[float, float, float, int]] = field(default_factory=list)  # t, dt, J, on


class _Datacenter:
    def __init__(self, s: CompatSpec) -> None:
        self.s = s
        h, n = len(s.pe_mips), len(s.vm_mips)
        self.mips = s.pe_mips * s.pes
        self.hosts = np.arange(h)
        self.power = PowerTable(s.power_table)
        self.host = np.full(n, -1, dtype=np.int64)  # where the VM runs (source while migrating)
        self.alive = np.ones(n, dtype=bool)
        self.vms_of: list[list[int]] = [[] for _ in range(h)]  # CloudSim's host VM lists
        self.hist = np.zeros((n, HISTORY))  # newest first, as PowerVm keeps it
        self.hist_len = np.zeros(n, dtype=np.int64)
        self.u_last = np.zeros(h)  # host utilisation at its last update
        self.request = np.zeros(n)
        self.share = np.zeros(n)  # MIPS allocated on the source (before the 0.9 factor)
        self.capped_total = np.zeros(h)
        self.t_last = 0.0
        self.t_hist = 0.0
        self.moves: list[tuple[int, int]] = []  # migrations under way: (vm, target)
        self.mig_in: list[list[int]] = [[] for _ in range(h)]
        self.in_shares: np.ndarray = np.zeros(0)
        self.res = CompatResult(0.0)
        # SLA bookkeeping: last state entry per host and VM (same-time entries replace).
        # rows: time, allocated MIPS, requested MIPS, active (hosts) / migrating out (VMs)
        self.h_entry = np.zeros((4, h))
        self.h_entry[0] = -1.0
        self._before = np.ones(h, dtype=bool)  # active flag of the entry before the current one
        self._counted = np.zeros(h, dtype=bool)  # whether the current entry is a shutdown
        self.h_active_s = 0.0
        self.h_violation_s = 0.0
        self.v_entry = np.zeros((4, n))
        self.v_entry[0] = -1.0
        self.v_req_s = 0.0
        self.v_alloc_s = 0.0
        self.v_mig_loss_s = 0.0

    # --- demand and sharing ---------------------------------------------------------------

    def utilisation(self, t: float) -> np.ndarray:
        """UtilizationModelPlanetLabInMemory: linear between samples at k * 300 s."""
        tr = self.s.trace
        k = t / STEP
        if math.fmod(t, STEP) == 0:
            col = min(int(k), tr.shape[1] - 1)
            return tr[:, col] / 100.0
        t1, t2 = math.floor(k), math.ceil(k)
        last = tr.shape[1] - 1
        u1 = tr[:, min(t1, last)] / 100.0
        u2 = tr[:, min(t2, last)] / 100.0  # the 289th sample repeats the 288th
        return u1 + (u2 - u1) / ((t2 - t1) * STEP) * (t - t1 * STEP)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.moves:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        pv, pt = zip(*self.moves, strict=True)
        return np.array(pv, dtype=np.int64), np.array(pt, dtype=np.int64)

    def reallocate(self) -> None:
        """Time-shared with oversubscription: capped requests, scaled and floored if too many;
        a VM migrating in takes 0.1 of its capped request on each destination."""
        on = self.alive & (self.host >= 0)
        src = np.where(on, self.host, 0)
        cap = np.where(on, np.minimum(self.request, self.s.pe_mips[src]), 0.0)
        pv, pt = self.pairs()
        cap_in = 0.1 * np.minimum(self.request[pv], self.s.pe_mips[pt])
        n_h = len(self.mips)
        total = np.bincount(src[on], weights=cap[on], minlength=n_h).astype(float)
        total += np.bincount(pt, weights=cap_in, minlength=n_h)
        over = total > self.mips
        scale = np.where(over, self.mips / np.where(total > 0, total, 1), 1.0)
        self.share = np.where(over[src], np.floor(cap * scale[src]), cap)
        self.in_shares = np.where(over[pt], np.floor(cap_in * scale[pt]), cap_in)
        self.capped_total = total  # for the available MIPS of placement

    def host_alloc(self) -> np.ndarray:
        """Allocated MIPS per host for utilisation: migrating-out VMs in full, migrating-in 0.1."""
        on = self.alive & (self.host >= 0)
        n_h = len(self.mips)
        _, pt = self.pairs()
        a = np.bincount(self.host[on], weights=self.share[on], minlength=n_h)
        return a + np.bincount(pt, weights=self.in_shares, minlength=n_h)

    def host_requested(self) -> np.ndarray:
        on = self.alive & (self.host >= 0)
        n_h = len(self.mips)
        pv, pt = self.pairs()
        r = np.bincount(self.host[on], weights=self.request[on], minlength=n_h)
        return r + np.bincount(pt, weights=self.request[pv], minlength=n_h)

    # The rest of _Datacenter: updates, energy, SLA entries, destruction, migrations.

    def entries(self, t: float, hosts: np.ndarray | None = None) -> None:
        """State history entries at ``t`` for all hosts (or ``hosts``) and their VMs. An entry
        closes the previous one of the same host or VM; one at the same time replaces it."""
        alloc, req = self.host_alloc(), self.host_requested()
        n_h = len(self.mips)
        mask = np.ones(n_h, dtype=bool) if hosts is None else np.isin(np.arange(n_h), hosts)
        he = self.h_entry
        new = mask & (t > he[0])  # a new entry; otherwise the entry at t is replaced
        close = new & (he[0] >= 0) & (he[3] > 0)
        dt = np.where(close, t - he[0], 0.0)
        self.h_active_s += float(dt.sum())
        self.h_violation_s += float(dt[he[1] < he[2]].sum())
        # Shutdowns: active -> idle between consecutive entries of the final history, which
        # starts as if active (CloudSim's Helper counts them so).
        active = alloc > 0
        self._before[new & (he[0] >= 0)] = he[3, new & (he[0] >= 0)] > 0
        self.res.shutdowns -= int(self._counted[mask & ~new].sum())  # replaced entries
        self._counted[mask] = self._before[mask] & ~active[mask]
        self.res.shutdowns += int(self._counted[mask].sum())
        he[0, mask], he[1, mask], he[2, mask], he[3, mask] = t, alloc[mask], req[mask], active[mask]

        on = self.alive & (self.host >= 0)
        vms = on & mask[np.where(on, self.host, 0)]
        ve = self.v_entry
        close = vms & (ve[0] >= 0) & (t > ve[0])
        dt = np.where(close, t - ve[0], 0.0)
        self.v_req_s += float((ve[2] * dt).sum())
        self.v_alloc_s += float((ve[1] * dt).sum())
        lost = (ve[3] > 0) & (ve[1] < ve[2])
        self.v_mig_loss_s += float(((ve[2] - ve[1]) * dt)[lost].sum())
        out = self.migrating_out()
        ve[0, vms] = t
        ve[1, vms] = (self.share * np.where(out, 0.9, 1.0))[vms]
        ve[2, vms] = self.request[vms]
        ve[3, vms] = out[vms]

    def migrating_out(self) -> np.ndarray:
        out = np.zeros(len(self.alive), dtype=bool)
        for vm, _ in self.moves:
            out[vm] = True
        return out

    def update(self, t: float) -> None:
        """updateCloudletProcessingWithoutSchedulingFutureEventsForce, for every host."""
        dt = t - self.t_last
        u = self.utilisation(t)
        placed = self.alive & (self.host >= 0)
        if t > self.t_hist and math.fmod(t - 0.1, STEP) == 0:
            # PowerVm records its utilisation once per scheduling interval (newest first).
            self.hist[placed, 1:] = self.hist[placed, :-1]
            self.hist[placed, 0] = u[placed]
            self.hist_len[placed] = np.minimum(self.hist_len[placed] + 1, HISTORY)
            self.t_hist = t
        self.request = np.where(placed, self.s.vm_mips * u, 0.0)
        previous = self.u_last.copy()
        self.reallocate()
        self.u_last = self.host_alloc() / self.mips
        if dt > 0:
            hosts = self.hosts
            if self.s.mode == "npa":
                e = self.power.at(hosts, np.ones(len(hosts))) * dt
            else:
                p0 = self.power.at(hosts, np.minimum(previous, 1.0))
                p1 = self.power.at(hosts, np.minimum(self.u_last, 1.0))
                e = np.where(previous > 0, (p0 + (p1 - p0) / 2) * dt, 0.0)
            self.res.energy_j += float(e.sum())
            self.res.timeline.append((t, dt, float(e.sum()), int(np.count_nonzero(previous > 0))))
        self.entries(t)
        self.destroy_idle()
        self.t_last = t
        self.res.updates += 1

    def destroy_idle(self) -> None:
        """A VM that is not migrating and requests 0 MIPS is gone for good (CloudSim's
        getCompletedVms); on 20110303 that is half of the VMs."""
        moving = self.migrating_out()
        gone = np.flatnonzero(self.alive & (self.host >= 0) & (self.request == 0) & ~moving)
        for v in gone.tolist():
            self.vms_of[int(self.host[v])].remove(v)
            self.alive[v] = False
            self.host[v] = -1
            self.res.destroyed += 1

    # --- placement and consolidation ------------------------------------------------------

    def plan(self) -> list[tuple[int, int]]:
        """optimizeAllocation: the migration map of one tick (tentative state is dropped after)."""
        return Planner(self).run()

    def start(self, t: float, plan: list[tuple[int, int]], events: list, seq: list[int]) -> None:
        touched: set[int] = set()
        for vm, target in plan:
            self.moves.append((vm, target))
            self.mig_in[target].append(vm)
            touched.update((int(self.host[vm]), target))
            duration = self.s.vm_ram_mb[vm] / 62.5  # RAM / (bandwidth / 16000) in CloudSim
            seq[0] += 1
            heapq.heappush(events, (t + duration, seq[0], "migrated", (vm, target, t, duration)))
        if touched:
            # Starting a migration recomputes its two hosts: new shares, utilisation and entries.
            self.reallocate()
            hosts = np.array(sorted(touched))
            self.u_last[hosts] = self.host_alloc()[hosts] / self.mips[hosts]
            self.entries(t, hosts)

    def finish(self, t: float, vm: int, target: int, started: float, duration: float) -> None:
        self.moves.remove((vm, target))
        self.mig_in[target].remove(vm)
        if not self.alive[vm]:
            return
        source = int(self.host[vm])
        self.vms_of[source].remove(vm)
        self.vms_of[target].append(vm)
        self.host[vm] = target
        self.res.migrations.append((started, vm, source, target, duration, "cloudsim"))


def _initial_placement(dc: _Datacenter) -> None:
    """At t = 0, in VM id order, every VM requesting its full MIPS. Dvfs and NPA: first fit.
    PABFD: the least power increase over P(0), refusing a non-empty host when the new VM alone
    would overload it (earlier VMs request nothing yet); RAM and bandwidth count here only."""
    s = dc.s
    n_h = len(dc.mips)
    placed_mips = np.zeros(n_h)
    ram = np.zeros(n_h)
    bw = np.zeros(n_h)
    threshold = s.fallback_threshold
    probe = np.zeros((1, HISTORY))
    for vm in range(len(s.vm_mips)):
        r = s.vm_mips[vm]
        ok = (s.pe_mips >= r) & (dc.mips - placed_mips >= r)
        ok &= (s.ram_mb - ram >= s.vm_ram_mb[vm]) & (s.bw - bw >= s.vm_bw[vm])
        if s.mode in ("dvfs", "npa"):
            cand = np.flatnonzero(ok)
            host = int(cand[0]) if cand.size else -1
        else:
            after = (placed_mips + r) / dc.mips
            ok &= after <= 1.0
            busy = placed_mips > 0
            if s.detector is not None:
                alone = s.detector(np.array([r]) / dc.mips, np.repeat(probe, n_h, 0),
                                   np.zeros(n_h, dtype=np.int64))
            else:
                alone = r / dc.mips > threshold
            ok &= ~(busy & alone)
            cand = np.flatnonzero(ok)
            if cand.size:
                cost = dc.power.at(cand, after[cand]) - s.power_table[cand, 0]
                host = int(cand[np.argmin(cost)])
            else:
                host = -1
        if host < 0:
            raise ValueError(f"VM {vm} fits no host at the initial placement")
        placed_mips[host] += r
        ram[host] += s.vm_ram_mb[vm]
        bw[host] += s.vm_bw[vm]
        dc.host[vm] = host
        dc.vms_of[host].append(vm)


def run_cloudsim(spec: CompatSpec) -> CompatResult:
    """Run CloudSim 3.0.3's power-aware datacenter on ``spec`` and return its figures."""
    dc = _Datacenter(spec)
    _initial_placement(dc)
    events: list = []
    seq = [0]
    t = 0.1
    while True:  # the update times are a running sum, as CloudSim accumulates them
        t += STEP
        if t > spec.duration:
            break
        seq[0] += 1
        heapq.heappush(events, (t, seq[0], "tick", None))
    while events:
        time, _, kind, data = heapq.heappop(events)
        if time > spec.duration:
            break
        if kind == "tick":
            dc.update(time)
            if spec.mode == "migration":
                dc.start(time, dc.plan(), events, seq)
        else:
            vm, target, started, duration = data
            if time > dc.t_last + 0.01:
                dc.update(time)
            dc.finish(time, vm, target, started, duration)
            if not (events and events[0][0] == time and events[0][2] == "migrated"):
                dc.update(time)  # a zero-length update after the last move of this instant
    r = dc.res
    r.slatah = dc.h_violation_s / dc.h_active_s if dc.h_active_s else 0.0
    r.pdm = dc.v_mig_loss_s / dc.v_req_s if dc.v_req_s else 0.0
    r.overall = (dc.v_req_s - dc.v_alloc_s) / dc.v_req_s if dc.v_req_s else 0.0
    if spec.mode == "npa":
        r.energy_j = float(spec.power_table[:, -1].sum()) * spec.duration
    return r
