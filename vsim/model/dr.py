"""Disaster recovery between sites: replication, a failover plan, and optional failback.

Protected VMs replicate to their plan's recovery site while they run
(:class:`vsim.model.replication.Replication`). When the protected site fails, the plan runs as
Site Recovery Manager-style tools run one: the loss is declared after a detection delay, someone
decides to fail over, and the recovery groups are powered on at the recovery site in order, each
once the groups it depends on are up (booted, or found no room). Every recovered VM comes back as
of its last replicated recovery point, so it loses the data written since then: its data-loss
window, the RPO actually achieved. Recovered VMs boot at the recovery site's capacity, their boot
reads sharing its datastore (a boot storm). When the failed site is back, the VMs can move home by
live migration over the inter-site link (failback).
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import HostState, VmState
from vsim.model.failures import FailureEvent
from vsim.model.interfaces import DrPlan

if TYPE_CHECKING:
    from vsim.model.ha import Availability
    from vsim.model.replication import Replication

__all__ = ["DisasterRecovery"]

_IDLE, _WAITING, _RUNNING, _DONE = 0, 1, 2, 3


class DisasterRecovery:
    """The DR plans of one simulation and the replication of their VMs."""

    def __init__(self, avail: Availability, plans: list[DrPlan],
                 replication: Replication | None) -> None:
        self.avail = avail
        self.sim = avail.sim
        self.plans = plans
        self.replication = replication
        n_v = len(self.sim.dc.vms)
        self.plan_of = np.full(n_v, -1, dtype=np.int64)
        self.group_of = np.full(n_v, -1, dtype=np.int64)
        for p, plan in enumerate(plans):
            for g, group in enumerate(plan.groups):
                self.plan_of[group.vms] = p
                self.group_of[group.vms] = g
        self.taken = np.zeros(n_v, dtype=bool)  # down VMs a running plan recovers
        self.stuck = np.zeros(n_v, dtype=bool)  # found no room at the recovery site (yet)
        self.state = [[_IDLE] * len(plan.groups) for plan in plans]
        self.active = [False] * len(plans)
        self.failed_at = [math.nan] * len(plans)
        self.recovered: list[list[int]] = [[] for _ in plans]

    def on_started(self, vms: np.ndarray) -> None:
        """VMs started: those protected by a plan and running at its site replicate."""
        if self.replication is None:
            return
        h = self.sim.dc.hosts
        host = self.sim.dc.vms.host[vms].astype(np.int64)
        p = self.plan_of[vms]
        sites = np.array([plan.site for plan in self.plans] + [-1])[p]
        mine = (p >= 0) & (h.site[host] == sites)
        if mine.any():
            self.replication.start(vms[mine], host[mine], self.sim.engine.now)

    # --- failover -------------------------------------------------------------------------------

    def claim(self, down: np.ndarray, e: FailureEvent) -> np.ndarray:
        """Which of the VMs that just went down a plan recovers: the protected VMs of a failed
        site. Starts the plan's clock."""
        mine = np.zeros(down.size, dtype=bool)
        if e.kind != "site":
            return mine
        h = self.sim.dc.hosts
        failed_sites = set(np.unique(h.site[e.hosts]).tolist())
        now = self.sim.engine.now
        for p, plan in enumerate(self.plans):
            if plan.site not in failed_sites:
                continue
            ours = self.plan_of[down] == p
            if not ours.any():
                continue
            mine |= ours
            vms = down[ours]
            self.taken[vms] = True
            rec = self.avail.open
            rp = (self.replication.recovery_point(vms, now) if self.replication is not None
                  else np.full(vms.size, math.nan))
            for vm, point in zip(vms.tolist(), rp.tolist(), strict=True):
                rec[vm].data_loss_s = now - point if math.isfinite(point) else math.nan
            if not self.active[p]:
                self.active[p] = True
                self.failed_at[p] = now
                self.state[p] = [_IDLE] * len(plan.groups)
                eng = self.sim.engine
                eng.at(now + plan.detection_s, partial(self._declared, p))
                eng.at(now + plan.detection_s + plan.decision_s, partial(self._start, p))
        return mine

    def _declared(self, p: int) -> None:
        self.sim.obs.event(self.sim.engine.now, "dr_site_declared_lost", self.plans[p].name,
                           self.sim.dc.site_names[self.plans[p].site])

    def _start(self, p: int) -> None:
        self.sim.obs.event(self.sim.engine.now, "dr_plan_start", self.plans[p].name,
                           f"{len(self.plans[p].groups)} recovery groups")
        self._advance(p)

    def _advance(self, p: int) -> None:
        plan, state = self.plans[p], self.state[p]
        for g, group in enumerate(plan.groups):
            if state[g] == _IDLE and all(state[a] == _DONE for a in group.after):
                state[g] = _WAITING
                when = self.sim.engine.now + group.delay_s
                self.sim.engine.at(when, partial(self._run_group, p, g))
        if all(s == _DONE for s in state):
            self.sim.obs.event(self.sim.engine.now, "dr_plan_done", plan.name,
                               f"{len(self.recovered[p])} VMs recovered")

    def _group_vms(self, p: int, g: int) -> np.ndarray:
        return np.flatnonzero(self.taken & (self.plan_of == p) & (self.group_of == g))

    def _run_group(self, p: int, g: int) -> None:
        self.state[p][g] = _RUNNING
        self.sim.obs.event(self.sim.engine.now, "dr_group_start",
                           f"{self.plans[p].name}/{self.plans[p].groups[g].name}",
                           f"{self._group_vms(p, g).size} VMs")
        self._recover(p, g)

    def _recover(self, p: int, g: int) -> None:
        v, h = self.sim.dc.vms, self.sim.dc.hosts
        vms = self._group_vms(p, g)
        todo = vms[v.state[vms] == VmState.DOWN]
        if todo.size:
            allowed = (h.site == self.plans[p].target) & self.avail.normal_hosts()
            placed = self.avail.restart_on(todo, allowed, "dr")
            self.recovered[p] += placed.tolist()
            self.stuck[todo] = True
            self.stuck[placed] = False
        self._check_group(p, g)

    def _check_group(self, p: int, g: int) -> None:
        """A group is done when each of its VMs is up, or found no room with no host coming."""
        if self.state[p][g] != _RUNNING:
            return
        v, h = self.sim.dc.vms, self.sim.dc.hosts
        vms = self._group_vms(p, g)
        target = h.site == self.plans[p].target
        coming = bool(np.any(target & (h.state == HostState.BOOTING)))
        pending = (v.state[vms] == VmState.BOOTING) | ((v.state[vms] == VmState.DOWN) & coming)
        if not pending.any():
            self.state[p][g] = _DONE
            stuck = int(np.count_nonzero(v.state[vms] == VmState.DOWN))
            self.sim.obs.event(self.sim.engine.now, "dr_group_done",
                               f"{self.plans[p].name}/{self.plans[p].groups[g].name}",
                               f"{stuck} VMs found no room" if stuck else "")
            self._advance(p)

    def on_booted(self, vms: np.ndarray) -> None:
        for p in np.unique(self.plan_of[vms[self.taken[vms]]]).tolist():
            for g in range(len(self.plans[p].groups)):
                self._check_group(p, g)

    def on_host_on(self, host: int) -> None:
        h = self.sim.dc.hosts
        for p, plan in enumerate(self.plans):
            if not self.active[p]:
                continue
            if h.site[host] == plan.target:
                for g, s in enumerate(self.state[p]):
                    if s in (_RUNNING, _DONE):  # VMs that found no room try the new host
                        self._recover(p, g)
            elif h.site[host] == plan.site and self._site_back(plan.site):
                self._site_returned(p)

    # --- failback -------------------------------------------------------------------------------

    def _site_back(self, site: int) -> bool:
        h = self.sim.dc.hosts
        return not np.any((h.site == site) & (h.state == HostState.FAILED))

    def _site_returned(self, p: int) -> None:
        plan = self.plans[p]
        self.active[p] = False
        self.sim.obs.event(self.sim.engine.now, "dr_site_back", plan.name,
                           self.sim.dc.site_names[plan.site])
        # The VMs no plan group could place are restarted at home, as any VM whose host is back.
        v = self.sim.dc.vms
        left = np.flatnonzero(self.taken & (self.plan_of == p) & (v.state == VmState.DOWN))
        self.taken[self.plan_of == p] = False
        if left.size:
            self.avail.waiting[left] = True
            self.avail.next_try[left] = self.sim.engine.now
            if self.avail.ha is not None:
                self.avail._attempt()
            else:
                self._home(left)
        if math.isfinite(plan.failback_after_s):
            self.sim.engine.at(self.sim.engine.now + plan.failback_after_s,
                               partial(self._failback, p))

    def _home(self, vms: np.ndarray) -> None:
        h = self.sim.dc.hosts
        self.avail.waiting[vms] = False
        self.avail.restart_on(vms, h.site == self.plans[self.plan_of[vms[0]]].site, "repair")

    def _failback(self, p: int) -> None:
        sim, v, h = self.sim, self.sim.dc.vms, self.sim.dc.hosts
        plan = self.plans[p]
        vms = np.array([vm for vm in self.recovered[p] if v.state[vm] == VmState.RUNNING
                        and h.site[v.host[vm]] == plan.target], dtype=np.int64)
        self.recovered[p] = []
        if vms.size == 0:
            return
        home = (h.site == plan.site) & (h.state == HostState.ON) & self.avail.normal_hosts()
        chosen = sim.choose_hosts(vms, home & ~sim.windows.host_off, "failback")
        ok = chosen >= 0
        sim.obs.event(sim.engine.now, "dr_failback", plan.name,
                      f"{int(ok.sum())} of {vms.size} VMs move home")
        for vm, dest in zip(vms[ok].tolist(), chosen[ok].tolist(), strict=True):
            sim.migrate(vm, dest, "failback")
        sim.changed()
