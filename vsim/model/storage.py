"""Datastores, virtual disks, snapshots, clones and boots from them.

Space. A disk takes space on its datastore: a thick disk its whole size from creation, a thin disk
(and a linked clone's delta) what has been written to it, growing with the share of its VM's
writes that land on blocks never written before, up to its size. A snapshot's delta takes every
write (times the snapshot's growth share) until it is consolidated, when its space is freed. A
datastore whose fill reaches its limit can take no more: VMs whose disks there still grow are
paused (vSphere stuns them with a "no more space" question) until space is freed by a
consolidation or a deleted VM; VMs on thick disks carry on. Fill is linear in time between events,
so the instant a datastore fills or a disk reaches its size is computed, not sampled.

Bandwidth. Full clones (copy the template's data: read on its datastore, written on the VM's),
consolidations (read the delta, write it into the base) and boot reads (a guest's boot image, over
its host's storage path) are flows over the datastores, shared max-min fairly
(:func:`vsim.model.network.max_min_rates`); a copy within one datastore crosses it twice. A linked
clone is created in a fixed time and copies nothing.

Deploys. A VM cloned from a template on arrival is placed once its clone exists; a VM that boots
at start runs once its boot has read its image and initialised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from vsim.model.datacenter import VmState
from vsim.model.interfaces import RateSeries
from vsim.model.network import max_min_rates
from vsim.model.wakeup import Wakeup
from vsim.units import format_quantity

if TYPE_CHECKING:
    from vsim.model.simulation import Simulation

__all__ = ["CLONE_FULL", "CLONE_LINKED", "CLONE_NONE", "Storage", "StorageSetup"]

CLONE_NONE, CLONE_FULL, CLONE_LINKED = 0, 1, 2
_COPY, _CONSOLIDATE, _BOOT_READ = 0, 1, 2
_EPS_BYTES = 1.0  # a flow with less than a byte left is done (float rounding)
_EPS_S = 1e-9


@dataclass
class StorageSetup:
    """Datastores, disks and what each VM does with them, as arrays (built by the scenario).

    Disks: every VM disk and every template's base disk, ``vm`` -1 for a base. A disk that
    ``exists`` at the start takes its space from then; the others are created by a deploy."""

    store_names: list[str]
    store_capacity: np.ndarray  # bytes usable (capacity x full_at)
    store_bandwidth: np.ndarray  # bytes/s (inf: unlimited)
    disk_vm: np.ndarray
    disk_store: np.ndarray
    disk_size: np.ndarray
    disk_thin: np.ndarray  # bool: grows with writes (thin, or a linked clone's delta)
    disk_used: np.ndarray  # bytes written when created
    disk_new_writes: np.ndarray  # share of the VM's writes to it that allocate new blocks
    disk_write_share: np.ndarray  # share of its VM's writes that go to it
    disk_exists: np.ndarray  # bool: exists at the start
    vm_write_rate: np.ndarray  # bytes/s while running
    vm_clone: np.ndarray  # CLONE_*
    vm_template: np.ndarray  # index into template_names, -1
    vm_store: np.ndarray  # the datastore of the VM's clone and boot, -1
    template_names: list[str]
    template_disk: np.ndarray  # the base disk of each template
    template_linked_s: np.ndarray
    template_clone_rate: np.ndarray
    host_storage: np.ndarray  # each host's path to its datastores, bytes/s
    boot_at_start: np.ndarray  # bool per VM
    boot_io: np.ndarray
    boot_read_rate: np.ndarray
    boot_init_s: np.ndarray
    # Snapshot schedules: (VM ids, first, every or inf, keep, growth share).
    snapshots: list[tuple[np.ndarray, float, float, float, float]] = field(default_factory=list)
    write_series: list[RateSeries] = field(default_factory=list)  # write rates from traces


class Storage:
    """The storage of one simulation: space, pauses, clones, consolidations and boots."""

    def __init__(self, sim: Simulation, setup: StorageSetup) -> None:
        self.sim, self.s = sim, setup
        n_v = len(sim.dc.vms)
        self.exists = setup.disk_exists.copy()
        self.alloc = np.where(setup.disk_thin, setup.disk_used, setup.disk_size).astype(float)
        self.delta = np.zeros(len(self.alloc))
        self.snap_open = np.zeros(len(self.alloc), dtype=bool)
        self.snap_growth = np.zeros(len(self.alloc))
        self.grow = np.zeros(len(self.alloc))
        self.dgrow = np.zeros(len(self.alloc))
        self.paused = np.zeros(n_v, dtype=bool)
        self.paused_on = np.full(n_v, -1, dtype=np.int64)
        self.full = np.zeros(len(setup.store_names), dtype=bool)
        self.booted_once = np.zeros(n_v, dtype=bool)
        self.waiting = np.zeros(0, dtype=np.int64)  # full clones waiting for room, in order
        self._told_waiting = np.zeros(n_v, dtype=bool)
        self.anchor = 0.0
        # Flows: kind, vm, disk, bytes left, the links crossed (-1 pads), own cap, rate.
        self.f_kind: list[int] = []
        self.f_vm: list[int] = []
        self.f_disk: list[int] = []
        self.f_left = np.zeros(0)
        self.f_links = np.zeros((0, 3), dtype=np.int64)
        self.f_cap = np.zeros(0)
        self.f_rate = np.zeros(0)
        self.f_host: list[int] = []
        self._flows_changed = False
        # Links: datastores 0..S-1, then host storage paths S..S+H-1.
        self.capacity = np.concatenate([setup.store_bandwidth, setup.host_storage]).astype(float)
        self.requested_s = np.full(n_v, np.nan)
        self.deployed_s = np.full(n_v, np.nan)
        self.copied = np.zeros(n_v)
        self.boot_began = np.full(n_v, np.nan)
        self.boot_ended = np.full(n_v, np.nan)
        self.paused_s = np.zeros(n_v)
        self._paused_since = np.full(n_v, np.nan)
        self.moved = np.zeros(len(setup.store_names))  # bytes moved by flows this period
        self.written = np.zeros(len(setup.store_names))  # bytes written by VMs this period
        self._store_write: np.ndarray = np.zeros(len(setup.store_names))  # bytes/s written now
        self.rows: dict[str, list[Any]] = {k: [] for k in _STORE_COLUMNS}
        self.peak_used = self.used()
        self._wake = Wakeup(sim, self.next_event_at, self._on_wake)
        self._wake_at = np.nan
        self._stale = True  # disks, snapshots, pauses or write rates changed since the last settle
        self._last_writing = np.zeros(n_v, dtype=bool)

    # --- space ------------------------------------------------------------------------------------

    def used(self) -> np.ndarray:
        """Bytes taken on each datastore now (as of the anchor)."""
        s = self.s
        taken = np.where(self.exists, self.alloc + self.delta, 0.0)
        return np.bincount(s.disk_store, weights=taken, minlength=len(s.store_names))

    def provisioned(self) -> np.ndarray:
        """Bytes promised on each datastore: every existing disk at its full size (above the
        capacity: the datastore is overcommitted)."""
        s = self.s
        return np.bincount(s.disk_store, weights=np.where(self.exists, s.disk_size, 0.0),
                           minlength=len(s.store_names))

    def _advance(self, now: float) -> None:
        dt = now - self.anchor
        if dt <= 0:
            return
        s = self.s
        growing = (self.grow > 0) | (self.dgrow > 0)
        if growing.any():
            self.alloc = np.minimum(self.alloc + self.grow * dt,
                                    np.where(growing, s.disk_size, self.alloc))
            self.delta = np.minimum(self.delta + self.dgrow * dt, s.disk_size)
        self.written += self._store_write * dt  # at the rates set since the last settle
        if len(self.f_left):
            done = np.minimum(self.f_rate * dt, self.f_left)
            self.f_left = self.f_left - done
            for col in range(self.f_links.shape[1]):
                link = self.f_links[:, col]
                on_store = (link >= 0) & (link < len(s.store_names))
                self.moved += np.bincount(link[on_store], weights=done[on_store],
                                          minlength=len(s.store_names))
        self.anchor = now

    def _writing(self) -> np.ndarray:
        """VMs whose guests write now: running, not paused."""
        state = self.sim.dc.vms.state
        return ((state == VmState.RUNNING) | (state == VmState.MIGRATING)) & ~self.paused

    def _set_growth(self) -> None:
        s = self.s
        vm = np.maximum(s.disk_vm, 0)
        w = np.where((s.disk_vm >= 0) & self.exists, self._writing()[vm] * s.vm_write_rate[vm]
                     * s.disk_write_share, 0.0)
        self._store_write = np.bincount(s.disk_store, weights=w, minlength=len(s.store_names))
        self.dgrow = np.where(self.snap_open & (self.delta < s.disk_size), w * self.snap_growth, 0.0)
        self.grow = np.where(~self.snap_open & s.disk_thin & (self.alloc < s.disk_size),
                             w * s.disk_new_writes, 0.0)

    # --- the simulation's hooks -------------------------------------------------------------------

    def schedule(self) -> None:
        for vms, first, every, keep, growth in self.s.snapshots:
            self.sim.engine.at(first, partial(self._take_snapshot, vms, every, keep, growth))

    def on_arrival(self, ids: np.ndarray) -> np.ndarray:
        """VMs arriving: those cloned from a template start their deploy (and arrive when it is
        done); the rest are returned, to be placed now."""
        s, now = self.s, self.sim.engine.now
        clone = s.vm_clone[ids]
        deploy = ids[clone != CLONE_NONE]
        if deploy.size == 0:
            return ids
        self._advance(now)
        self.requested_s[deploy] = now
        linked = deploy[s.vm_clone[deploy] == CLONE_LINKED]
        for t in np.unique(s.template_linked_s[s.vm_template[linked]]):
            group = linked[s.template_linked_s[s.vm_template[linked]] == t]
            self._create_disks(group)
            self.sim.engine.at(now + float(t), partial(self._deployed, group))
        full = deploy[s.vm_clone[deploy] == CLONE_FULL]
        if full.size:
            self.waiting = np.concatenate([self.waiting, full])
            self._start_copies()
        self._settle()
        return ids[clone == CLONE_NONE]

    def _start_copies(self) -> None:
        """Full clones waiting for room start, in order, while their disks fit (a clone that
        would not fit fails in vSphere; here it waits until deletions free space)."""
        if self.waiting.size == 0:
            return
        s, now = self.s, self.sim.engine.now
        room = s.store_capacity - self.used()
        # What each waiting clone's disks take on each datastore, summed in arrival order: the
        # clones start up to the first that does not fit (first come, first served).
        order = np.full(len(self.sim.dc.vms), -1, dtype=np.int64)
        order[self.waiting] = np.arange(self.waiting.size)
        mine = (s.disk_vm >= 0) & (order[np.maximum(s.disk_vm, 0)] >= 0)
        need = np.zeros((self.waiting.size, len(room)))
        np.add.at(need, (order[s.disk_vm[mine]], s.disk_store[mine]), self.alloc[mine])
        fits = np.all(np.cumsum(need, axis=0) <= room, axis=1)
        n = int(np.argmin(fits)) if not fits.all() else fits.size
        if n < self.waiting.size:
            vm = int(self.waiting[n])
            if not self._told_waiting[vm]:
                self._told_waiting[vm] = True
                self.sim.obs.event(now, "deploy_waiting", self.sim.dc.vms.name[vm],
                                   "no room on its datastore for the clone")
        if n == 0:
            return
        full = self.waiting[:n]
        self.waiting = self.waiting[n:]
        self._create_disks(full)
        tpl = s.vm_template[full]
        base = s.template_disk[tpl]
        self._add_flows(_COPY, full, -1, s.disk_used[base], s.disk_store[base], s.vm_store[full],
                        np.full(full.size, -1), s.template_clone_rate[tpl])

    def on_started(self, ids: np.ndarray) -> None:
        """VMs that start running: those that boot at start (the first time) boot now."""
        s, dc = self.s, self.sim.dc
        boot = ids[s.boot_at_start[ids] & ~self.booted_once[ids]]
        if boot.size == 0:
            return
        self._advance(self.sim.engine.now)
        self.booted_once[boot] = True
        dc.begin_boot(boot)
        self.boot_began[boot] = self.sim.engine.now
        host = dc.vms.host[boot].astype(np.int64)
        self._add_flows(_BOOT_READ, boot, -1, s.boot_io[boot], s.vm_store[boot], np.full(boot.size, -1),
                        host, s.boot_read_rate[boot])
        self.sim.changed()

    def on_departed(self, ids: np.ndarray) -> None:
        """Deleted VMs free their disks (and stop their copies and boots)."""
        self._stale = True
        self._advance(self.sim.engine.now)
        gone = np.zeros(len(self.sim.dc.vms), dtype=bool)
        gone[ids] = True
        vm = self.s.disk_vm
        self.exists &= ~((vm >= 0) & gone[np.maximum(vm, 0)])
        self._drop_flows(gone)
        self._unpause(ids[self.paused[ids]], "deleted")
        self._settle()

    def set_write_rate(self, vms: np.ndarray, bytes_s: np.ndarray) -> None:
        """The VMs now write ``bytes_s`` (a trace moved on); growth follows at the settle."""
        self._stale = True
        self._advance(self.sim.engine.now)
        self.s.vm_write_rate[vms] = bytes_s

    def settle(self) -> None:
        """After every instant: bring space up to now, resume what freed space allows, set the
        growth rates for the VMs as they now run, and wake up at the next thing due."""
        self._advance(self.sim.engine.now)
        self._settle()

    # --- internals --------------------------------------------------------------------------------

    def _settle(self) -> None:
        self._resume_where_space()
        self._start_copies()
        writing = self._writing()
        # Most instants change neither the disks nor who writes (a new CPU sample): then the
        # growth rates and the next thing due stand.
        if not (self._stale or self._flows_changed
                or not np.array_equal(writing, self._last_writing)):
            return
        self._stale = False
        self._last_writing = writing
        self._set_growth()
        if self.full.any():
            self._pause_writers(np.flatnonzero(self.full), announce=False)
        if self._flows_changed:
            self._rates()
        when = self.next_event_at()
        if when != self._wake_at:  # a new wake-up only when the next thing due moved
            self._wake_at = when
            self._wake.schedule()

    def next_event_at(self) -> float:
        now, s = self.anchor, self.s
        times = [np.inf]
        room = s.store_capacity - self.used()
        rate = np.bincount(s.disk_store, weights=self.grow + self.dgrow,
                           minlength=len(s.store_names))
        filling = (rate > 0) & ~self.full
        if filling.any():
            times.append(float(np.min(np.maximum(room[filling], 0.0) / rate[filling])))
        for g, level in ((self.grow, self.alloc), (self.dgrow, self.delta)):
            on = g > 0
            if on.any():
                times.append(float(np.min((s.disk_size[on] - level[on]) / g[on])))
        moving = self.f_rate > 0
        if moving.any():
            times.append(float(np.min(self.f_left[moving] / self.f_rate[moving])))
        return now + max(min(times), 0.0)

    def _on_wake(self) -> None:
        self._stale = True
        now = self.sim.engine.now
        self._wake_at = np.nan
        self._advance(now)
        s = self.s
        done = np.flatnonzero(self.f_left <= _EPS_BYTES)
        if done.size:
            self._finish_flows(done)
        room = s.store_capacity - self.used()
        for store in np.flatnonzero((room <= _EPS_BYTES) & ~self.full):
            self._store_full(int(store))
        self.sim.changed()
        self._settle()

    def _store_full(self, store: int) -> None:
        self.full[store] = True
        self._pause_writers(np.array([store]), announce=True)

    def _pause_writers(self, stores: np.ndarray, announce: bool) -> None:
        """Pause the VMs whose disks grow on full ``stores`` (on a store that filled just now, or
        VMs that start writing to one already full)."""
        s, now = self.s, self.sim.engine.now
        on_full = np.zeros(len(s.store_names) + 1, dtype=bool)
        on_full[stores] = True
        growing = (self.grow + self.dgrow > 0) & on_full[s.disk_store] & (s.disk_vm >= 0)
        vms, first = np.unique(s.disk_vm[growing], return_index=True)
        where = s.disk_store[growing][first]
        if announce:
            for store in stores.tolist():
                self.sim.obs.event(now, "datastore_full", s.store_names[store],
                                   f"{format_quantity(s.store_capacity[store], 'bytes')} used; "
                                   f"{int(np.count_nonzero(where == store))} VMs writing to it "
                                   "paused")
        if vms.size == 0:
            return
        self._stale = True
        self.paused[vms] = True
        self.paused_on[vms] = where
        self._paused_since[vms] = now
        self.sim.obs.events(now, "vm_paused", [self.sim.dc.vms.name[i] for i in vms],
                            [f"no space left on datastore {s.store_names[w]}" for w in where])
        self._set_growth()
        self.sim.changed()

    def _resume_where_space(self) -> None:
        s = self.s
        if not self.full.any():
            return
        room = s.store_capacity - self.used()
        # Resume once a little room is back (1 GiB or 1 % of the datastore, the smaller).
        freed = self.full & (room > np.minimum(2.0**30, 0.01 * s.store_capacity))
        for store in np.flatnonzero(freed):
            self.full[store] = False
            self._unpause(np.flatnonzero(self.paused & (self.paused_on == store)),
                          f"space freed on datastore {s.store_names[store]}")

    def _unpause(self, vms: np.ndarray, why: str) -> None:
        self._stale = True
        if vms.size == 0:
            return
        now = self.sim.engine.now
        self.paused_s[vms] += now - self._paused_since[vms]
        self._paused_since[vms] = np.nan
        self.paused[vms] = False
        self.paused_on[vms] = -1
        if why != "deleted":
            self.sim.obs.events(now, "vm_resumed", [self.sim.dc.vms.name[i] for i in vms],
                                [why] * vms.size)
        self.sim.changed()

    def _create_disks(self, vms: np.ndarray) -> None:
        self._stale = True
        mine = np.isin(self.s.disk_vm, vms)
        self.exists[mine] = True

    def _deployed(self, vms: np.ndarray) -> None:
        now = self.sim.engine.now
        self._advance(now)
        vms = vms[self.sim.dc.vms.state[vms] == VmState.FUTURE]  # not deleted meanwhile
        self.deployed_s[vms] = now
        self.sim.obs.events(now, "vm_deployed", [self.sim.dc.vms.name[i] for i in vms],
                            [self.s.template_names[t] for t in self.s.vm_template[vms]])
        self.sim.arrive(vms)

    def _take_snapshot(self, vms: np.ndarray, every: float, keep: float, growth: float) -> None:
        self._stale = True
        now = self.sim.engine.now
        self._advance(now)
        s = self.s
        mine = np.isin(s.disk_vm, vms) & self.exists & ~self.snap_open & (self.delta == 0)
        self.snap_open[mine] = True
        self.snap_growth[mine] = growth
        # One event per VM group, not per VM: a nightly snapshot of 40,000 VMs is one thing.
        self._group_events("snapshot_taken", np.unique(s.disk_vm[mine]), "")
        disks = np.flatnonzero(mine)
        self.sim.engine.at(now + keep, partial(self._consolidate, disks))
        if np.isfinite(every):
            self.sim.engine.at(now + every, partial(self._take_snapshot, vms, every, keep, growth))
        self._settle()

    def _consolidate(self, disks: np.ndarray) -> None:
        self._stale = True
        self._advance(self.sim.engine.now)
        s = self.s
        disks = disks[self.exists[disks] & self.snap_open[disks]]
        self.snap_open[disks] = False  # new writes go to the base again
        # Read the delta and write it into the base: twice its size through the datastore.
        self._add_flows(_CONSOLIDATE, s.disk_vm[disks], disks, self.delta[disks],
                        s.disk_store[disks], s.disk_store[disks], np.full(disks.size, -1),
                        np.full(disks.size, np.inf))
        self._settle()

    # --- flows ------------------------------------------------------------------------------------

    def _add_flows(self, kind: int, vms: np.ndarray, disks: np.ndarray | int, size: np.ndarray,
                   first: np.ndarray, second: np.ndarray, host: np.ndarray, cap: np.ndarray) -> None:
        n = len(vms)
        n_s = len(self.s.store_names)
        links = np.full((n, 3), -1, dtype=np.int64)
        links[:, 0] = first
        links[:, 1] = second
        links[:, 2] = np.where(np.asarray(host) >= 0, n_s + np.asarray(host), -1)
        self.f_kind += [kind] * n
        self.f_vm += [int(v) for v in vms]
        self.f_disk += ([disks] * n if isinstance(disks, int) else [int(d) for d in disks])
        self.f_host += [int(h) for h in np.broadcast_to(host, (n,))]
        self.f_left = np.concatenate([self.f_left, np.broadcast_to(size, (n,)).astype(float)])
        self.f_links = np.vstack([self.f_links, links])
        self.f_cap = np.concatenate([self.f_cap, np.broadcast_to(cap, (n,)).astype(float)])
        self.f_rate = np.concatenate([self.f_rate, np.zeros(n)])
        if kind == _COPY:
            self.copied[vms] += np.broadcast_to(size, (n,))
        self._flows_changed = True

    def _keep_flows(self, keep: np.ndarray) -> None:
        idx = np.flatnonzero(keep)
        self.f_kind = [self.f_kind[i] for i in idx]
        self.f_vm = [self.f_vm[i] for i in idx]
        self.f_disk = [self.f_disk[i] for i in idx]
        self.f_host = [self.f_host[i] for i in idx]
        self.f_left, self.f_links = self.f_left[idx], self.f_links[idx]
        self.f_cap, self.f_rate = self.f_cap[idx], self.f_rate[idx]
        self._flows_changed = True

    def _drop_flows(self, gone_vm: np.ndarray) -> None:
        if len(self.f_vm):
            self._keep_flows(~gone_vm[np.asarray(self.f_vm, dtype=np.int64)])

    def _rates(self) -> None:
        self._flows_changed = False
        if not len(self.f_left):
            return
        self.f_rate = max_min_rates(self.f_links, self.f_cap, self.capacity)

    def _finish_flows(self, done: np.ndarray) -> None:
        self._stale = True
        s, now, dc = self.s, self.sim.engine.now, self.sim.dc
        kinds = np.asarray(self.f_kind)[done]
        vms = np.asarray(self.f_vm, dtype=np.int64)[done]
        disks = np.asarray(self.f_disk, dtype=np.int64)[done]
        hosts = np.asarray(self.f_host, dtype=np.int64)[done]
        keep = np.ones(len(self.f_left), dtype=bool)
        keep[done] = False
        self._keep_flows(keep)
        copies = vms[kinds == _COPY]
        if copies.size:
            self._deployed(copies)
        merged = disks[kinds == _CONSOLIDATE]
        if merged.size:
            vms = s.disk_vm[merged]
            freed = np.bincount(vms, weights=self.delta[merged], minlength=len(dc.vms))
            self.delta[merged] = 0.0
            self._group_events("snapshot_consolidated", np.unique(vms), "freed", freed)
        read = (kinds == _BOOT_READ)
        # A boot still counts only if the VM is still booting on the host it started on.
        read &= (dc.vms.state[vms] == VmState.BOOTING) & (dc.vms.host[vms] == hosts)
        for init in np.unique(s.boot_init_s[vms[read]]):
            group = vms[read][s.boot_init_s[vms[read]] == init]
            on = hosts[read][s.boot_init_s[vms[read]] == init]
            self.sim.engine.at(now + float(init), partial(self._booted, group, on))

    def _booted(self, vms: np.ndarray, hosts: np.ndarray) -> None:
        dc, now = self.sim.dc, self.sim.engine.now
        ok = (dc.vms.state[vms] == VmState.BOOTING) & (dc.vms.host[vms] == hosts)
        vms = vms[ok]
        if vms.size == 0:
            return
        self._advance(now)
        dc.booted(vms)
        self.boot_ended[vms] = now
        self.sim.obs.events(now, "vm_booted", [dc.vms.name[i] for i in vms],
                            [f"{now - b:.1f} s after it started" for b in self.boot_began[vms]])
        self.sim.changed()

    def _group_events(self, kind: str, vms: np.ndarray, what: str,
                      amount: np.ndarray | None = None) -> None:
        """One event per VM group of ``vms``: subject the group, detail how many VMs (and how
        many bytes of ``amount``, per VM, in all)."""
        names = self.sim.dc.vms.group
        groups = np.array([names[v] for v in vms.tolist()], dtype=object)  # only these VMs'
        for g in dict.fromkeys(groups.tolist()):
            mine = vms[groups == g]
            detail = f"{mine.size} VM(s)"
            if amount is not None:
                detail += f", {format_quantity(float(amount[mine].sum()), 'bytes')} {what}"
            self.sim.obs.event(self.sim.engine.now, kind, str(g), detail)

    # --- records ----------------------------------------------------------------------------------

    def period(self, start: float, end: float) -> None:
        """One row per datastore for the period ``[start, end)``."""
        self._advance(end)
        s, dt = self.s, max(end - start, _EPS_S)
        used = self.used()
        self.peak_used = np.maximum(self.peak_used, used)
        n = len(s.store_names)
        paused = np.bincount(self.paused_on[self.paused & (self.paused_on >= 0)], minlength=n)
        for k, col in (("time_s", np.full(n, start)), ("datastore", np.arange(n)),
                       ("used_bytes", used), ("provisioned_bytes", self.provisioned()),
                       ("capacity_bytes", s.store_capacity),
                       ("fill_frac", used / s.store_capacity),
                       ("transfer_bytes_s", self.moved / dt), ("vm_write_bytes_s", self.written / dt),
                       ("vms_paused", paused)):
            self.rows[k].append(np.asarray(col))
        self.moved[:] = 0.0
        self.written[:] = 0.0

    def finish(self, end: float) -> dict[str, Any]:
        """The run's storage records: a row per datastore and period, a row per deploy and per
        VM that booted at start, and the pauses (those still open closed at ``end``)."""
        self._advance(end)
        still = np.flatnonzero(self.paused)
        self.paused_s[still] += end - self._paused_since[still]
        s = self.s
        rows = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.rows.items()}
        deployed = np.flatnonzero(~np.isnan(self.requested_s))
        vm_disks = (s.disk_vm >= 0) & self.exists
        space = np.bincount(s.disk_vm[vm_disks], weights=(self.alloc + self.delta)[vm_disks],
                            minlength=len(self.requested_s))
        booted = np.flatnonzero(~np.isnan(self.boot_began))
        return {
            "datastores": rows,
            "deploys": {
                "vm": deployed, "template": s.vm_template[deployed],
                "clone": s.vm_clone[deployed], "requested_s": self.requested_s[deployed],
                "deployed_s": self.deployed_s[deployed], "bytes_copied": self.copied[deployed],
                "space_bytes": space[deployed],
            },
            "boots": {"vm": booted, "began_s": self.boot_began[booted],
                      "ended_s": self.boot_ended[booted]},
            "paused_s": self.paused_s.copy(),
            "peak_used_bytes": self.peak_used.copy(),
            "used_bytes": self.used(),
            "provisioned_bytes": self.provisioned(),
            "store_names": list(s.store_names),
            "store_capacity": s.store_capacity.copy(),
            "template_names": list(s.template_names),
        }


_STORE_COLUMNS = ("time_s", "datastore", "used_bytes", "provisioned_bytes", "capacity_bytes",
                  "fill_frac", "transfer_bytes_s", "vm_write_bytes_s", "vms_paused")
