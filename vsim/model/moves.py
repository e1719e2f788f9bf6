"""Moving VMs to another site in waves (a lift-and-shift, a datacenter exit).

A move takes the VMs of some groups to a host group elsewhere, a wave at a time, the next wave
starting when the last VM of the one before has arrived (plus an optional gap). Each VM moves as
migration tools such as VMware HCX's replication-assisted vMotion do: first its disks are copied
to the destination while it runs (every write made meanwhile has to be copied too, so a copy
gains on the VM at its rate less the VM's write rate), then its memory is live-migrated (the
migration model, over the WAN) and it runs at the destination, where a VM-host rule keeps it.
A cold move instead shuts the VM down, copies its disks (nothing changes them meanwhile) and
boots it at the destination: it is down from its shutdown until it runs there.

Disk copies of a move share the links they cross (the host's NIC, the site's fabric, both sites'
uplinks and the destination's fabric) max-min fairly, at most ``max_concurrent`` at a time, in what
the live migrations leave of them (the migrations go first: a cutover is short and urgent).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from vsim.model.datacenter import HostState, VmState
from vsim.model.network import link_load, max_min_rates
from vsim.model.wakeup import Wakeup

if TYPE_CHECKING:
    from vsim.model.migration import Finished
    from vsim.model.simulation import Simulation

__all__ = ["MoveSpec", "Moves"]

_EPS = 1.0  # bytes


@dataclass(frozen=True)
class MoveSpec:
    name: str
    vms: np.ndarray  # in the order they move: wave after wave
    target_hosts: np.ndarray  # bool over hosts
    target_group: int  # the host group the VMs are bound to once moved
    target_site: int
    start_s: float
    wave_size: int
    gap_s: float
    max_concurrent: float
    disk_bytes: np.ndarray  # per VM of ``vms``: the data its disks hold
    write_rate: np.ndarray  # per VM of ``vms``: bytes/s it writes while running
    cold: bool = False  # shut down, copy, boot at the destination (instead of a live move)
    boot_s: float = 0.0  # cold: from power-on at the destination to running


class Moves:
    """Every move of one simulation."""

    def __init__(self, sim: Simulation, specs: list[MoveSpec]) -> None:
        self.sim, self.specs = sim, specs
        n = sum(len(s.vms) for s in specs)
        self.move = np.concatenate([np.full(len(s.vms), k) for k, s in enumerate(specs)]
                                   ).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
        self.vm = (np.concatenate([s.vms for s in specs]) if n else np.zeros(0)).astype(np.int64)
        self.wave = (np.concatenate([np.arange(len(s.vms)) // s.wave_size for s in specs])
                     if n else np.zeros(0)).astype(np.int64)
        self.left = (np.concatenate([s.disk_bytes for s in specs]) if n else np.zeros(0)).astype(float)
        self.disk = self.left.copy()
        self.cold = (np.concatenate([np.full(len(s.vms), s.cold) for s in specs])
                     if n else np.zeros(0)).astype(bool)
        self.write = (np.concatenate([s.write_rate for s in specs]) if n else np.zeros(0)).astype(float)
        self.write[self.cold] = 0.0  # a VM that is off writes nothing
        self.src = np.full(n, -1, dtype=np.int64)  # the host a VM's copy leaves from
        self.site = np.array([specs[m].target_site for m in self.move], dtype=np.int64)
        self.sent = np.zeros(n)
        self.rate = np.zeros(n)
        # 0 waiting, 1 copying disks, 2 waiting for a host, 3 migrating memory (cold: booting at
        # the destination), 4 done, 5 skipped (gone, or not running when its turn came)
        self.phase = np.zeros(n, dtype=np.int8)
        self.t = {k: np.full(n, np.nan) for k in ("wave_start", "copy_start", "copy_end", "done",
                                                  "off")}
        self.current = [-1] * len(specs)
        self.closed = [-1] * len(specs)  # the last wave of each move whose end was announced
        self.anchor = 0.0
        self._wake = Wakeup(sim, self.next_event_at, self._on_wake)
        self._wake_at = np.nan
        self.row_of_vm = {int(v): i for i, v in enumerate(self.vm)}

    def schedule(self) -> None:
        for k, s in enumerate(self.specs):
            self.sim.engine.at(s.start_s, partial(self._next_wave, k))

    # --- waves ------------------------------------------------------------------------------------

    def _next_wave(self, k: int) -> None:
        sim, spec = self.sim, self.specs[k]
        self.current[k] += 1
        w = self.current[k]
        rows = np.flatnonzero((self.move == k) & (self.wave == w))
        if rows.size == 0:
            sim.obs.event(sim.engine.now, "move_done", spec.name, f"{w} waves")
            return
        self._advance(sim.engine.now)
        # VMs gone meanwhile (departed, down) are skipped.
        state = sim.dc.vms.state[self.vm[rows]]
        gone = ~((state == VmState.RUNNING) | (state == VmState.MIGRATING))
        self.phase[rows[gone]] = 5
        self.t["wave_start"][rows] = sim.engine.now
        sim.obs.event(sim.engine.now, "move_wave_start", spec.name,
                      f"wave {w + 1}: {int((~gone).sum())} VMs")
        self._start_copies(k)
        self._check_wave(k)

    def _start_copies(self, k: int) -> None:
        spec, now = self.specs[k], self.sim.engine.now
        mine = (self.move == k) & (self.wave == self.current[k])
        busy = int(np.count_nonzero(mine & (self.phase == 1)))
        free = max(int(min(spec.max_concurrent, 1e9)) - busy, 0)
        start = np.flatnonzero(mine & (self.phase == 0))[:free]
        dc = self.sim.dc
        vms = self.vm[start]
        if spec.cold:
            # Only a VM that runs (not one migrating elsewhere or down) can be shut down now.
            ok = dc.vms.state[vms] == VmState.RUNNING
            self.phase[start[~ok]] = 5
            start, vms = start[ok], vms[ok]
        self.src[start] = dc.vms.host[vms]
        if spec.cold and start.size:
            dc.shut_down(vms)
            self.t["off"][start] = now
            self.sim.obs.events(now, "move_vm_off", [dc.vms.name[v] for v in vms],
                                [spec.name] * vms.size)
            self.sim.changed()
        self.phase[start] = 1
        self.t["copy_start"][start] = now
        self._rates()

    def _check_wave(self, k: int) -> None:
        mine = (self.move == k) & (self.wave == self.current[k])
        if self.closed[k] == self.current[k]:
            return  # its end is already announced and the next wave scheduled
        if mine.any() and np.all(self.phase[mine] >= 4):
            self.closed[k] = self.current[k]
            sim, spec = self.sim, self.specs[k]
            began = float(np.nanmin(self.t["wave_start"][mine]))
            sim.obs.event(sim.engine.now, "move_wave_end", spec.name,
                          f"wave {self.current[k] + 1} in {sim.engine.now - began:.0f} s")
            sim.engine.at(sim.engine.now + spec.gap_s, partial(self._next_wave, k))

    # --- disk copies ------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        dt = now - self.anchor
        if dt > 0:
            on = self.phase == 1
            self.sent[on] += self.rate[on] * dt
            # A copy gains on its VM at its rate less the VM's writes.
            self.left[on] = np.maximum(self.left[on] - (self.rate[on] - self.write[on]) * dt, 0.0)
        self.anchor = now

    def refresh(self) -> None:
        """The migrations' rates changed: the copies share what they leave."""
        if (self.phase == 1).any():
            self._advance(self.sim.engine.now)
            self._rates()

    def _rates(self) -> None:
        on = np.flatnonzero(self.phase == 1)
        self.rate[:] = 0.0
        if on.size:
            links = self.sim.fabric.links
            # Live migrations (the cutovers of earlier copies among them) go first: the copies
            # share what they leave of each link.
            left = np.maximum(links.capacity - self.sim.fabric.link_bytes_s(), 0.0)
            self.rate[on] = max_min_rates(links.to_site(self.src[on], self.site[on]),
                                          np.full(on.size, np.inf), left)
        when = self.next_event_at()
        if when != self._wake_at:  # a new wake-up only when the next thing due moved
            self._wake_at = when
            self._wake.schedule()

    def next_event_at(self) -> float:
        on = (self.phase == 1) & (self.rate > self.write)
        if not on.any():
            return np.inf
        return self.anchor + float(np.min(self.left[on] / (self.rate[on] - self.write[on])))

    def _on_wake(self) -> None:
        sim = self.sim
        self._wake_at = np.nan
        self._advance(sim.engine.now)
        done = np.flatnonzero((self.phase == 1) & (self.left <= _EPS))
        self.t["copy_end"][done] = sim.engine.now
        self.phase[done] = 2
        for k in np.unique(self.move[done]).tolist():
            self._start_copies(k)
        self._cutover()
        self._rates()

    def _cutover(self) -> None:
        """VMs whose disks are there: live-migrate their memory to a host of the target group
        (cold: power them on there, on a host that is on)."""
        sim = self.sim
        ready = np.flatnonzero(self.phase == 2)
        state = sim.dc.vms.state[self.vm[ready]]
        ready = ready[np.where(self.cold[ready], state == VmState.DOWN, state == VmState.RUNNING)]
        for k in np.unique(self.move[ready]).tolist():
            rows = ready[self.move[ready] == k]
            spec = self.specs[k]
            dest = sim.choose_hosts(self.vm[rows], spec.target_hosts, f"move {spec.name}",
                                    keep_rules=False)
            for r, d in zip(rows[dest >= 0].tolist(), dest[dest >= 0].tolist(), strict=True):
                if not spec.cold:
                    self.phase[r] = 3
                    sim.migrate(int(self.vm[r]), int(d), f"move {spec.name}")
                elif sim.dc.hosts.state[d] == HostState.ON:  # else: again when it is on
                    self.phase[r] = 3
                    sim.dc.restart(self.vm[r:r + 1], np.array([d]))
                    sim.engine.at(sim.engine.now + spec.boot_s, partial(self._booted, r, d))
                    sim.changed()

    def _booted(self, r: int, host: int) -> None:
        """A VM of a cold move has booted at the destination."""
        sim, vm = self.sim, int(self.vm[r])
        if sim.dc.vms.state[vm] != VmState.BOOTING or sim.dc.vms.host[vm] != host:
            return  # its host failed meanwhile, or it left
        sim.dc.booted(np.array([vm]))
        self._arrived(r)
        sim.changed()
        self._cutover()

    def _arrived(self, r: int) -> None:
        sim, k = self.sim, int(self.move[r])
        self.phase[r] = 4
        self.t["done"][r] = sim.engine.now
        rules = sim.dc.vms.host_group
        assert rules is not None  # Vms fills in the default
        rules[int(self.vm[r])] = self.specs[k].target_group
        self._check_wave(k)

    def on_host_on(self) -> None:
        """A host came on: cold moves waiting for one may power their VMs on."""
        if (self.phase == 2).any():
            self._cutover()

    # --- the simulation's hooks -------------------------------------------------------------------

    def on_finished(self, f: Finished) -> None:
        """A migration ended: a move's cutover is done (or has to be tried again)."""
        r = self.row_of_vm.get(f.vm)
        if r is None or self.phase[r] != 3 or self.cold[r]:
            self._cutover()  # room may have been freed for cutovers waiting for a host
            return
        if f.outcome in ("completed", "forced"):
            self._arrived(r)
        else:
            self.phase[r] = 2  # try again
        self._cutover()

    def on_departed(self, ids: np.ndarray) -> None:
        rows = [self.row_of_vm[int(v)] for v in ids if int(v) in self.row_of_vm]
        if not rows:
            return
        self._advance(self.sim.engine.now)
        rows_a = np.array(rows)
        rows_a = rows_a[self.phase[rows_a] < 4]
        self.phase[rows_a] = 5
        self._rates()
        for k in np.unique(self.move[rows_a]).tolist():
            self._start_copies(k)
            self._check_wave(k)

    def link_bytes_s(self) -> np.ndarray:
        """The disk copies' load on every link now (bytes/s, by link id)."""
        links = self.sim.fabric.links
        on = np.flatnonzero(self.phase == 1)
        out = np.zeros(len(links.capacity))
        if on.size:
            paths = links.to_site(self.src[on], self.site[on])
            out += link_load(paths, self.rate[on], len(out))
        return out

    def records(self) -> dict[str, Any]:
        return {"move": self.move, "names": [s.name for s in self.specs], "vm": self.vm,
                "wave": self.wave, "disk_bytes": self.disk, "sent_bytes": self.sent,
                "phase": self.phase, "cold": self.cold,
                **{f"{k}_s": v for k, v in self.t.items()}}
