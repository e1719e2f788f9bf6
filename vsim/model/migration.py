"""Live migration: iterative pre-copy with dirty pages, post-copy, and links shared max-min fairly.

Pre-copy (Clark et al., NSDI 2005) sends all of a VM's memory in round 0 (less its zero pages),
then in each next round the pages dirtied during the previous one: at the VM's dirty rate, but never
more than its writable working set. When what is left could be sent within the downtime limit, the
VM pauses and the rest goes over in a stop-and-copy (QEMU's rule, default 300 ms). A migration that
does not converge within the round or byte caps (Xen's style) is forced to stop-and-copy, aborted,
or switched to post-copy; with auto-converge the VM's vCPUs are throttled instead, from 20 % in 10 %
steps to 99 % whenever the dirty pages of two rounds exceed half of what was sent (QEMU's defaults).
Post-copy pauses the VM only to send its device state, resumes it on the destination and pulls the
pages over afterwards, the VM slowed by remote page faults until the last one has arrived.

Every migration in flight is a row of arrays indexed by VM id (a VM has one migration at most). A
round ending is not an event unless it changes something others see (the VM pauses, is throttled,
or the flow ends): between such events the rounds are rolled forward in closed steps, for all
migrations at once, so thousands of concurrent migrations cost a handful of array operations per
event. The rates of all flows come from :func:`max_min_rates` whenever the set of flows changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from vsim.model.network import Links, max_min_rates

__all__ = ["MigrationFabric", "MigrationParams", "Phase", "RoundEnd"]

MIB = 2.0**20


@dataclass(frozen=True)
class MigrationParams:
    """Every parameter of the migration model, in one place so that calibration can fit them."""

    model: str = "precopy"  # precopy | postcopy | ram-over-bandwidth (the peers' RAM / NIC)
    max_bandwidth_bytes_s: float = 128 * MIB  # QEMU's max-bandwidth per migration
    downtime_limit_s: float = 0.3  # QEMU's downtime-limit
    max_rounds: int | None = 30  # pre-copy rounds before the migration counts as not converging
    max_sent_ratio: float | None = None  # bytes sent / RAM before the same (Xen: 3)
    on_no_convergence: str = "force"  # force | abort | auto-converge | postcopy
    throttle_initial: float = 0.2  # QEMU cpu-throttle-initial
    throttle_increment: float = 0.1  # QEMU cpu-throttle-increment
    throttle_max: float = 0.99  # QEMU's CPU_THROTTLE_PCT_MAX
    throttle_trigger: float = 0.5  # QEMU throttle-trigger-threshold: dirtied / sent in a round
    zero_page_frac: float = 0.0  # share of RAM that is zero pages, not sent in round 0
    page_bytes: float = 4096.0
    page_overhead_bytes: float = 8.0  # header per page on the wire
    setup_s: float = 0.05  # connection, dirty logging on
    resume_s: float = 0.02  # the VM starting on the destination
    device_state_bytes: float = 1 * MIB  # vCPU and device state sent while the VM is paused
    cpu_cycles_per_byte: float = 1.0  # on each of source and destination, per byte sent
    postcopy_slowdown: float = 0.5  # share of a VM's CPU lost to remote page faults in post-copy
    dirty_follows_cpu: bool = True  # dirty rate scales with the VM's CPU utilisation
    max_per_host: int = 8  # concurrent migrations per host, in or out (vSphere: 8 at 10 GbE)
    max_total: float = math.inf  # concurrent migrations in the whole datacenter

    @property
    def wire_factor(self) -> float:
        return 1.0 + self.page_overhead_bytes / self.page_bytes


class Phase(IntEnum):
    NONE = 0
    WAITING = 1  # for a slot under the concurrency limits
    SETUP = 2  # timer
    PRECOPY = 3  # bytes of the current round
    STOPCOPY = 4  # bytes; VM paused
    RESUME = 5  # timer; VM paused, about to run on the destination
    SWITCHOVER = 6  # post-copy: device state, VM paused
    POSTCOPY = 7  # bytes; the VM runs on the destination, slowed by page faults


class RoundEnd(IntEnum):
    CONTINUE = 0
    STOP = 1  # converged: stop-and-copy
    THROTTLE = 2  # auto-converge steps the throttle up
    NO_CONVERGENCE = 3  # a cap was hit


TIMER = (Phase.SETUP, Phase.RESUME)
FLOWING = (Phase.PRECOPY, Phase.STOPCOPY, Phase.SWITCHOVER, Phase.POSTCOPY)
PAUSED = (Phase.STOPCOPY, Phase.RESUME, Phase.SWITCHOVER)
_EPS_S = 1e-9


@dataclass(frozen=True)
class Finished:
    """A migration that left the fabric, for the simulation to apply and record."""

    vm: int
    source: int
    dest: int
    requested_s: float
    began_s: float
    ended_s: float
    bytes: float
    rounds: int
    downtime_s: float
    throttle: float
    outcome: str  # completed, forced, aborted, abandoned
    postcopy: bool
    reason: str
    group: int


class MigrationFabric:
    """All migrations of a datacenter, their phases, rounds and shared link rates."""

    def __init__(self, params: MigrationParams, links: Links, ram_bytes: np.ndarray,
                 dirty_bytes_s: np.ndarray, wws_bytes: np.ndarray, net_bytes_s: np.ndarray,
                 vm_host: np.ndarray) -> None:
        self.p = params
        self.links = links
        self.ram = np.asarray(ram_bytes, dtype=float)
        self.dirty_max = np.asarray(dirty_bytes_s, dtype=float)
        self.wws = np.asarray(wws_bytes, dtype=float)
        self.net = np.asarray(net_bytes_s, dtype=float)
        self.vm_host = vm_host  # the datacenter's array: where each VM's traffic leaves
        if params.model == "ram-over-bandwidth":
            self.dirty_max = np.zeros_like(self.dirty_max)
        n = len(self.ram)
        self.phase = np.zeros(n, dtype=np.uint8)
        self.left = np.zeros(n)  # bytes of a byte phase, seconds of a timer phase
        self.rate = np.zeros(n)
        self.dirty = np.zeros(n)  # current dirty rate, B/s
        self.round = np.zeros(n, dtype=np.int64)
        self.round_bytes = np.zeros(n)
        self.round_elapsed = np.zeros(n)
        self.sent = np.zeros(n)
        self.post_bytes = np.zeros(n)  # what post-copy pulls after the switch-over
        self.throttle = np.zeros(n)
        self.high = np.zeros(n, dtype=np.int64)  # rounds in a row with a high dirty rate
        self.source = np.full(n, -1, dtype=np.int64)
        self.dest = np.full(n, -1, dtype=np.int64)
        self.group = np.full(n, -1, dtype=np.int64)
        self.requested = np.zeros(n)
        self.began = np.zeros(n)
        self.paused_since = np.full(n, np.nan)
        self.downtime = np.zeros(n)
        self.forced = np.zeros(n, dtype=bool)
        self.is_post = np.zeros(n, dtype=bool)
        self.reason: dict[int, str] = {}
        self.waiting: list[int] = []
        self.group_limit: dict[int, float] = {}
        self.busy = np.zeros(links.n_hosts, dtype=np.int64)  # migrations in or out per host
        self._ids = np.zeros(0, dtype=np.int64)
        self._changed_flows = True
        self._until = np.zeros(0)  # time to each active migration's next visible transition

    # --- what the simulation reads --------------------------------------------------------------

    @property
    def active(self) -> np.ndarray:
        """VMs with a migration past the waiting line."""
        return self._ids

    def in_phase(self, *phases: Phase) -> np.ndarray:
        ids = self._ids
        return ids[np.isin(self.phase[ids], phases)]

    def host_cpu_overhead_hz(self) -> np.ndarray:
        """CPU the migrations take on each host (sender and receiver) at the current rates."""
        ids = self.in_phase(*FLOWING)
        cycles = self.p.cpu_cycles_per_byte * self.rate[ids]
        n = self.links.n_hosts
        return (np.bincount(self.source[ids], weights=cycles, minlength=n)
                + np.bincount(self.dest[ids], weights=cycles, minlength=n))

    # --- requests and admission -----------------------------------------------------------------

    def request(self, vm: int, source: int, dest: int, now: float, reason: str,
                group: int = -1) -> None:
        self.phase[vm] = Phase.WAITING
        self.source[vm], self.dest[vm], self.group[vm] = source, dest, group
        self.requested[vm] = now
        self.reason[vm] = reason
        self.waiting.append(vm)

    def admit(self, now: float) -> list[int]:
        """Start waiting migrations, first come first served, as far as the limits allow."""
        started: list[int] = []
        if not self.waiting:
            return started
        total = len(self._ids)
        in_group: dict[int, int] = {}
        for g in self.group_limit:
            in_group[g] = int(np.count_nonzero(self.group[self._ids] == g))
        still: list[int] = []
        for vm in self.waiting:
            s, d, g = int(self.source[vm]), int(self.dest[vm]), int(self.group[vm])
            room = (total < self.p.max_total and self.busy[s] < self.p.max_per_host
                    and self.busy[d] < self.p.max_per_host
                    and in_group.get(g, 0) < self.group_limit.get(g, math.inf))
            if not room:
                still.append(vm)
                continue
            total += 1
            in_group[g] = in_group.get(g, 0) + 1
            self.busy[s] += 1
            self.busy[d] += 1
            self._begin(vm, now)
            started.append(vm)
        self.waiting = still
        if started:
            self._set_ids(np.union1d(self._ids, np.array(started, dtype=np.int64)))
        return started

    def _begin(self, vm: int, now: float) -> None:
        self.began[vm] = now
        self.phase[vm] = Phase.SETUP
        self.left[vm] = self.p.setup_s
        self.sent[vm] = 0.0
        self.round[vm] = -1  # no pre-copy round yet
        self.throttle[vm] = 0.0
        self.high[vm] = 0
        self.downtime[vm] = 0.0
        self.forced[vm] = False
        self.is_post[vm] = self.p.model == "postcopy"
        self.paused_since[vm] = np.nan

    # --- rates ------------------------------------------------------------------------------------

    def refresh_rates(self) -> None:
        """Link rates of the flows as they are now, recomputed only when the flows changed."""
        if self._changed_flows:
            self._rates()
            self._changed_flows = False

    def update(self, vm_cpu_frac: np.ndarray) -> None:
        """Dirty rates and the next transitions for the state as it is now; ``vm_cpu_frac`` is
        each VM's delivered CPU over its capacity (a paused VM dirties nothing)."""
        ids = self._ids
        self.refresh_rates()
        act = vm_cpu_frac[ids] if self.p.dirty_follows_cpu else 1.0 - self.throttle[ids]
        self.dirty[ids] = self.dirty_max[ids] * act
        self._until = self._time_to_visible(ids)

    def _rates(self) -> None:
        ids = self.in_phase(*FLOWING)
        self.rate[self._ids] = 0.0
        if ids.size == 0:
            return
        links = self.links
        if self.p.model == "ram-over-bandwidth":
            cap = links.capacity
            self.rate[ids] = np.minimum(cap[links.tx(self.source[ids])], cap[links.rx(self.dest[ids])])
            return
        paths = links.path(self.source[ids], self.dest[ids])
        caps = np.full(len(ids), self.p.max_bandwidth_bytes_s)
        # The VMs' own traffic on the NICs the migrations use competes with them (one flow per VM
        # and direction, capped at its demand); elsewhere it cannot change a migration's rate.
        nics = np.union1d(self.source[ids], self.dest[ids])
        talkers = np.flatnonzero(np.isin(self.vm_host, nics) & (self.net > 0))
        if talkers.size:
            host = self.vm_host[talkers].astype(np.int64)
            pad = np.full((2 * talkers.size, paths.shape[1]), -1, dtype=np.int64)
            pad[:talkers.size, 0] = links.tx(host)
            pad[talkers.size:, 0] = links.rx(host)
            paths = np.vstack([paths, pad])
            caps = np.concatenate([caps, self.net[talkers], self.net[talkers]])
        self.rate[ids] = max_min_rates(paths, caps, links.capacity)[:len(ids)]

    def flows_changed(self) -> None:
        """The VMs' traffic or placement changed: recompute rates at the next update."""
        self._changed_flows = True

    # --- rounds -----------------------------------------------------------------------------------

    def _round_end(self, ids: np.ndarray, elapsed: np.ndarray, sent_total: np.ndarray,
                   rounds_done: np.ndarray, high: np.ndarray, throttle: np.ndarray,
                   round_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What follows a pre-copy round: (decision, bytes dirtied meanwhile, high-rate count)."""
        p = self.p
        nxt = np.minimum(self.dirty[ids] * elapsed, self.wws[ids]) * p.wire_factor
        decision = np.full(len(ids), RoundEnd.CONTINUE, dtype=np.int8)
        rate = self.rate[ids]
        stop = nxt <= rate * p.downtime_limit_s
        capped = np.zeros(len(ids), dtype=bool)
        if p.max_rounds is not None:
            capped |= rounds_done >= p.max_rounds
        if p.max_sent_ratio is not None:
            capped |= sent_total >= p.max_sent_ratio * self.ram[ids]
        high = np.where(nxt > p.throttle_trigger * round_bytes, high + 1, 0)
        if p.on_no_convergence == "auto-converge":
            step = (high >= 2) & (throttle < p.throttle_max)
            decision[step] = RoundEnd.THROTTLE
            high = np.where(step, 0, high)
        decision[capped] = RoundEnd.NO_CONVERGENCE
        decision[stop] = RoundEnd.STOP
        return decision, nxt, high

    def _roll(self, ids: np.ndarray, horizon: float, commit: bool) -> np.ndarray:
        """Run the pre-copy rounds of ``ids`` forward by ``horizon`` seconds (or, for ``inf``,
        until each reaches a visible round end). Returns the time each spent before stopping at
        a visible round end (``horizon`` for those that did not reach one)."""
        left = self.left[ids].copy()
        rate = self.rate[ids]
        elapsed = self.round_elapsed[ids].copy()
        sent = self.sent[ids].copy()
        rounds = self.round[ids].copy()
        high = self.high[ids].copy()
        rbytes = self.round_bytes[ids].copy()
        used = np.zeros(len(ids))
        going = rate > 0
        stopped = np.zeros(len(ids), dtype=bool)
        while True:
            with np.errstate(divide="ignore", invalid="ignore"):
                to_end = np.where(going, left / rate, np.inf)
            ends = going & (used + to_end <= horizon + _EPS_S)
            if not ends.any():
                break
            e = np.flatnonzero(ends)
            used[e] += to_end[e]
            sent[e] += left[e]
            elapsed[e] += to_end[e]
            left[e] = 0.0
            decision, nxt, hi = self._round_end(ids[e], elapsed[e], sent[e], rounds[e] + 1,
                                                high[e], self.throttle[ids[e]], rbytes[e])
            cont = decision == RoundEnd.CONTINUE
            c = e[cont]
            left[c], rbytes[c], rounds[c], elapsed[c], high[c] = nxt[cont], nxt[cont], rounds[c] + 1, 0.0, hi[cont]
            visible = e[~cont]
            stopped[visible] = True
            going[visible] = False
        moving = going & ~stopped
        if math.isfinite(horizon):
            step = np.where(moving, horizon - used, 0.0)
            left[moving] -= rate[moving] * step[moving]
            sent[moving] += rate[moving] * step[moving]
            elapsed[moving] += step[moving]
            left[moving] = np.maximum(left[moving], 0.0)
            used = np.where(stopped, used, horizon)
        else:
            used = np.where(stopped, used, np.inf)
        if commit:
            self.left[ids], self.round_elapsed[ids], self.sent[ids] = left, elapsed, sent
            self.round[ids], self.high[ids], self.round_bytes[ids] = rounds, high, rbytes
        return used

    def _time_to_visible(self, ids: np.ndarray) -> np.ndarray:
        until = np.full(len(ids), np.inf)
        ph = self.phase[ids]
        timer = np.isin(ph, TIMER)
        until[timer] = self.left[ids[timer]]
        flat = np.isin(ph, (Phase.STOPCOPY, Phase.SWITCHOVER, Phase.POSTCOPY))
        with np.errstate(divide="ignore"):
            until[flat] = self.left[ids[flat]] / self.rate[ids[flat]]
        pre = ph == Phase.PRECOPY
        if pre.any():
            until[pre] = self._roll(ids[pre], math.inf, commit=False)
        return until

    def next_event_in(self) -> float:
        """Time until the next visible transition of any migration (inf: none)."""
        return float(self._until.min()) if self._until.size else math.inf

    def advance(self, dt: float) -> None:
        """Move every migration on by ``dt`` seconds (no visible transition lies inside)."""
        ids = self._ids
        if ids.size == 0 or dt <= 0:
            return
        self._until = self._until - dt
        ph = self.phase[ids]
        timer = ids[np.isin(ph, TIMER)]
        self.left[timer] = np.maximum(self.left[timer] - dt, 0.0)
        flat = ids[np.isin(ph, (Phase.STOPCOPY, Phase.SWITCHOVER, Phase.POSTCOPY))]
        moved = np.minimum(self.rate[flat] * dt, self.left[flat])
        self.left[flat] -= moved
        self.sent[flat] += moved
        pre = ids[ph == Phase.PRECOPY]
        if pre.size:
            self._roll(pre, dt, commit=True)

    # --- visible transitions ----------------------------------------------------------------------

    def fire(self, now: float) -> list[Finished]:
        """Apply the transitions due now; returns the migrations that left the fabric."""
        ids = self._ids
        tol = max(_EPS_S, 1e-13 * now)
        due = ids[self._until <= tol] if ids.size else ids
        finished: list[Finished] = []
        p = self.p
        body = (1.0 - p.zero_page_frac) * p.wire_factor
        device = 0.0 if p.model == "ram-over-bandwidth" else p.device_state_bytes
        for vm in due.tolist():
            ph = self.phase[vm]
            if ph == Phase.SETUP:
                if self.is_post[vm]:
                    self.post_bytes[vm] = self.ram[vm] * body
                    self._pause(vm, Phase.SWITCHOVER, device, now)
                else:
                    self.phase[vm] = Phase.PRECOPY
                    self.round[vm] = 0
                    self.left[vm] = self.round_bytes[vm] = self.ram[vm] * body
                    self.round_elapsed[vm] = 0.0
                self._changed_flows = True
            elif ph == Phase.PRECOPY:
                one = np.array([vm])
                decision, nxt, high = self._round_end(
                    one, self.round_elapsed[one], self.sent[one], self.round[one] + 1,
                    self.high[one], self.throttle[one], self.round_bytes[one])
                d, n = RoundEnd(int(decision[0])), float(nxt[0])
                self.high[vm] = int(high[0])
                if d == RoundEnd.NO_CONVERGENCE:
                    action = p.on_no_convergence
                    if action == "abort":
                        finished.append(self._release(vm, now, "aborted"))
                        continue
                    if action == "postcopy":
                        self.is_post[vm] = True
                        self.post_bytes[vm] = n
                        self._pause(vm, Phase.SWITCHOVER, device, now)
                        continue
                    self.forced[vm] = True
                    d = RoundEnd.STOP
                if d == RoundEnd.STOP:
                    self._pause(vm, Phase.STOPCOPY, n + device, now)
                else:  # throttle step, then the next round
                    t = self.throttle[vm]
                    self.throttle[vm] = p.throttle_initial if t == 0 else min(t + p.throttle_increment,
                                                                              p.throttle_max)
                    self.round[vm] += 1
                    self.left[vm] = self.round_bytes[vm] = n
                    self.round_elapsed[vm] = 0.0
            elif ph in (Phase.STOPCOPY, Phase.SWITCHOVER):
                self.sent[vm] += self.left[vm]
                self.phase[vm] = Phase.RESUME
                self.left[vm] = p.resume_s
                self._changed_flows = True
            elif ph == Phase.RESUME:
                self.downtime[vm] += now - self.paused_since[vm]
                self.paused_since[vm] = np.nan
                if self.is_post[vm] and self.post_bytes[vm] > 0:
                    self.phase[vm] = Phase.POSTCOPY
                    self.left[vm] = self.post_bytes[vm]
                    self.post_bytes[vm] = 0.0
                    self._changed_flows = True
                else:
                    finished.append(self._release(vm, now, "forced" if self.forced[vm] else "completed"))
            elif ph == Phase.POSTCOPY:
                self.sent[vm] += self.left[vm]
                finished.append(self._release(vm, now, "completed"))
        if due.size:
            self._until = np.full(len(self._ids), np.inf)  # stale until the next update()
        return finished

    def _set_ids(self, ids: np.ndarray) -> None:
        # Predictions are stale until the next update(); the simulation calls it before it asks.
        self._ids = ids
        self._until = np.full(len(ids), np.inf)
        self._changed_flows = True

    def _pause(self, vm: int, phase: Phase, nbytes: float, now: float) -> None:
        self.phase[vm] = phase
        self.left[vm] = nbytes
        self.paused_since[vm] = now

    def _release(self, vm: int, now: float, outcome: str) -> Finished:
        s, d = int(self.source[vm]), int(self.dest[vm])
        if self.phase[vm] != Phase.WAITING:
            self.busy[s] -= 1
            self.busy[d] -= 1
            self._set_ids(self._ids[self._ids != vm])
        if not math.isnan(self.paused_since[vm]):
            self.downtime[vm] += now - self.paused_since[vm]
        started = self.phase[vm] != Phase.WAITING
        rec = Finished(vm, s, d, float(self.requested[vm]),
                       float(self.began[vm]) if started else now, now,
                       float(self.sent[vm]), int(self.round[vm]) + 1 if started else 0,
                       float(self.downtime[vm]), float(self.throttle[vm]), outcome,
                       bool(self.is_post[vm]), self.reason.pop(vm, ""), int(self.group[vm]))
        self.phase[vm] = Phase.NONE
        self.rate[vm] = 0.0
        self.throttle[vm] = 0.0
        self.paused_since[vm] = np.nan
        return rec

    def cancel(self, vms: np.ndarray, now: float) -> list[Finished]:
        """The VMs departed: their migrations, waiting or under way, are abandoned."""
        gone = [int(vm) for vm in vms if self.phase[vm] != Phase.NONE]
        if not gone:
            return []
        waiting = set(self.waiting)
        self.waiting = [vm for vm in self.waiting if vm not in set(gone)]
        out = []
        for vm in gone:
            if vm in waiting:
                self.phase[vm] = Phase.WAITING
            out.append(self._release(vm, now, "abandoned"))
        return out

    def run_alone(self, now: float = 0.0, vm_cpu_frac: np.ndarray | None = None) -> list[Finished]:
        """Drive the requested migrations to their end with nothing else happening (the VMs'
        CPU activity constant): for tests, benchmarks and quick what-ifs."""
        frac = np.ones(len(self.ram)) if vm_cpu_frac is None else vm_cpu_frac
        done: list[Finished] = []
        self.admit(now)
        while len(self._ids):
            self.update(frac * (1.0 - self.throttle))
            dt = self.next_event_in()
            if not math.isfinite(dt):
                raise RuntimeError("migrations can make no progress (a rate is zero)")
            self.advance(dt)
            now += dt
            done += self.fire(now)
            self.admit(now)
        return done

    def check_invariants(self, migrating: np.ndarray) -> None:
        """Raise AssertionError when the fabric disagrees with the datacenter (used by tests):
        ``migrating`` marks the VMs the datacenter has in migration."""
        assert np.array_equal(self.phase != Phase.NONE, migrating), "fabric and VM states agree"
        ids = self._ids
        assert set(ids.tolist()).isdisjoint(self.waiting), "a migration waits or runs, not both"
        assert np.all(self.phase[ids] > Phase.WAITING) and np.all(self.phase[self.waiting] == Phase.WAITING)
        busy = (np.bincount(self.source[ids], minlength=len(self.busy))
                + np.bincount(self.dest[ids], minlength=len(self.busy)))
        assert np.array_equal(busy, self.busy), "per-host migration counts match"
        assert np.all(self.busy <= self.p.max_per_host), "per-host limit holds"
        assert np.all(self.left[ids] >= 0) and np.all(self.rate[ids] >= 0)
