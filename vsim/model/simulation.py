"""One run of a datacenter: events in simpy, CPU sharing and energy integrated between them.

The simulation owns the :class:`Datacenter`, the demand sources, the jobs, and the engine. It asks a
placement callable (a policy, injected so that the model never imports policies) where queued VMs
go, and reports what happens to an observer: events one by one, and every reporting period the
time-weighted sums of the period as a :class:`PeriodSnapshot`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vsim.engine import Engine
from vsim.model.cpu import CpuScheduler, FluidScheduler
from vsim.model.datacenter import Datacenter, HostState, PlacementView, VmState
from vsim.model.jobs import Jobs

__all__ = [
    "DemandSource",
    "Observer",
    "PeriodSnapshot",
    "Placement",
    "PowerManagement",
    "RunTotals",
    "Simulation",
]


@dataclass
class DemandSource:
    """CPU demand of some VMs from a sampled series: ``by_sample[k, j]`` is VM ``vms[j]``'s demand
    over ``[k*step_s, (k+1)*step_s)`` as a fraction of its capacity. Past the last sample the
    series repeats (``repeat``) or holds its last value."""

    vms: np.ndarray
    step_s: float
    by_sample: np.ndarray  # float32 (T, len(vms)): one contiguous row per sample boundary
    repeat: bool = True


@dataclass
class PowerManagement:
    """When hosts are switched on and off. Off hosts are used only when no host that is on fits."""

    power_on_when_needed: bool = True
    idle_off_after_s: float = math.inf


class Placement(Protocol):
    def __call__(self, view: PlacementView, vms: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Host for each VM in ``vms`` (in that order) among ``candidates`` (a host mask), or -1."""
        ...


@dataclass
class PeriodSnapshot:
    """Time-weighted sums over one reporting period ``[time_s, time_s + dt_s)``."""

    time_s: float
    dt_s: float
    host_state: np.ndarray
    host_on_s: np.ndarray
    host_demand_hz_s: np.ndarray
    host_alloc_hz_s: np.ndarray
    host_energy_j: np.ndarray
    host_vm_count: np.ndarray
    host_ram_used: np.ndarray
    vm_ids: np.ndarray  # VMs present (arrived, not yet departed) during part of the period
    vm_host: np.ndarray
    vm_state: np.ndarray
    vm_demand_hz_s: np.ndarray
    vm_alloc_hz_s: np.ndarray
    vm_present_s: np.ndarray
    vms_queued: int


class Observer(Protocol):
    def event(self, time_s: float, kind: str, subject: str, detail: str) -> None: ...
    def events(self, time_s: float, kind: str, subjects: list[str], details: list[str]) -> None: ...
    def period(self, snapshot: PeriodSnapshot) -> None: ...


@dataclass
class RunTotals:
    sim_time_s: float
    energy_j: float
    demand_hz_s: float
    alloc_hz_s: float
    host_on_s: float
    intervals: int
    events: int


class Simulation:
    """Wires the datacenter, demand, jobs and policies into the engine and runs them."""

    def __init__(
        self,
        dc: Datacenter,
        observer: Observer,
        placement: Placement,
        sources: list[DemandSource] | None = None,
        jobs: Jobs | None = None,
        *,
        duration_s: float,
        period_s: float,
        power: PowerManagement | None = None,
        scheduler: CpuScheduler | None = None,
        stop_when_jobs_done: bool = False,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        if math.isinf(duration_s) and not (stop_when_jobs_done and jobs is not None):
            raise ValueError("an unbounded run needs jobs and stop_when_jobs_done")
        self.dc = dc
        self.obs = observer
        self.placement = placement
        self.sources = sources or []
        self.jobs = jobs
        self.duration_s = duration_s
        self.period_s = period_s
        self.power = power or PowerManagement()
        self.scheduler = scheduler or FluidScheduler()
        self.stop_when_jobs_done = stop_when_jobs_done
        self.progress = progress
        self.engine = Engine(self._integrate, self._settle)

        n_h, n_v = len(dc.hosts), len(dc.vms)
        self.trace_frac = np.zeros(n_v)  # demand from traces, fraction of VM capacity
        self.demand_hz = np.zeros(n_v)
        self.alloc_hz = np.zeros(n_v)
        self.job_demand_hz = np.zeros(n_v)
        self._dirty = True
        self._completion_token = 0
        self._empty_since = np.full(n_h, np.nan)
        self._queue_logged = np.zeros(n_v, dtype=bool)
        self._period_start = 0.0
        self._reset_period()
        self.totals = RunTotals(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)

    # --- integration between events -------------------------------------------------------------

    def _reset_period(self) -> None:
        n_h, n_v = len(self.dc.hosts), len(self.dc.vms)
        self._p_host_on = np.zeros(n_h)
        self._p_host_demand = np.zeros(n_h)
        self._p_host_alloc = np.zeros(n_h)
        self._p_host_energy = np.zeros(n_h)
        self._p_vm_demand = np.zeros(n_v)
        self._p_vm_alloc = np.zeros(n_v)
        self._p_vm_present = np.zeros(n_v)

    def _recompute(self) -> None:
        """CPU sharing for the state as it is now, for every host at once."""
        v, h = self.dc.vms, self.dc.hosts
        running = v.state == VmState.RUNNING
        if self.jobs is not None:
            self.jobs.activate(running, self.engine.now)
            threads = self.jobs.threads_per_vm(len(v))
            self.job_demand_hz = np.minimum(threads, v.vcpus) * v.vcpu_hz
        demand = np.minimum(self.trace_frac * v.capacity_hz + self.job_demand_hz, v.capacity_hz)
        # Only a running VM demands CPU: one that waits for a host is not powered on (its wait
        # shows as queueing, not as CPU ready).
        self.demand_hz = np.where(running, demand, 0.0)
        self.alloc_hz[:] = 0.0
        ids = np.flatnonzero(running)
        if ids.size:
            host = v.host[ids].astype(np.int64)
            # Each vCPU runs on one core at a time: a VM uses at most vcpus x the host's core speed.
            cap = np.minimum(v.limit_hz[ids], v.vcpus[ids] * h.core_hz[host])
            self.alloc_hz[ids] = self.scheduler.allocate(
                host, self.demand_hz[ids], v.shares[ids], v.reservation_hz[ids], cap,
                h.capacity_hz,
            )
        if self.jobs is not None:
            share = np.divide(self.job_demand_hz, self.demand_hz,
                              out=np.zeros_like(self.demand_hz), where=self.demand_hz > 0)
            self.jobs.set_rates(self.alloc_hz * share, threads)
        self._dirty = False

    def _integrate(self, t0: float, t1: float) -> None:
        if self._dirty:
            self._recompute()
        dt = t1 - t0
        h, v = self.dc.hosts, self.dc.vms
        n_h = len(h)
        on = h.state == HostState.ON
        host_of_running = np.where(v.state == VmState.RUNNING, v.host, n_h)
        host_alloc = np.bincount(host_of_running, weights=self.alloc_hz, minlength=n_h + 1)[:n_h]
        host_demand = np.bincount(host_of_running, weights=self.demand_hz, minlength=n_h + 1)[:n_h]
        util = np.divide(host_alloc, h.capacity_hz, out=np.zeros(n_h), where=h.capacity_hz > 0)
        watts = np.where(
            on, h.power.watts(util),
            np.where(h.state == HostState.BOOTING, h.power.idle_w, h.power.off_w),
        )
        energy = watts * dt
        self._p_host_on += on * dt
        self._p_host_demand += host_demand * dt
        self._p_host_alloc += host_alloc * dt
        self._p_host_energy += energy
        present = (v.state != VmState.FUTURE) & (v.state != VmState.DONE)
        self._p_vm_demand += self.demand_hz * dt
        self._p_vm_alloc += self.alloc_hz * dt
        self._p_vm_present += present * dt
        t = self.totals
        t.energy_j += float(energy.sum())
        t.demand_hz_s += float(self.demand_hz.sum()) * dt
        t.alloc_hz_s += float(self.alloc_hz.sum()) * dt
        t.host_on_s += float(on.sum()) * dt
        if self.jobs is not None:
            self.jobs.advance(dt)

    def _settle(self) -> None:
        """After all handlers of an instant: rates for the new state, next job completion.

        When nothing changed, rates and the scheduled next completion are still right."""
        if self._dirty:
            self._recompute()
            due = self.jobs.time_to_next_completion() if self.jobs is not None else math.inf
            if math.isfinite(due):
                self._completion_token += 1
                token = self._completion_token
                self.engine.at(self.engine.now + due, lambda: self._on_completion(token))
        if self.stop_when_jobs_done and self.jobs is not None and self.jobs.finished_all:
            self.engine.stop()  # every job completed or was killed with its VM
        elif self.stop_when_jobs_done and self._stalled():
            self.obs.event(self.engine.now, "run_stalled", "jobs",
                           "unfinished jobs can never run: their VMs wait for a host that "
                           "nothing will free")
            self.engine.stop()

    def _stalled(self) -> bool:
        """Jobs remain, none is running, and nothing is scheduled that could change that."""
        jobs = self.jobs
        return (jobs is not None and not jobs.finished_all and not jobs.active.any()
                and self.engine.pending == 0)

    # --- event handlers -----------------------------------------------------------------------

    def _changed(self) -> None:
        self._dirty = True

    def _on_sample(self, source: DemandSource, k: int) -> None:
        n = source.by_sample.shape[0]
        row = k % n if source.repeat else min(k, n - 1)
        self.trace_frac[source.vms] = source.by_sample[row]
        self._changed()

    def _on_arrival(self, ids: np.ndarray) -> None:
        self.dc.vms.state[ids] = VmState.QUEUED
        self._place_queued()
        self._changed()

    def _on_departure(self, ids: np.ndarray) -> None:
        v = self.dc.vms
        ids = ids[(v.state[ids] == VmState.RUNNING) | (v.state[ids] == VmState.STARTING)]
        if ids.size == 0:
            return
        hosts = np.unique(v.host[ids])
        self.dc.remove(ids, self.engine.now)
        self.obs.events(self.engine.now, "vm_depart", [v.name[i] for i in ids], [""] * len(ids))
        if self.jobs is not None:
            mask = np.zeros(len(v), dtype=bool)
            mask[ids] = True
            for j in self.jobs.kill_on(mask):
                self.obs.event(self.engine.now, "job_killed", f"job-{j}", v.name[self.jobs.vm[j]])
        for host in hosts[self.dc.hosts.vm_count[hosts] == 0]:
            self._note_empty(int(host))
        self._place_queued()
        self._changed()

    def _on_submit(self, job_ids: np.ndarray) -> None:
        assert self.jobs is not None
        self.jobs.submitted[job_ids] = True
        self._changed()

    def _on_completion(self, token: int) -> None:
        if token != self._completion_token or self.jobs is None:
            return  # a later recompute moved the next completion
        self.jobs.complete_due(self.engine.now)
        self._changed()

    def _on_host_on(self, host: int) -> None:
        h = self.dc.hosts
        h.state[host] = HostState.ON
        self.obs.event(self.engine.now, "host_on", h.name[host], "")
        started = self.dc.start_waiting(host, self.engine.now)
        self._started(started, h.name[host])
        if h.vm_count[host] == 0:
            self._note_empty(host)
        self._place_queued()
        self._changed()

    def _note_empty(self, host: int) -> None:
        if math.isinf(self.power.idle_off_after_s):
            return
        since = self.engine.now
        self._empty_since[host] = since

        def check() -> None:
            h = self.dc.hosts
            if h.state[host] == HostState.ON and h.vm_count[host] == 0 and \
                    self._empty_since[host] == since:
                h.state[host] = HostState.OFF
                self.obs.event(self.engine.now, "host_off", h.name[host], "idle")
                self._changed()

        self.engine.at(since + self.power.idle_off_after_s, check)

    # --- placement ------------------------------------------------------------------------------

    def _started(self, vm_ids: np.ndarray, where: str | list[str]) -> None:
        v = self.dc.vms
        now = self.engine.now
        names = [v.name[i] for i in vm_ids]
        self.obs.events(now, "vm_start", names, [where] * len(names) if isinstance(where, str) else where)
        ends = now + v.lifetime_s[vm_ids]
        finite = np.isfinite(ends)
        for end in np.unique(ends[finite]):
            self.engine.at(float(end), lambda ids=vm_ids[finite & (ends == end)]: self._on_departure(ids))

    def _place_queued(self) -> None:
        dc, v, h = self.dc, self.dc.vms, self.dc.hosts
        queued = np.flatnonzero(v.state == VmState.QUEUED)
        if queued.size == 0:
            return
        # Higher priority first; within a priority, first come first served (arrival, then id).
        queued = queued[np.lexsort((v.arrival_s[queued], -v.priority[queued]))]
        now = self.engine.now
        candidates = h.state != HostState.OFF
        chosen = self.placement(dc.view(), queued, candidates)
        self._apply(queued, chosen)
        rest = queued[chosen < 0]
        if rest.size and self.power.power_on_when_needed and (h.state == HostState.OFF).any():
            chosen = self.placement(dc.view(), rest, h.state == HostState.OFF)
            for host in np.unique(chosen[chosen >= 0]):
                h.state[host] = HostState.BOOTING
                self.obs.event(now, "host_power_on", h.name[host], "capacity needed")
                self.engine.at(now + float(h.boot_time_s[host]), lambda b=int(host): self._on_host_on(b))
            self._apply(rest, chosen)
            rest = rest[chosen < 0]
        for i in rest[~self._queue_logged[rest]]:
            self.obs.event(now, "vm_queued", v.name[i], "no host has room")
        self._queue_logged[rest] = True

    def _apply(self, vm_ids: np.ndarray, hosts: np.ndarray) -> None:
        ok = hosts >= 0
        if not ok.any():
            return
        vm_ids, hosts = vm_ids[ok], hosts[ok].astype(np.int64)
        started = self.dc.place(vm_ids, hosts, self.engine.now)
        names = self.dc.hosts.name
        self._empty_since[hosts] = np.nan
        waiting = self.dc.vms.state[vm_ids] == VmState.STARTING
        for i, host in zip(vm_ids[waiting], hosts[waiting], strict=True):
            self.obs.event(self.engine.now, "vm_place", self.dc.vms.name[i], names[host])
        self._started(started, [names[self.dc.vms.host[i]] for i in started])

    # --- the run --------------------------------------------------------------------------------

    def _on_period(self, k: int) -> None:
        if k > 0:
            self._emit_period(self.engine.now)
        if self.progress is None:
            return
        if math.isfinite(self.duration_s):
            self.progress(min(1.0, self.engine.now / self.duration_s))
        elif self.jobs is not None and len(self.jobs):
            self.progress(self.jobs.done / len(self.jobs))

    def _emit_period(self, end: float) -> None:
        start, dt = self._period_start, end - self._period_start
        if dt <= 0:
            return
        h, v = self.dc.hosts, self.dc.vms
        present = np.flatnonzero(self._p_vm_present > 0)
        self.obs.period(PeriodSnapshot(
            time_s=start, dt_s=dt, host_state=h.state.copy(), host_on_s=self._p_host_on,
            host_demand_hz_s=self._p_host_demand, host_alloc_hz_s=self._p_host_alloc,
            host_energy_j=self._p_host_energy, host_vm_count=h.vm_count.copy(),
            host_ram_used=h.ram_used.copy(), vm_ids=present, vm_host=v.host[present].copy(),
            vm_state=v.state[present].copy(), vm_demand_hz_s=self._p_vm_demand[present],
            vm_alloc_hz_s=self._p_vm_alloc[present], vm_present_s=self._p_vm_present[present],
            vms_queued=int(np.count_nonzero(v.state == VmState.QUEUED)),
        ))
        self._reset_period()
        self._period_start = end

    def run(self) -> RunTotals:
        v = self.dc.vms
        eng = self.engine
        for t, group in _by_time(v.arrival_s):
            eng.at(t, lambda ids=group: self._on_arrival(ids))
        for src in self.sources:
            eng.every(src.step_s, lambda k, s=src: self._on_sample(s, k))
        if self.jobs is not None:
            for t, group in _by_time(self.jobs.submit_s):
                eng.at(t, lambda ids=group: self._on_submit(ids))
        eng.at(0.0, self._note_initially_empty)
        eng.every(self.period_s, self._on_period)
        eng.run(self.duration_s)
        end = eng.now
        self._emit_period(end)
        self.totals.sim_time_s = end
        self.totals.intervals = eng.intervals
        self.totals.events = eng.events
        if self.progress is not None:
            self.progress(1.0)
        return self.totals

    def _note_initially_empty(self) -> None:
        h = self.dc.hosts
        for host in np.flatnonzero((h.state == HostState.ON) & (h.vm_count == 0)):
            self._note_empty(int(host))


def _by_time(times: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Indices grouped by equal time, in time order: one event per instant, not per item."""
    if times.size == 0:
        return []
    order = np.argsort(times, kind="stable")
    distinct, starts = np.unique(times[order], return_index=True)
    return list(zip(distinct.tolist(), np.split(order, starts[1:]), strict=True))
