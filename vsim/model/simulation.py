"""One run of a datacenter: events in simpy, CPU sharing and energy integrated between them.

The simulation owns the :class:`Datacenter`, the demand sources, the jobs, and the engine. It asks a
placement callable (a policy, injected so that the model never imports policies) where queued VMs
go, and reports what happens to an observer: events one by one, and every reporting period the
time-weighted sums of the period as a :class:`PeriodSnapshot`. Live migrations run in the
:class:`MigrationFabric`; maintenance drains in :class:`MaintenanceWindows`.

Most events change little: a migration step pauses one VM or frees one link. So CPU sharing is
recomputed for the hosts an event touches only, and the period sums of a host or VM are brought up
to date only when its rates change or the period ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from vsim.engine import Engine
from vsim.model.cpu import CpuScheduler, FluidScheduler, contention_loss
from vsim.model.datacenter import Datacenter, HostState, VmState
from vsim.model.ha import Availability
from vsim.model.interfaces import (
    AvailabilitySetup,
    ConsolidationSettings,
    ConsolidationView,
    DemandSource,
    Maintenance,
    MigrationRecord,
    Observer,
    PeriodSnapshot,
    Placement,
    PowerManagement,
    RateSeries,
    RunTotals,
)
from vsim.model.jobs import Jobs
from vsim.model.maintenance import MaintenanceWindows
from vsim.model.memory_run import MemoryRun
from vsim.model.migration import IS_PAUSED, Finished, MigrationFabric, Phase, fabric_for
from vsim.model.moves import Moves, MoveSpec
from vsim.model.slicing import SlicedHosts
from vsim.model.storage import Storage, StorageSetup
from vsim.model.traffic import LinkLoad, TrafficSetup
from vsim.units import format_quantity

__all__ = ["Simulation"]


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
        consolidation: ConsolidationSettings | None = None,
        migration: MigrationFabric | None = None,
        maintenance: list[Maintenance] | None = None,
        slicing: SlicedHosts | None = None,
        memory: MemoryRun | None = None,
        availability: AvailabilitySetup | None = None,
        storage: StorageSetup | None = None,
        traffic: TrafficSetup | None = None,
        moves: list[MoveSpec] | None = None,
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
        self.consolidation = consolidation
        self.engine = Engine(self._integrate, self._settle)
        self.fabric = migration or fabric_for(dc)

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
        self._r_host = np.zeros((len(_HOST_RATES), n_h))
        self._r_vm = np.zeros((len(_VM_RATES), n_v))
        self._host_since = np.zeros(n_h)
        self._vm_since = np.zeros(n_v)
        self.totals = RunTotals(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)
        w = consolidation.history if consolidation else 1
        self.vm_history = np.zeros((n_v, w))
        self.vm_n_valid = np.zeros(n_v, dtype=np.int64)
        self._consolidate_due = False
        self._exec_host = dc.vms.host.copy()  # where each VM runs: its host, or in post-copy its destination
        self._overhead_hz = np.zeros(n_h)  # CPU the migrations take on each host
        self._slicing_costs = bool(np.any(dc.hosts.switch_loss) or np.any(dc.hosts.interference))
        self._fabric_token = 0
        self._dirty_hosts = np.zeros(n_h + 1, dtype=bool)  # the last entry: VMs on no host
        self._partly_dirty = False
        self._admit_due = False
        self.windows = MaintenanceWindows(self, maintenance or [])
        self.slicing = slicing
        self.memory = memory
        self.avail = Availability(self, availability) if availability is not None else None
        self.storage = Storage(self, storage) if storage is not None else None
        self.moves = Moves(self, moves) if moves else None
        self.traffic = LinkLoad(self, traffic, self.fabric.links) if traffic is not None else None

    # --- integration between events -------------------------------------------------------------

    def _reset_period(self) -> None:
        n_h, n_v = len(self.dc.hosts), len(self.dc.vms)
        self._p_host = np.zeros((len(_HOST_RATES), n_h))
        self._p_vm = np.zeros((len(_VM_RATES), n_v))

    # Rates are constant between two recomputes, so each host's and VM's period sums are brought
    # up to date only when its rates are about to change or the period ends: an event that
    # touches two hosts costs two hosts' work, not the whole datacenter's.

    def _flush(self, hosts: np.ndarray | slice, vms: np.ndarray | slice) -> None:
        now = self.engine.now
        dt_host = now - self._host_since[hosts]
        self._p_host[:, hosts] += self._r_host[:, hosts] * dt_host
        self._host_since[hosts] = now
        dt_vm = now - self._vm_since[vms]
        self._p_vm[:, vms] += self._r_vm[:, vms] * dt_vm
        self._vm_since[vms] = now
        if self.memory is not None:
            self.memory.flush(hosts, dt_host, vms, dt_vm)

    def _set_rates(self, hosts: np.ndarray | slice, vms: np.ndarray | slice,
                   running_ids: np.ndarray) -> None:
        """The rates of ``hosts`` and ``vms`` from the state as it is now (``running_ids``: the
        running VMs on ``hosts``)."""
        self._flush(hosts, vms)
        if self.memory is not None:
            self.memory.set_rates(hosts, vms)
        h, v = self.dc.hosts, self.dc.vms
        n_h = len(h)
        where = self._exec_host[running_ids]
        alloc = np.bincount(where, weights=self.alloc_hz[running_ids], minlength=n_h)[hosts]
        demand = np.bincount(where, weights=self.demand_hz[running_ids], minlength=n_h)[hosts]
        state, cap, over = h.state[hosts], h.capacity_hz[hosts], self._overhead_hz[hosts]
        on = state == HostState.ON
        util = np.divide(alloc + over, cap, out=np.zeros(len(cap)), where=cap > 0)
        rows = np.arange(n_h)[hosts]
        watts = np.where(on, h.power.watts(util, rows),
                         np.where(state == HostState.BOOTING, h.power.idle_w[rows], h.power.off_w[rows]))
        # SLATAH counts host time at full load with demand left unserved (Beloglazov & Buyya).
        overloaded = on & (alloc + over >= cap * (1 - 1e-9)) & (demand > alloc * (1 + 1e-9))
        r = self._r_host
        r[0, hosts], r[1, hosts], r[2, hosts], r[3, hosts], r[4, hosts] = (
            on, demand, alloc, watts, overloaded)
        r = self._r_vm
        state = v.state[vms]
        r[0, vms] = self.demand_hz[vms]
        r[1, vms] = self.alloc_hz[vms]
        r[2, vms] = (state != VmState.FUTURE) & (state != VmState.DONE)
        # PDM: the demand a VM in migration does not get (paused, throttled, faulting pages
        # in), as measured here rather than CloudSim's fixed 10 %.
        moving = np.zeros(len(v), dtype=bool)
        moving[self.fabric.active] = True
        r[3, vms] = np.where(moving[vms], self.demand_hz[vms] - self.alloc_hz[vms], 0.0)

    def _recompute(self) -> None:
        """CPU sharing for the state as it is now: for every host at once, or, when only some
        migrations moved on (``_dirty_hosts``), for the hosts they touch."""
        v, h = self.dc.vms, self.dc.hosts
        running = _running(v.state)
        full = self._dirty or self.jobs is not None
        if self.jobs is not None:
            self.jobs.activate(running, self.engine.now)
            threads = self.jobs.threads_per_vm(len(v))
            self.job_demand_hz = np.minimum(threads, v.vcpus) * v.vcpu_hz
        if full:
            demand = np.minimum(self.trace_frac * v.capacity_hz + self.job_demand_hz, v.capacity_hz)
            # Only a running VM demands CPU: one that waits for a host is not powered on (its
            # wait shows as queueing, not as CPU ready).
            self.demand_hz = np.where(running, demand, 0.0)
            self.alloc_hz[:] = 0.0
            self.fabric.traffic_follows(np.divide(self.demand_hz, v.capacity_hz,
                                                  out=np.zeros(len(v)), where=v.capacity_hz > 0))
        fab = self.fabric
        fab.refresh_rates(self.engine.now)
        self._overhead_hz = fab.host_cpu_overhead_hz()
        post = fab.in_phase(Phase.POSTCOPY)
        if full:
            self._exec_host = v.host.copy()
        else:  # only the VMs whose migration just moved on can have changed host
            self._exec_host[fab.touched] = v.host[fab.touched]
        self._exec_host[post] = fab.dest[post]
        if full:
            ids = np.flatnonzero(running)
        else:
            # The hosts the migrations touched, and those of every flow whose rate changed (so
            # does the CPU the copy takes there): the rest stand as they were.
            touched = self._dirty_hosts
            touched[fab.source[fab.rate_changed]] = True
            touched[fab.dest[fab.rate_changed]] = True
            ids = np.flatnonzero(running & touched[self._exec_host])
            post = post[touched[self._exec_host[post]]]
        if ids.size:
            host = self._exec_host[ids].astype(np.int64)
            # Each vCPU runs on one core at a time: a VM uses at most vcpus x the host's core speed.
            cap = np.minimum(v.limit_hz[ids], v.vcpus[ids] * h.core_hz[host])
            if fab.active.size:
                # Paused for the switch-over: nothing; throttled by auto-converge: the rest.
                cap *= np.where(IS_PAUSED[fab.phase[ids]], 0.0, 1.0 - fab.throttle[ids])
            if self.memory is not None:
                # A VM stalled on page faults does its work that much slower.
                busy = np.divide(self.demand_hz[ids], v.capacity_hz[ids],
                                 out=np.zeros(ids.size), where=v.capacity_hz[ids] > 0)
                cap = cap / self.memory.slowdown(ids, host, busy,
                                                 None if full else self._dirty_hosts[:-1])
            if self.storage is not None and self.storage.paused.any():
                cap = np.where(self.storage.paused[ids], 0.0, cap)  # stunned: out of space
            capacity = np.maximum(h.capacity_hz - self._overhead_hz, 0.0)
            if self._slicing_costs:
                capacity = capacity * (1.0 - self._contention_loss(ids, host, cap))
            alloc = self.scheduler.allocate(
                host, self.demand_hz[ids], v.shares[ids], v.reservation_hz[ids], cap, capacity)
            if self.slicing is not None:
                scope = np.ones(len(h), dtype=bool) if full else touched[:-1]
                self.slicing.allocate(self.engine.now, scope, ids, host, self.demand_hz[ids], cap,
                                      alloc)
            self.alloc_hz[ids] = alloc
            if post.size:
                # Remote page faults stall the vCPUs of a VM in post-copy.
                self.alloc_hz[post] *= 1.0 - fab.p.postcopy_slowdown
        elif self.memory is not None:
            none = np.zeros(0, dtype=np.int64)
            self.memory.slowdown(none, none, np.zeros(0), None if full else self._dirty_hosts[:-1])
        if not ids.size and self.slicing is not None:
            scope = np.ones(len(h), dtype=bool) if full else self._dirty_hosts[:-1]
            self.slicing.allocate(self.engine.now, scope, ids, np.zeros(0, dtype=np.int64),
                                  np.zeros(0), np.zeros(0), np.zeros(0))
        if fab.active.size:
            # Only the VMs whose CPU was allocated again can dirty memory at a new rate.
            fab.update(self.engine.now, self.alloc_hz, v.capacity_hz, None if full else ids)
        if self.jobs is not None:
            share = np.divide(self.job_demand_hz, self.demand_hz,
                              out=np.zeros_like(self.demand_hz), where=self.demand_hz > 0)
            self.jobs.set_rates(self.alloc_hz * share, threads)
        if full:
            self._set_rates(slice(None), slice(None), ids)
        else:
            self._set_rates(np.flatnonzero(touched[:-1]), ids, ids)
        self._dirty = False
        self._dirty_hosts[:] = False
        self._partly_dirty = False
        if self.moves is not None:
            self.moves.refresh()
        if self.traffic is not None:
            self.traffic.update()

    def _integrate(self, t0: float, t1: float) -> None:
        # Host and VM sums are kept lazily (see _flush); only jobs advance with every stretch.
        if self.jobs is not None:
            self.jobs.advance(t1 - t0)

    def _settle(self) -> None:
        """After all handlers of an instant: rates for the new state, next job completion.

        When nothing changed, rates and the scheduled next completion are still right."""
        if self._consolidate_due:
            self._consolidate_due = False
            if self._dirty or self._partly_dirty:
                self._recompute()
            self._consolidate()
        if self._admit_due:
            self._admit()
        if self._dirty or self._partly_dirty:
            self._recompute()
            due = self.jobs.time_to_next_completion() if self.jobs is not None else math.inf
            if math.isfinite(due):
                self._completion_token += 1
                token = self._completion_token
                self.engine.at(self.engine.now + due, lambda: self._on_completion(token))
            when = self.fabric.next_event_at()
            self._fabric_token += 1
            if math.isfinite(when):
                token = self._fabric_token
                self.engine.at(max(when, self.engine.now), lambda: self._on_fabric(token))
        if self.storage is not None:
            self.storage.settle()
            if self._dirty or self._partly_dirty:  # a pause or a boot changed what runs
                self._recompute()
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

    def changed(self) -> None:
        self._dirty = True

    @property
    def normal_hosts(self) -> np.ndarray:
        """Hosts that take ordinary placements and migrations (not HA's dedicated failover
        hosts)."""
        if self.avail is None:
            return np.ones(len(self.dc.hosts), dtype=bool)
        return self.avail.normal_hosts()

    def changed_hosts(self, hosts: np.ndarray) -> None:
        """Only what runs on ``hosts`` changed (a migration moved on): recompute just those."""
        self._dirty_hosts[hosts] = True
        self._partly_dirty = True

    def _on_sample(self, source: DemandSource, k: int) -> None:
        self.trace_frac[source.vms] = source.row(k)
        self.changed()

    def _on_memory_sample(self, source: DemandSource, k: int) -> None:
        assert self.memory is not None
        self.memory.on_sample(source, k)
        self.changed()

    def _on_traffic_sample(self, series: RateSeries, k: int, sending: bool) -> None:
        assert self.traffic is not None
        t = self.traffic
        t.on_sample(series, k, sending)
        ids = series.vms
        # Migrations compete with a VM's busier direction on its NIC.
        base = t.s.internal[ids] + t.s.external[ids]
        self.fabric.set_own_traffic(ids, base + np.maximum(t.trace_tx[ids], t.trace_rx[ids]))
        self.changed()

    def _on_write_sample(self, series: RateSeries, k: int) -> None:
        assert self.storage is not None
        rates = series.row(k)
        self.storage.set_write_rate(series.vms, rates)
        rep = self.avail.replication if self.avail is not None else None
        if rep is not None:  # DR replication ships what the VMs write
            rep.set_write_rate(series.vms, rates, self.engine.now)
            self.avail.schedule_replication()  # type: ignore[union-attr]

    def _on_arrival(self, ids: np.ndarray) -> None:
        if self.storage is not None:
            ids = self.storage.on_arrival(ids)  # VMs cloned first arrive when deployed
        self.arrive(ids)

    def arrive(self, ids: np.ndarray) -> None:
        """VMs ready to run (arrived, or deployed): they queue for a host."""
        if ids.size == 0:
            return
        self.dc.vms.state[ids] = VmState.QUEUED
        self._place_queued()
        self.changed()

    def _on_departure(self, ids: np.ndarray) -> None:
        v = self.dc.vms
        state = v.state[ids]
        ids = ids[_running(state) | (state == VmState.STARTING) | (state == VmState.BOOTING)
                  | (state == VmState.DOWN)]
        if ids.size == 0:
            return
        # Sources, and the destinations of migrations the departure abandons.
        hosts = np.unique(np.concatenate([v.host[ids], v.migrating_to[ids]]))
        hosts = hosts[hosts >= 0]
        if self.avail is not None:
            self.avail.on_departed(ids)
        if self.storage is not None:
            self.storage.on_departed(ids)
        if self.moves is not None:
            self.moves.on_departed(ids)
        abandoned = self.fabric.cancel(ids, self.engine.now)
        self.dc.remove(ids, self.engine.now)
        for f in abandoned:
            self._finished(f)
        self.obs.events(self.engine.now, "vm_depart", [v.name[i] for i in ids], [""] * len(ids))
        if self.jobs is not None:
            mask = np.zeros(len(v), dtype=bool)
            mask[ids] = True
            for j in self.jobs.kill_on(mask):
                self.obs.event(self.engine.now, "job_killed", f"job-{j}", v.name[self.jobs.vm[j]])
        for host in hosts[self.dc.hosts.vm_count[hosts] == 0]:
            self._note_empty(int(host))
        self._place_queued()
        self.changed()

    def _on_submit(self, job_ids: np.ndarray) -> None:
        assert self.jobs is not None
        self.jobs.submitted[job_ids] = True
        self.changed()

    def _on_completion(self, token: int) -> None:
        if token != self._completion_token or self.jobs is None:
            return  # a later recompute moved the next completion
        self.jobs.complete_due(self.engine.now)
        self.changed()

    def _on_host_on(self, host: int) -> None:
        h = self.dc.hosts
        if h.state[host] != HostState.BOOTING:
            return  # it failed while booting
        h.state[host] = HostState.ON
        self.obs.event(self.engine.now, "host_on", h.name[host], "")
        started = self.dc.start_waiting(host, self.engine.now)
        self._started(started, h.name[host])
        if h.vm_count[host] == 0:
            self._note_empty(host)
        self._place_queued()
        self._admit()
        if self.avail is not None:
            self.avail.on_host_on(host)
        if self.moves is not None:
            self.moves.on_host_on()
        self.changed()

    def _note_empty(self, host: int) -> None:
        if math.isinf(self.power.idle_off_after_s):
            return
        since = self.engine.now
        self._empty_since[host] = since

        def check() -> None:
            h = self.dc.hosts
            # Empty means no VM placed and none on its way in: a migration target stays on.
            if h.state[host] == HostState.ON and h.vm_count[host] == 0 and \
                    self._empty_since[host] == since and \
                    not (self.dc.vms.migrating_to == host).any():
                h.state[host] = HostState.OFF
                self.obs.event(self.engine.now, "host_off", h.name[host], "idle")
                self.changed()

        self.engine.at(since + self.power.idle_off_after_s, check)

    # --- consolidation --------------------------------------------------------------------------

    def _on_consolidation_tick(self, _k: int) -> None:
        # Decide in settle, once every handler of this instant (trace samples) has run.
        self._consolidate_due = True
        self.engine.request_settle()

    def _record_history(self) -> None:
        v = self.dc.vms
        running = _running(v.state)
        util = np.divide(self.demand_hz, v.capacity_hz, out=np.zeros(len(v)),
                         where=v.capacity_hz > 0)
        w = self.vm_history.shape[1]
        self.vm_history[:, :-1] = self.vm_history[:, 1:]
        self.vm_history[:, -1] = np.where(running, util, 0.0)
        self.vm_n_valid = np.where(running, np.minimum(self.vm_n_valid + 1, w), 0)

    def _consolidation_view(self) -> ConsolidationView:
        h, v = self.dc.hosts, self.dc.vms
        n_h = len(h)
        running = np.flatnonzero(_running(v.state))
        where = v.host[running]
        # A host's history is that of the VMs it holds now (as CloudSim builds it): what the
        # host would have seen with its current VMs, which is what a decision needs.
        host_history = np.zeros((n_h, self.vm_history.shape[1]))
        np.add.at(host_history, where, self.vm_history[running] * v.capacity_hz[running, None])
        host_history /= h.capacity_hz[:, None]
        host_n_valid = np.zeros(n_h, dtype=np.int64)
        np.maximum.at(host_n_valid, where, self.vm_n_valid[running])
        host_demand = np.bincount(where, weights=self.demand_hz[running], minlength=n_h)
        return ConsolidationView(
            placement=self.dc.view(), power=h.power, host_demand_hz=host_demand,
            vm_demand_hz=self.demand_hz.copy(), vm_host=v.host.copy(), vm_state=v.state.copy(),
            vm_history=self.vm_history, vm_n_valid=self.vm_n_valid,
            host_history=host_history, host_n_valid=host_n_valid,
        )

    def _consolidate(self) -> None:
        assert self.consolidation is not None
        self._record_history()
        decisions = self.consolidation.policy(self._consolidation_view())
        h, v = self.dc.hosts, self.dc.vms
        for m in decisions:
            if v.state[m.vm] != VmState.RUNNING or m.dest == v.host[m.vm] or \
                    self.windows.host_off[m.dest] or h.state[m.dest] == HostState.FAILED or \
                    not self.normal_hosts[m.dest]:
                continue
            if h.state[m.dest] == HostState.OFF:
                self.power_on(m.dest, "consolidation target")
            self.migrate(m.vm, m.dest, m.reason)
        if decisions:
            self.changed()

    def migrate(self, vm: int, dest: int, reason: str, group: int = -1) -> None:
        """Reserve room on ``dest`` and hand the copy to the fabric, which starts it when the
        concurrency limits (and the destination's boot) allow."""
        h, v = self.dc.hosts, self.dc.vms
        now = self.engine.now
        source = int(v.host[vm])
        self.dc.start_migration(vm, dest)
        self._empty_since[dest] = np.nan  # it is receiving a VM: not idle
        self.fabric.request(vm, source, dest, now, reason, group)
        self.obs.event(now, "migration_request", v.name[vm], f"{h.name[source]} -> {h.name[dest]} ({reason})")
        self._admit_due = True  # once, after every decision of this instant

    def _admit(self) -> None:
        self._admit_due = False
        h, fab = self.dc.hosts, self.fabric
        # A destination still booting cannot receive yet.
        started = fab.admit(self.engine.now, ready=h.state == HostState.ON)
        if started:
            v = self.dc.vms
            self.obs.events(self.engine.now, "migration_start", [v.name[i] for i in started],
                            [f"{h.name[fab.source[i]]} -> {h.name[fab.dest[i]]}" for i in started])
            self.changed_hosts(fab.source[started])  # nothing runs differently until the copy
            # begins, but the fabric must predict the new migrations' first transition

    def _on_fabric(self, token: int) -> None:
        if token != self._fabric_token:
            return  # a later recompute moved the next transition
        finished = self.fabric.fire(self.engine.now)
        touched = self.fabric.touched
        self.changed_hosts(np.concatenate([self.fabric.source[touched], self.fabric.dest[touched]]))
        for f in finished:
            self._finished(f)
        if finished:
            self._admit_due = True

    def _finished(self, f: Finished, applied: bool = False) -> None:
        v, h = self.dc.vms, self.dc.hosts
        now = self.engine.now
        vm, source, dest = f.vm, f.source, f.dest
        if f.outcome == "aborted":
            if not applied:  # a host failure aborts its copies before it records them
                self.dc.abort_migration(vm)
            self.obs.event(now, "migration_abort", v.name[vm], f"{h.name[source]} -> {h.name[dest]}")
        elif f.outcome != "abandoned":
            self.dc.finish_migration(vm)
            self.totals.migrations += 1
            if self.avail is not None:
                self.avail.on_moved(vm)
            self.obs.event(now, "migration_end", v.name[vm], f"{h.name[source]} -> {h.name[dest]}")
        self.obs.migration(MigrationRecord(
            f.requested_s, vm, source, dest, f.ended_s - f.began_s, f.bytes, f.reason, f.outcome,
            downtime_s=f.downtime_s, rounds=f.rounds, queued_s=f.began_s - f.requested_s,
            throttle=f.throttle, postcopy=f.postcopy))
        self.fabric.flows_changed()  # the VM's own traffic leaves from elsewhere now
        if f.group >= 0:
            self.windows.note(f.group, f.downtime_s, f.bytes)
        if h.vm_count[source] == 0:
            self._note_empty(source)
        if h.vm_count[dest] == 0:
            self._note_empty(dest)  # an aborted copy leaves its destination idle again
        if self.moves is not None:
            self.moves.on_finished(f)

    def power_on(self, host: int, why: str) -> None:
        h = self.dc.hosts
        now = self.engine.now
        h.state[host] = HostState.BOOTING
        self.changed()  # a booting host draws idle power
        self.obs.event(now, "host_power_on", h.name[host], why)
        self.engine.at(now + float(h.boot_time_s[host]), lambda: self._on_host_on(host))

    # --- placement ------------------------------------------------------------------------------

    def _started(self, vm_ids: np.ndarray, where: str | list[str]) -> None:
        v = self.dc.vms
        now = self.engine.now
        names = [v.name[i] for i in vm_ids]
        self.obs.events(now, "vm_start", names, [where] * len(names) if isinstance(where, str) else where)
        if self.avail is not None:
            self.avail.on_started(vm_ids)
        if self.storage is not None:
            self.storage.on_started(vm_ids)
        ends = now + v.lifetime_s[vm_ids]
        finite = np.isfinite(ends)
        for end in np.unique(ends[finite]):
            self.engine.at(float(end), partial(self._on_departure, vm_ids[finite & (ends == end)]))

    def _place_queued(self) -> None:
        v = self.dc.vms
        queued = np.flatnonzero(v.state == VmState.QUEUED)
        if queued.size == 0:
            return
        # Higher priority first; within a priority, first come first served (arrival, then id).
        queued = queued[np.lexsort((v.arrival_s[queued], -v.priority[queued]))]
        now = self.engine.now
        chosen = self.choose_hosts(queued, ~self.windows.host_off & self.normal_hosts,
                                   "capacity needed")
        if self.avail is not None:
            chosen = self.avail.admit(queued, chosen)
        self._apply(queued, chosen)
        rest = queued[chosen < 0]
        for i in rest[~self._queue_logged[rest]]:
            self.obs.event(now, *self._why_waiting(int(i)))
        self._queue_logged[rest] = True

    def _why_waiting(self, vm: int) -> tuple[str, str, str]:
        """The event for a VM no host takes: memory admission control refusing it, or no room."""
        dc, h, v = self.dc, self.dc.hosts, self.dc.vms
        name = v.name[vm]
        if dc.memory_admission:
            allowed = ~self.windows.host_off
            if v.host_group[vm] >= 0:
                allowed &= h.group_id == v.host_group[vm]
            room = (h.mem_reservable - h.mem_reserved_used)[allowed]
            swap = (h.swap_size - h.swap_used)[allowed]
            if room.size and v.mem_reserved[vm] > room.max():
                return ("vm_admission_refused", name,
                        f"its memory reservation with overhead "
                        f"({format_quantity(v.mem_reserved[vm], 'bytes')}) cannot be met: at "
                        f"most {format_quantity(max(room.max(), 0.0), 'bytes')} is unreserved "
                        "on a host")
            if swap.size and v.swap_need[vm] > swap.max():
                return ("vm_admission_refused", name,
                        f"no host has swap space for its unreserved memory "
                        f"({format_quantity(v.swap_need[vm], 'bytes')}; at most "
                        f"{format_quantity(max(swap.max(), 0.0), 'bytes')} free)")
        return "vm_queued", name, "no host has room"

    def choose_hosts(self, vms: np.ndarray, allowed: np.ndarray, why: str,
                     keep_rules: bool = True) -> np.ndarray:
        """A host for each of ``vms`` (or -1) among the ``allowed`` ones: hosts that are on or
        booting first; then, if allowed to, hosts that are off, which are switched on.
        ``keep_rules``: keep to the VMs' VM-host rules (a DR failover to another site does not)."""
        h = self.dc.hosts
        rules = self.dc.vms.host_group[vms]
        if not keep_rules or not rules.any() or (rules == rules[0]).all():
            if keep_rules and rules.size and rules[0] >= 0:
                allowed = allowed & (h.group_id == rules[0])
            return self._choose_hosts(vms, allowed, why)
        # VM-host rules: each group of VMs among its hosts, in the order the VMs came.
        chosen = np.full(len(vms), -1, dtype=np.int64)
        for rule in dict.fromkeys(rules.tolist()):
            mine = rules == rule
            chosen[mine] = self._choose_hosts(
                vms[mine], allowed & (h.group_id == rule) if rule >= 0 else allowed, why)
        return chosen

    def _choose_hosts(self, vms: np.ndarray, allowed: np.ndarray, why: str) -> np.ndarray:
        dc, h = self.dc, self.dc.hosts
        up = (h.state == HostState.ON) | (h.state == HostState.BOOTING)
        chosen = np.array(self.placement(dc.view(), vms, up & allowed))
        rest = chosen < 0
        off = (h.state == HostState.OFF) & allowed
        if rest.any() and self.power.power_on_when_needed and off.any():
            chosen[rest] = self.placement(dc.view(), vms[rest], off)
            for host in np.unique(chosen[rest & (chosen >= 0)]):
                self.power_on(int(host), why)
        return chosen

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
        self._flush(slice(None), slice(None))
        h, v = self.dc.hosts, self.dc.vms
        ph, pv = self._p_host, self._p_vm
        t = self.totals
        t.host_on_s += float(ph[0].sum())
        t.energy_j += float(ph[3].sum())
        t.host_overloaded_s += float(ph[4].sum())
        t.demand_hz_s += float(pv[0].sum())
        t.alloc_hz_s += float(pv[1].sum())
        t.migration_degradation_hz_s += float(pv[3].sum())
        present = np.flatnonzero(pv[2] > 0)
        self.obs.period(PeriodSnapshot(
            time_s=start, dt_s=dt, host_state=h.state.copy(), host_on_s=ph[0],
            host_demand_hz_s=ph[1], host_alloc_hz_s=ph[2], host_energy_j=ph[3],
            host_vm_count=h.vm_count.copy(), host_ram_used=h.ram_used.copy(), vm_ids=present,
            vm_host=v.host[present].copy(), vm_state=v.state[present].copy(),
            vm_demand_hz_s=pv[0][present], vm_alloc_hz_s=pv[1][present],
            vm_present_s=pv[2][present],
            vms_queued=int(np.count_nonzero(v.state == VmState.QUEUED)),
            vcpus=self.slicing.take_period(end) if self.slicing is not None else None,
            memory=self.memory.snapshot(present) if self.memory is not None else None,
        ))
        if self.storage is not None:
            self.storage.period(start, end)
        if self.traffic is not None:
            self.traffic.period(start, end)
        self._reset_period()
        if self.memory is not None:
            self.memory.reset_period()
        self._period_start = end

    def _contention_loss(self, ids: np.ndarray, host: np.ndarray, cap: np.ndarray) -> np.ndarray:
        """Per host, the share of its CPU lost to time-slicing with the vCPUs runnable now (a
        VM wants min(demand, cap) / core speed of them); ``ids`` are every running VM of the
        hosts in ``host``."""
        h = self.dc.hosts
        runnable = np.minimum(self.demand_hz[ids], cap) / h.core_hz[host]
        per_core = np.bincount(host, weights=runnable, minlength=len(h)) / h.cores
        return contention_loss(per_core, h.switch_loss, h.interference)

    def run(self) -> RunTotals:
        v = self.dc.vms
        eng = self.engine
        for t, group in _by_time(v.arrival_s):
            eng.at(t, partial(self._on_arrival, group))
        for src in self.sources:
            eng.every(src.step_s, partial(self._on_sample, src))
        if self.memory is not None:
            for src in self.memory.sources:
                eng.every(src.step_s, partial(self._on_memory_sample, src))
        if self.jobs is not None:
            for t, group in _by_time(self.jobs.submit_s):
                eng.at(t, partial(self._on_submit, group))
        eng.at(0.0, self._note_initially_empty)
        self.windows.schedule()
        if self.avail is not None:
            self.avail.schedule()
        if self.storage is not None:
            self.storage.schedule()
        if self.moves is not None:
            self.moves.schedule()
        if self.traffic is not None:
            for sending, series in ((True, self.traffic.s.sent), (False, self.traffic.s.received)):
                for rates in series:
                    eng.every(rates.step_s, partial(self._on_traffic_sample, rates,
                                                    sending=sending))
        if self.storage is not None:
            for rates in self.storage.s.write_series:
                eng.every(rates.step_s, partial(self._on_write_sample, rates))
        eng.every(self.period_s, self._on_period)
        if self.consolidation is not None:
            c = self.consolidation.interval_s
            eng.every(c, self._on_consolidation_tick, start=c)
        eng.run(self.duration_s)
        end = eng.now
        self._emit_period(end)
        self.totals.sim_time_s = end
        self.totals.evacuations = self.windows.finished()
        if self.avail is not None:
            self.avail.finish()
            self.totals.outages = self.avail.outages
            self.totals.host_failures = self.avail.host_failures
            self.totals.admission_refused = self.avail.refused
            self.totals.admission = self.avail.describe()
            self.totals.replication = self.avail.replication_figures(end)
        if self.storage is not None:
            self.totals.storage = self.storage.finish(end)
        if self.traffic is not None:
            self.totals.traffic = self.traffic.finish(end)
        if self.moves is not None:
            self.totals.moves = self.moves.records()
        if self.slicing is not None:
            self.totals.timeslice_windows = self.slicing.windows
            self.totals.timeslice_slices = self.slicing.slices
        self.totals.intervals = eng.intervals
        self.totals.events = eng.events
        if self.progress is not None:
            self.progress(1.0)
        return self.totals

    def _note_initially_empty(self) -> None:
        h = self.dc.hosts
        for host in np.flatnonzero((h.state == HostState.ON) & (h.vm_count == 0)):
            self._note_empty(int(host))


# Rows of the per-host and per-VM rate and period-sum arrays.
_HOST_RATES = ("on", "cpu_demand_hz", "cpu_alloc_hz", "power_w", "overloaded")
_VM_RATES = ("cpu_demand_hz", "cpu_alloc_hz", "present", "lost_in_migration_hz")


def _by_time(times: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Indices grouped by equal time, in time order: one event per instant, not per item."""
    if times.size == 0:
        return []
    order = np.argsort(times, kind="stable")
    distinct, starts = np.unique(times[order], return_index=True)
    return list(zip(distinct.tolist(), np.split(order, starts[1:]), strict=True))


def _running(state: np.ndarray) -> np.ndarray:
    """VMs that run on their host now: running, or running while being migrated away."""
    return (state == VmState.RUNNING) | (state == VmState.MIGRATING)
