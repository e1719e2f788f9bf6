"""Host failures, HA restarts and the outage of every VM, in a running simulation.

Failures come from a schedule drawn before the run (:mod:`vsim.model.failures`). When hosts fail,
their VMs are down from that instant: migrations into them are aborted, migrations out of them are
lost with the VM, boots on them stop. Then, as vSphere HA does:

- after a detection delay, the VMs are restarted on the surviving hosts of their site (the HA
  cluster), highest restart priority first; the next priority tier starts once the previous one
  is placed (or booted, a setting), plus an optional delay;
- a VM that finds no room is tried again after each retry delay, and whenever a host comes back;
  while it waits it is counted;
- a restarted VM boots (:class:`vsim.model.boot.Boots`): restarted together, VMs share their hosts'
  storage paths and the datastore, so a large failure restarts slowly (a boot storm);
- VMs HA does not protect wait for their own host's repair and restart there.

Ordinary power-ons (arrivals) pass admission control first (an injected policy: slots,
percentage, or dedicated failover hosts, which take HA restarts only); a refusal is an event with
the policy's reason. Site failures covered by a disaster-recovery plan are handed to
:class:`vsim.model.dr.DisasterRecovery`.

Every outage is one :class:`OutageRecord`: when the VM went down, when it was placed and up again,
how (ha, dr, repair) and after how many attempts, and the data it lost.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import HostState, VmState
from vsim.model.dr import DisasterRecovery
from vsim.model.failures import FailureEvent
from vsim.model.interfaces import AvailabilitySetup, ClusterState, HostFailureRecord, OutageRecord
from vsim.model.wakeup import Wakeup

if TYPE_CHECKING:
    from vsim.model.simulation import Simulation

__all__ = ["Availability"]

_PLACED = (VmState.RUNNING, VmState.MIGRATING, VmState.STARTING, VmState.BOOTING)


class Availability:
    """Failures, repairs, HA restarts, boots and admission control of one simulation."""

    def __init__(self, sim: Simulation, setup: AvailabilitySetup) -> None:
        self.sim = sim
        dc = sim.dc
        n_h, n_v = len(dc.hosts), len(dc.vms)
        self.failures = setup.failures
        self.boots = setup.boots
        self.ha = setup.ha
        self.admission = setup.admission
        self.ha_vms = (np.full(n_v, self.ha is not None) if setup.ha_vms is None
                       else np.asarray(setup.ha_vms, dtype=bool) & (self.ha is not None))
        self.failover_hosts = (np.zeros(n_h, dtype=bool) if setup.failover_hosts is None
                               else np.asarray(setup.failover_hosts, dtype=bool))
        self.mem_res = np.zeros(n_v) if setup.vm_mem_res is None else setup.vm_mem_res
        self.replication = setup.replication
        self.open: dict[int, OutageRecord] = {}  # outages not over yet, by VM
        self.outages: list[OutageRecord] = []
        self.host_open: dict[int, HostFailureRecord] = {}
        self.host_failures: list[HostFailureRecord] = []
        self.waiting = np.zeros(n_v, dtype=bool)  # down, for HA to restart
        self.for_repair = np.zeros(n_v, dtype=bool)  # down until their own host is back
        self.home_host = np.full(n_v, -1, dtype=np.int64)  # where each VM was when it went down
        self.next_try = np.full(n_v, math.inf)
        self.refused_vms = np.zeros(n_v, dtype=bool)  # ordinary power-ons refused at least once
        self._boots_due = Wakeup(sim, self.boots.next_event_at, self._on_boot)
        self._replication_due = (None if self.replication is None else
                                 Wakeup(sim, self.replication.next_event_at, self._on_replication))
        self._tries_at: set[float] = set()
        self.dr = (DisasterRecovery(self, setup.plans, setup.replication)
                   if setup.plans or setup.replication is not None else None)

    # --- the run ------------------------------------------------------------------------------

    def schedule(self) -> None:
        eng = self.sim.engine
        for e in self.failures:
            eng.at(e.time_s, partial(self._fail, e))

    @property
    def refused(self) -> int:
        return int(np.count_nonzero(self.refused_vms))

    def normal_hosts(self) -> np.ndarray:
        """Hosts that take ordinary power-ons and migrations: not the dedicated failover hosts."""
        return ~self.failover_hosts

    def finish(self) -> None:
        """Close the books at the end of the run: open outages stay open (up_s nan)."""
        for rec in self.open.values():
            rec.how = rec.how or "not restarted"
            self.outages.append(rec)
        self.open.clear()
        self.host_failures.extend(self.host_open.values())
        self.host_open.clear()
        self.outages.sort(key=lambda r: (r.failed_s, r.vm))
        self.host_failures.sort(key=lambda r: (r.failed_s, r.host))

    def replication_figures(self, end_s: float) -> dict[str, float]:
        """Data-loss windows of the protected VMs over the run (the RPO they would have had at
        any instant), and what the replication shipped."""
        rep = self.replication
        if rep is None:
            return {}
        vms = np.flatnonzero(rep.protected & ~np.isnan(rep.rp))
        if vms.size == 0:
            return {}
        worst = rep.worst_data_loss_s(vms, end_s)
        mean = rep.mean_data_loss_s(vms, end_s)
        return {"vms": int(vms.size), "rpo_s": float(rep.interval_s[vms].max()),
                "worst_data_loss_s": float(np.nanmax(worst)),
                "worst_data_loss_p95_s": float(np.nanpercentile(worst, 95)),
                "mean_data_loss_s": float(np.nanmean(mean)),
                "bytes_sent": float(rep.bytes_sent.sum()), "cycles": int(rep.cycles.sum())}

    # --- failures and repairs -----------------------------------------------------------------

    def _fail(self, e: FailureEvent) -> None:
        sim, dc = self.sim, self.sim.dc
        h, v, fab = dc.hosts, dc.vms, sim.fabric
        now = sim.engine.now
        hosts = e.hosts[h.state[e.hosts] != HostState.FAILED]
        if hosts.size == 0:
            return  # already down: the earlier failure's repair stands
        dead = np.zeros(len(h) + 1, dtype=bool)  # [-1]: no host
        dead[hosts] = True
        moving = v.state == VmState.MIGRATING
        # A copy into a failed host is given up, the VM going on where it runs; a copy out of
        # one is lost with its VM. The state changes first and the records (which may start
        # other decisions, such as a drain choosing a new destination) once all is consistent.
        aborted = [replace(f, outcome="aborted") for f in fab.cancel(
            np.flatnonzero(moving & dead[v.migrating_to] & ~dead[v.host]), now)]
        for f in aborted:
            dc.abort_migration(f.vm)
        lost = fab.cancel(np.flatnonzero(moving & dead[v.host]), now)
        self.boots.cancel(np.flatnonzero(dead[v.host] & (v.state == VmState.BOOTING)), now)
        was_on = v.host.copy()
        down = dc.fail_hosts(hosts)
        for host in hosts.tolist():
            self.host_open[host] = HostFailureRecord(host, e.process, e.kind, now)
        for vm in down.tolist():
            if vm not in self.open:
                self.open[vm] = OutageRecord(vm, e.process, e.kind, now, int(was_on[vm]))
            else:  # failed again while booting after a restart
                self.open[vm].placed_s, self.open[vm].new_host = math.nan, -1
        if sim.jobs is not None and down.size:
            mask = np.zeros(len(v), dtype=bool)
            mask[down] = True
            for j in sim.jobs.kill_on(mask):
                sim.obs.event(now, "job_killed", f"job-{j}", v.name[sim.jobs.vm[j]])
        if self.replication is not None and down.size:
            self.replication.stop(down, now)
            self.schedule_replication()
        for f in aborted + lost:
            sim._finished(f, applied=True)
        sim.obs.events(now, "host_fail", [h.name[i] for i in hosts], [e.process] * hosts.size)
        sim.obs.events(now, "vm_down", [v.name[i] for i in down],
                       [h.name[was_on[i]] for i in down])
        self.home_host[down] = was_on[down]
        taken = self.dr.claim(down, e) if self.dr is not None else np.zeros(down.size, dtype=bool)
        rest = down[~taken]
        by_ha = rest[self.ha_vms[rest]]
        self.waiting[by_ha] = True
        self.for_repair[rest[~self.ha_vms[rest]]] = True
        if by_ha.size:
            assert self.ha is not None
            self._try_at(now + self.ha.detection_s, by_ha)
        if math.isfinite(e.repair_s):
            sim.engine.at(now + e.repair_s, partial(self._repair, hosts))
        sim.changed()

    def _repair(self, hosts: np.ndarray) -> None:
        sim = self.sim
        h = sim.dc.hosts
        for host in hosts.tolist():
            if h.state[host] == HostState.FAILED:
                h.state[host] = HostState.OFF
                sim.obs.event(sim.engine.now, "host_repaired", h.name[host], "")
                sim.power_on(host, "repaired")

    def on_host_on(self, host: int) -> None:
        """A host came on (repaired, or powered on for restarts): VMs waiting may go there."""
        now = self.sim.engine.now
        rec = self.host_open.pop(host, None)
        if rec is not None:
            rec.back_s = now
            self.host_failures.append(rec)
        mine = np.flatnonzero(self.for_repair & (self.home_host == host))
        if mine.size:
            only = np.zeros(len(self.sim.dc.hosts), dtype=bool)
            only[host] = True
            self.restart_on(mine, only, "repair")
        if self.waiting.any():
            self._attempt()
        if self.dr is not None:
            self.dr.on_host_on(host)

    # --- HA restarts ----------------------------------------------------------------------------

    def _try_at(self, when: float, vms: np.ndarray) -> None:
        self.next_try[vms] = np.minimum(self.next_try[vms], when)
        if when not in self._tries_at:
            self._tries_at.add(when)
            self.sim.engine.at(when, partial(self._on_try, when))

    def _on_try(self, when: float) -> None:
        self._tries_at.discard(when)
        self._attempt()

    def _attempt(self) -> None:
        """Restart the VMs waiting for HA whose attempt is due, tier by tier."""
        assert self.ha is not None
        sim, v = self.sim, self.sim.dc.vms
        now = sim.engine.now
        due = np.flatnonzero(self.waiting & (self.next_try <= now + 1e-9))
        if due.size == 0:
            return
        booting_tier = self._booting_ha_priority()
        order = due[np.lexsort((due, self._failed_at(due), -v.priority[due]))]
        for tier in dict.fromkeys(v.priority[order].tolist()):
            if self.ha.wait_for == "booted" and booting_tier is not None and tier < booting_tier:
                break  # a higher tier is still booting: this one waits for it
            vms = order[v.priority[order] == tier]
            self.restart_on(vms, self._cluster_hosts(vms), "ha")
            unplaced = vms[self.waiting[vms]]
            for vm in unplaced.tolist():
                self._failed_attempt(vm, now)
            placed_any = unplaced.size < vms.size
            if self.ha.wait_for == "booted" and placed_any:
                break  # the next tier starts when these have booted
            if self.ha.tier_delay_s > 0 and placed_any:
                rest = order[v.priority[order] < tier]
                if rest.size:
                    # Not before the delay, whatever else (a boot ending) tries again first.
                    self.next_try[rest] = math.inf
                    self._try_at(now + self.ha.tier_delay_s, rest)
                break

    def _failed_attempt(self, vm: int, now: float) -> None:
        assert self.ha is not None
        rec = self.open[vm]
        rec.attempts += 1
        delays = self.ha.retry_delays_s
        k = rec.attempts - 1
        if k < len(delays):
            self._try_at(now + delays[k], np.array([vm]))
        else:
            self.next_try[vm] = now  # no more scheduled tries: only a host coming back
        v = self.sim.dc.vms
        self.sim.obs.event(now, "ha_restart_failed", v.name[vm],
                           f"attempt {rec.attempts}: {self._why_no_room(vm)}")

    def _why_no_room(self, vm: int) -> str:
        kind, _, why = self.sim._why_waiting(vm)
        return why if kind == "vm_admission_refused" else "no surviving host has room"

    def _booting_ha_priority(self) -> int | None:
        """The lowest priority among VMs HA restarted that are still booting (None: none)."""
        v = self.sim.dc.vms
        ids = [vm for vm, r in self.open.items() if r.how == "ha" and v.state[vm] == VmState.BOOTING]
        return int(v.priority[ids].min()) if ids else None

    def _failed_at(self, vms: np.ndarray) -> np.ndarray:
        return np.array([self.open[vm].failed_s for vm in vms.tolist()])

    def _cluster_hosts(self, vms: np.ndarray) -> np.ndarray:
        """The HA cluster of ``vms``: the hosts of the site they failed in."""
        h = self.sim.dc.hosts
        sites = h.site[self.home_host[vms]]
        return np.isin(h.site, np.unique(sites))

    def restart_on(self, vms: np.ndarray, allowed: np.ndarray, how: str) -> np.ndarray:
        """Place down VMs on hosts that are on among ``allowed`` and boot them there; switch
        hosts that are off on for the rest when allowed to. Returns the VMs placed. A DR
        failover ignores the VMs' VM-host rules: they name hosts of the lost site."""
        sim, h = self.sim, self.sim.dc.hosts
        now = sim.engine.now
        allowed = allowed & ~sim.windows.host_off
        chosen = sim.choose_hosts(vms, allowed & (h.state == HostState.ON), f"{how} restart",
                                  keep_rules=how != "dr")
        ok = chosen >= 0
        placed, where = vms[ok], chosen[ok].astype(np.int64)
        rest = vms[~ok]
        off = allowed & (h.state == HostState.OFF)
        if rest.size and sim.power.power_on_when_needed and off.any():
            pick = np.asarray(sim.placement(sim.dc.view(), rest, off))
            for host in np.unique(pick[pick >= 0]).tolist():
                sim.power_on(host, f"room for {how} restarts")
        if placed.size == 0:
            return placed
        sim.dc.restart(placed, where)
        self.boots.start(placed, where, now)
        self.waiting[placed] = False
        self.for_repair[placed] = False
        self.next_try[placed] = math.inf
        for vm, host in zip(placed.tolist(), where.tolist(), strict=True):
            rec = self.open[vm]
            rec.attempts += 1
            rec.placed_s, rec.new_host, rec.how = now, host, how
        names = h.name
        sim.obs.events(now, "vm_restart", [sim.dc.vms.name[i] for i in placed],
                       [f"{names[w]} ({how})" for w in where])
        sim.changed()
        self._schedule_boots()
        return placed

    # --- boots ----------------------------------------------------------------------------------

    def _schedule_boots(self) -> None:
        self._boots_due.schedule()

    def _on_boot(self) -> None:
        sim, v = self.sim, self.sim.dc.vms
        now = sim.engine.now
        done = self.boots.fire(now)
        if done.size:
            sim.dc.booted(done)
            for vm in done.tolist():
                rec = self.open.pop(vm)
                rec.up_s = now
                self.outages.append(rec)
            sim.obs.events(now, "vm_up", [v.name[i] for i in done], [""] * done.size)
            first = done[np.isnan(v.start_s[done])]  # placed on a booting host, never started
            if first.size:
                v.start_s[first] = now
                sim._started(first, [sim.dc.hosts.name[v.host[i]] for i in first])
            if self.replication is not None:
                # Replication resumes from where the VM runs now, except for those a DR plan
                # recovered at the recovery site (they are no longer protected).
                home = ~self.dr.taken[done] if self.dr is not None else np.ones(done.size, bool)
                if home.any():
                    self.replication.start(done[home], v.host[done[home]].astype(np.int64), now)
                    self.schedule_replication()
            sim.changed()
            if self.waiting.any():
                self._attempt()
            if self.dr is not None:
                self.dr.on_booted(done)
        self._schedule_boots()

    # --- replication --------------------------------------------------------------------------

    def schedule_replication(self) -> None:
        """After any change to the replication: its next cycle start or transfer end."""
        if self._replication_due is not None:
            self._replication_due.schedule()

    def _on_replication(self) -> None:
        assert self.replication is not None
        self.replication.fire(self.sim.engine.now)
        self.schedule_replication()

    def on_moved(self, vm: int) -> None:
        """A migration completed: the VM's replication leaves from its new host."""
        if self.replication is not None and self.replication.protected[vm]:
            v = self.sim.dc.vms
            self.replication.move(np.array([vm]), v.host[[vm]].astype(np.int64), self.sim.engine.now)
            self.schedule_replication()

    # --- arrivals and departures ------------------------------------------------------------------

    def on_started(self, vms: np.ndarray) -> None:
        if self.dr is not None:
            self.dr.on_started(vms)
            self.schedule_replication()

    def on_departed(self, vms: np.ndarray) -> None:
        """``vms`` left for good (their lifetime ended), whatever state they were in."""
        self.waiting[vms] = False
        self.for_repair[vms] = False
        self.boots.cancel(vms, self.sim.engine.now)
        for vm in vms.tolist():
            rec = self.open.pop(vm, None)
            if rec is not None:
                rec.how = "departed"
                self.outages.append(rec)
        if self.replication is not None:
            self.replication.stop(vms, self.sim.engine.now)
            self.schedule_replication()

    # --- admission control ----------------------------------------------------------------------

    def cluster_state(self, site: int) -> ClusterState:
        sim, h, v = self.sim, self.sim.dc.hosts, self.sim.dc.vms
        hosts = np.flatnonzero(h.site == site)
        up = (h.state[hosts] != HostState.FAILED) & ~sim.windows.host_off[hosts]
        assert h.mem_reservable is not None  # Hosts fills in the default
        mem = np.where(np.isfinite(h.mem_reservable[hosts]), h.mem_reservable[hosts],
                       h.ram_bytes[hosts])
        on = np.isin(v.state, _PLACED) & (v.host >= 0)
        on[on] = h.site[v.host[on]] == site
        return ClusterState(h.capacity_hz[hosts], mem, up, v.reservation_hz[on], self.mem_res[on])

    def admit(self, vms: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """``chosen`` hosts with those admission control refuses set to -1 (events say why)."""
        if self.admission is None:
            return chosen
        sim, h, v = self.sim, self.sim.dc.hosts, self.sim.dc.vms
        chosen = chosen.copy()
        ok = chosen >= 0
        for site in np.unique(h.site[chosen[ok]]).tolist():
            mine = np.flatnonzero(ok & (h.site[np.where(ok, chosen, 0)] == site))
            ids = vms[mine]
            d = self.admission.admit(self.cluster_state(site), v.reservation_hz[ids],
                                     self.mem_res[ids])
            refused = ~np.asarray(d.admitted, dtype=bool)
            chosen[mine[refused]] = -1
            self.refused_vms[ids[refused]] = True
            for k in np.flatnonzero(refused).tolist():
                vm = int(ids[k])
                if not sim._queue_logged[vm]:
                    sim.obs.event(sim.engine.now, "vm_admission_refused", v.name[vm],
                                  f"HA admission control ({self.admission.name}): {d.reasons[k]}")
                    sim._queue_logged[vm] = True
        return chosen

    def describe(self) -> dict[str, dict[str, float]]:
        if self.admission is None:
            return {}
        dc = self.sim.dc
        return {dc.site_names[s] if s < len(dc.site_names) else str(s):
                self.admission.describe(self.cluster_state(s))
                for s in np.unique(dc.hosts.site).tolist()}

