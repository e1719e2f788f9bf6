"""Replication of protected VMs to a disaster-recovery site, and the recovery points it gives.

The model is hypervisor-based asynchronous replication in snapshot cycles, as vSphere Replication
and Zerto do it. Each protected VM writes to its disks at a rate ``w`` (bytes/s, piecewise
constant) and has an RPO interval ``T``:

- Asynchronous (``T > 0``): cycle k is due at ``t0 + k·T`` (``t0`` = when protection started plus
  an optional per-VM offset; a cycle at the seeding instant itself would carry nothing and is
  skipped). A cycle takes a point-in-time snapshot and ships every byte written since the previous
  one; once the transfer is complete the DR copy is consistent as of that snapshot, the *recovery
  point*. A cycle that comes due while the previous transfer is still running starts the moment
  it ends and carries everything written meanwhile, so a link that cannot keep up makes each
  transfer longer than the last and the data-loss window grows without bound. This is the
  behaviour vSphere Replication documents for its RPO setting (5 min to 24 h): it schedules
  transfers so that the replica is never older than the RPO, and when a transfer cannot finish
  inside that window it flags the replication as in RPO violation (its REST API reports
  ``RPO_VIOLATION``, the last sync time, duration and size per replication).
- Synchronous (``T = 0``): every write is shipped as it is made, so the recovery point is always
  now. The VM holds a continuous flow capped at ``w``; when the links give it less, the missing
  rate is reported as a shortfall (a real array would slow the VM's writes down instead).

All transfers and synchronous flows share the links max-min fairly (:func:`max_min_rates` over
:meth:`Links.to_site` paths), each with an optional cap of its own, on capacity reduced by any
background load. Rates change only when the set of flows, a host, a cap or the background does;
in between every transfer drains at a constant rate, so its completion time is known and its state
is kept as of the last recompute (a fluid queue). What grows with time for every VM (bytes written
since the snapshot, the data-loss integral) is kept as of a per-VM anchor and brought up to date
only for the VMs an event touches, so an event costs the flows in flight plus the VMs it concerns,
not every VM.

The simulation drives it through a small event API: after any call it asks
:meth:`Replication.next_event_at`, schedules a callback there and calls :meth:`Replication.fire`.
"""

from __future__ import annotations

import math

import numpy as np

from vsim.model.network import Links, link_load, max_min_rates

__all__ = ["Replication"]

# Events this close to ``now`` are due now: a callback scheduled at next_event_at() may come back
# an ulp early or late through the clock's additions.
_TOL_S = 1e-6


class Replication:
    """Replication of every protected VM to its target site, in arrays indexed by VM id.

    Calls with VMs that are not protected (target site -1) are ignored for replication, so a
    caller may pass all VMs of a host. Counters (``cycles``, ``bytes_sent``, ``shortfall_bytes``)
    are as of the last call; the queries take ``now`` and are exact at any time after it."""

    def __init__(self, links: Links, target_site: np.ndarray, interval_s: np.ndarray,
                 write_bytes_s: np.ndarray, max_rate: np.ndarray | None = None,
                 offset_s: np.ndarray | None = None) -> None:
        self.links = links
        self.target_site = np.asarray(target_site, dtype=np.int64)
        n = len(self.target_site)
        self.interval_s = np.asarray(interval_s, dtype=float)
        self.write_bytes_s = np.array(write_bytes_s, dtype=float)
        self.max_rate = np.full(n, math.inf) if max_rate is None else np.array(max_rate, float)
        self.offset_s = np.zeros(n) if offset_s is None else np.array(offset_s, dtype=float)
        self._check(n)
        self.protected = self.target_site >= 0
        self.sync = self.protected & (self.interval_s == 0)
        self._background = np.zeros(len(links.capacity))
        # Where each VM runs and whether it replicates now.
        self.host = np.full(n, -1, dtype=np.int64)
        self.running = np.zeros(n, dtype=bool)
        self.ended_s = np.full(n, math.nan)  # when a stopped VM stopped
        # Cycles: the grid origin, the next grid point, and when the next cycle starts (the grid
        # point, or inf while a transfer is in flight: a busy VM starts its next one at the end).
        self.phase_s = np.full(n, math.nan)
        self._grid_due_s = np.full(n, math.inf)
        self.due_s = np.full(n, math.inf)
        # The transfer in flight: its snapshot time, size, bytes left as of the flow anchor _t,
        # and when it will end at the current rate.
        self.in_flight = np.zeros(n, dtype=bool)
        self.snap_s = np.full(n, math.nan)
        self.size = np.zeros(n)
        self.left = np.zeros(n)
        self.finish_s = np.full(n, math.inf)
        self.rate_bytes_s = np.zeros(n)  # of the VM's flow (transfer or synchronous), 0 if none
        self._t = math.nan  # flow anchor: the last recompute
        self._flows = np.zeros(0, dtype=np.int64)
        self._paths = np.zeros((0, 6), dtype=np.int64)
        # Per-VM levels that grow with time, as of each VM's own anchor _seg_s: bytes written
        # since the last snapshot, ∫ (t - recovery point) dt, and time spent replicating.
        self._seg_s = np.zeros(n)
        self._pending = np.zeros(n)
        self._loss_int = np.zeros(n)
        self._run_s = np.zeros(n)
        # Results.
        self.rp = np.full(n, math.nan)  # async: last completed snapshot; sync: frozen at stop
        self._worst = np.full(n, math.nan)
        self.cycles = np.zeros(n, dtype=np.int64)
        self.bytes_sent = np.zeros(n)  # bytes that went over the wire, lost transfers included
        self.shortfall_bytes_s = np.zeros(n)
        self.shortfall_bytes = np.zeros(n)

    def _check(self, n: int) -> None:
        for name in ("interval_s", "write_bytes_s", "max_rate", "offset_s"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"replication: {name} has {len(getattr(self, name))} values for "
                                 f"{n} VMs; give one per VM")
        if np.any(self.target_site >= self.links.n_sites) or np.any(self.target_site < -1):
            raise ValueError(f"replication: target_site must be -1 (not protected) or a site "
                             f"index below {self.links.n_sites}")
        if not np.all(np.isfinite(self.interval_s) & (self.interval_s >= 0)):
            raise ValueError("replication: interval_s must be finite and >= 0 (0 = synchronous)")
        if not np.all(np.isfinite(self.write_bytes_s) & (self.write_bytes_s >= 0)):
            raise ValueError("replication: write_bytes_s must be finite and >= 0")
        if not np.all(self.max_rate > 0):
            raise ValueError("replication: max_rate must be > 0 (inf for no cap)")
        if not np.all(np.isfinite(self.offset_s) & (self.offset_s >= 0)):
            raise ValueError("replication: offset_s must be finite and >= 0")

    # -- the lazy state -------------------------------------------------------------------------

    def _settle_flows(self, now: float) -> None:
        """Move the flows from the last recompute to ``now``: their rates held in between."""
        if math.isnan(self._t):
            self._t = now
            return
        dt = now - self._t
        if dt < -_TOL_S:
            raise ValueError(f"replication: time went backwards from {self._t} to {now}")
        if dt <= 0:
            return
        f = self._flows
        rate = self.rate_bytes_s[f]
        # A transfer carries no more than it has left (an unlimited one finishes at once).
        carried = np.where(self.in_flight[f], np.minimum(rate * dt, self.left[f]), rate * dt)
        self.bytes_sent[f] += carried
        self.left[f] = np.where(self.in_flight[f], self.left[f] - carried, 0.0)
        self.shortfall_bytes[f] += self.shortfall_bytes_s[f] * dt
        self._t = now

    def _bring(self, vms: np.ndarray, now: float) -> None:
        """Bring these VMs' time-growing levels up to ``now`` (before their rate, recovery point
        or state changes)."""
        run = self.running[vms]
        dt = np.where(run, now - self._seg_s[vms], 0.0)
        asyn = run & ~self.sync[vms]
        self._pending[vms] += np.where(asyn, self.write_bytes_s[vms] * dt, 0.0)
        # The window t - rp rises linearly between events: its integral is a trapezoid.
        self._loss_int[vms] += np.where(asyn, dt * (self._seg_s[vms] - self.rp[vms] + dt / 2), 0.0)
        self._run_s[vms] += dt
        self._seg_s[vms] = now

    def _recompute(self, now: float) -> None:
        """Max-min fair rates of all flows, and the completion times they give."""
        old = self._flows
        flows = np.flatnonzero(self.in_flight
                               | (self.running & self.sync & (self.write_bytes_s > 0)))
        sync = self.sync[flows]
        w = self.write_bytes_s[flows]
        caps = np.where(sync, np.minimum(w, self.max_rate[flows]), self.max_rate[flows])
        paths = self.links.to_site(self.host[flows], self.target_site[flows])
        capacity = np.maximum(self.links.capacity - self._background, 0.0)
        rates = max_min_rates(paths, caps, capacity)
        self.rate_bytes_s[old] = 0.0
        self.rate_bytes_s[flows] = rates
        self.shortfall_bytes_s[old] = 0.0
        self.shortfall_bytes_s[flows] = np.where(sync, np.maximum(w - rates, 0.0), 0.0)
        self._flows, self._paths = flows, paths
        left = self.left[flows]
        with np.errstate(divide="ignore", invalid="ignore"):
            # No rate at all (background took the link) never finishes; an infinite one at once.
            eta = np.where(left > 0, left / rates, 0.0)
        self.finish_s[flows] = np.where(sync, math.inf, now + eta)

    def _next_due(self, vms: np.ndarray, now: float) -> np.ndarray:
        """The first cycle of each VM's grid ``t0 + k·T`` (k >= 0) strictly after ``now``."""
        period, t0 = self.interval_s[vms], self.phase_s[vms]
        k = np.maximum(np.floor((now - t0) / period) + 1, 0)
        due = t0 + k * period
        return np.where(due <= now + _TOL_S, due + period, due)

    def _complete(self, vms: np.ndarray, now: float) -> None:
        """Transfers that ended: the DR copy is now consistent as of their snapshot."""
        self._bring(vms, now)  # the loss integral up to now is against the old recovery point
        self.bytes_sent[vms] += self.left[vms]  # rounding leftovers of the last interval
        # Just before a completion the window is at its largest since the previous one.
        self._worst[vms] = np.fmax(self._worst[vms], now - self.rp[vms])
        self.rp[vms] = self.snap_s[vms]
        self.cycles[vms] += 1
        self.in_flight[vms] = False
        self.left[vms] = 0.0
        self.size[vms] = 0.0
        self.finish_s[vms] = math.inf
        self.due_s[vms] = self._grid_due_s[vms]

    # -- what the simulation tells us -----------------------------------------------------------

    def start(self, vms: np.ndarray, hosts: np.ndarray, now: float) -> None:
        """Protection begins on these hosts. A VM never protected before is seeded (recovery point
        = now); one that was stopped resumes: its first cycle starts at once and ships all it
        wrote since its recovery point, like the delta resync real products run after a restart."""
        vms = np.asarray(vms, dtype=np.int64)
        hosts = np.asarray(hosts, dtype=np.int64)
        self._settle_flows(now)
        keep = self.protected[vms]
        vms, hosts = vms[keep], hosts[keep]
        if self.running[vms].any():
            raise ValueError(f"replication: VMs {vms[self.running[vms]].tolist()} are already "
                             "replicating; use move() for a change of host")
        self.host[vms] = hosts
        self.running[vms] = True
        self._seg_s[vms] = now
        self.ended_s[vms] = math.nan
        fresh = np.isnan(self.rp[vms])
        self._worst[vms[fresh]] = 0.0
        self.rp[vms[fresh]] = now
        self.rp[vms[self.sync[vms]]] = now  # nothing was written while it was stopped
        self.phase_s[vms] = now + self.offset_s[vms]
        asyn = ~self.sync[vms]
        self.due_s[vms[asyn & fresh]] = self._next_due(vms[asyn & fresh], now)
        self.due_s[vms[asyn & ~fresh]] = now
        if self.sync[vms].any():
            self._recompute(now)

    def move(self, vms: np.ndarray, hosts: np.ndarray, now: float) -> None:
        """VMs run on other hosts now: a transfer in flight carries on from the new host."""
        vms = np.asarray(vms, dtype=np.int64)
        self._settle_flows(now)
        self.host[vms] = np.asarray(hosts, dtype=np.int64)
        if (self.running[vms] & (self.in_flight[vms] | self.sync[vms])).any():
            self._recompute(now)

    def stop(self, vms: np.ndarray, now: float) -> None:
        """Replication ends (the host failed, the VM is gone): the transfer in flight is lost, the
        recovery point stays at the last completed cycle (a synchronous VM's at now)."""
        self._settle_flows(now)
        vms = np.unique(np.asarray(vms, dtype=np.int64))
        vms = vms[self.protected[vms] & self.running[vms]]
        if vms.size == 0:
            return
        self._bring(vms, now)
        asyn, sync = vms[~self.sync[vms]], vms[self.sync[vms]]
        self._worst[asyn] = np.fmax(self._worst[asyn], now - self.rp[asyn])
        # The lost snapshot's bytes still have to go over if the VM ever resumes.
        self._pending[asyn] += self.size[asyn]
        self.in_flight[vms] = False
        self.size[vms] = 0.0
        self.left[vms] = 0.0
        self.finish_s[vms] = math.inf
        self.due_s[vms] = math.inf
        self.rp[sync] = now
        self.running[vms] = False
        self.ended_s[vms] = now
        self._recompute(now)

    def set_write_rate(self, vms: np.ndarray, rates: np.ndarray, now: float) -> None:
        rates = np.asarray(rates, dtype=float)
        if not np.all(np.isfinite(rates) & (rates >= 0)):
            raise ValueError("replication: write rates must be finite and >= 0")
        vms = np.asarray(vms, dtype=np.int64)
        self._settle_flows(now)
        self._bring(vms, now)  # bytes written so far were at the old rate
        self.write_bytes_s[vms] = rates
        # Only a synchronous flow's cap follows the write rate; async writes just accumulate.
        if (self.running[vms] & self.sync[vms]).any():
            self._recompute(now)

    def set_background(self, per_link_bytes_s: np.ndarray, now: float) -> None:
        """Other traffic on each link (bytes/s, by link id): replication gets what is left."""
        bg = np.asarray(per_link_bytes_s, dtype=float)
        if bg.shape != self._background.shape:
            raise ValueError(f"replication: background needs one value per link "
                             f"({len(self._background)}), got shape {bg.shape}")
        self._settle_flows(now)
        self._background = bg.copy()
        self._recompute(now)

    # -- events ---------------------------------------------------------------------------------

    def next_event_at(self) -> float:
        """The next transfer completion or cycle start (inf if none). Ask again after any call."""
        if len(self.due_s) == 0:
            return math.inf
        return float(min(self.finish_s.min(), self.due_s.min()))

    def fire(self, now: float) -> None:
        """Complete the transfers and start the cycles due at ``now``, then share the links once
        for all of them (many VMs on the same grid start together)."""
        self._settle_flows(now)
        changed = False
        done = np.flatnonzero(self.finish_s <= now + _TOL_S)
        if done.size:
            self._complete(done, now)
            changed = True
        due = np.flatnonzero(self.due_s <= now + _TOL_S)
        if due.size:
            self._bring(due, now)
            size = self._pending[due]
            self._pending[due] = 0.0
            self.snap_s[due] = now
            self._grid_due_s[due] = self._next_due(due, now)
            empty = size <= 0
            # Nothing written since the last snapshot: the copy is current without a transfer.
            idle, busy = due[empty], due[~empty]
            self._worst[idle] = np.fmax(self._worst[idle], now - self.rp[idle])
            self.rp[idle] = now
            self.cycles[idle] += 1
            self.due_s[idle] = self._grid_due_s[idle]
            self.in_flight[busy] = True
            self.due_s[busy] = math.inf
            self.size[busy] = size[~empty]
            self.left[busy] = size[~empty]
            changed |= bool(busy.size)
        if changed:
            self._recompute(now)

    # -- queries --------------------------------------------------------------------------------

    def recovery_point(self, vms: np.ndarray, now: float) -> np.ndarray:
        """The time the DR copy is consistent as of: now for a synchronous VM replicating, the last
        completed snapshot for an asynchronous one, frozen once stopped; nan if never protected."""
        vms = np.asarray(vms, dtype=np.int64)
        return np.where(self.running[vms] & self.sync[vms], now, self.rp[vms])

    def data_loss_s(self, vms: np.ndarray, now: float) -> np.ndarray:
        """Writes a failure now would lose, in seconds (``now - recovery point``); a stopped VM
        wrote nothing after it stopped, so its window is frozen at its stop time."""
        vms = np.asarray(vms, dtype=np.int64)
        at = np.where(self.running[vms], now, self.ended_s[vms])
        return at - self.recovery_point(vms, now)

    def worst_data_loss_s(self, vms: np.ndarray, now: float) -> np.ndarray:
        vms = np.asarray(vms, dtype=np.int64)
        return np.fmax(self._worst[vms], self.data_loss_s(vms, now))

    def mean_data_loss_s(self, vms: np.ndarray, now: float) -> np.ndarray:
        """Time average of the data-loss window over the time each VM replicated."""
        vms = np.asarray(vms, dtype=np.int64)
        run = self.running[vms]
        seg = self._seg_s[vms]
        dt = np.where(run, np.maximum(now - seg, 0.0), 0.0)
        asyn = run & ~self.sync[vms]
        integral = self._loss_int[vms] + np.where(asyn, dt * (seg - self.rp[vms] + dt / 2), 0.0)
        span = self._run_s[vms] + dt
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(span > 0, integral / span, 0.0)
        return np.where(np.isnan(self.rp[vms]), math.nan, mean)

    def link_bytes_s(self) -> np.ndarray:
        """Replication's load on every link now (bytes/s, by link id)."""
        rates = self.rate_bytes_s[self._flows]
        rates = np.where(np.isinf(rates), 0.0, rates)  # an instant transfer occupies no time
        return link_load(self._paths, rates, len(self.links.capacity))
