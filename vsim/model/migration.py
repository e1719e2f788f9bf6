"""Live migration: many migrations in flight, over links shared max-min fairly.

The round arithmetic of pre-copy and the parameters are in :mod:`vsim.model.precopy`. Here is the
rest: requests waiting for a slot under the concurrency limits, the phases a migration goes through
(setup, pre-copy rounds, stop-and-copy, resume; or post-copy's switch-over and page pulling), the
rates of all flows from :func:`max_min_rates` whenever the set of flows changes, and the record of
each migration when it ends. Post-copy pauses the VM only to send its device state, resumes it on
the destination and pulls the pages over afterwards, the VM slowed by remote page faults until the
last one has arrived.

Every migration in flight is a row of arrays indexed by VM id (a VM has one migration at most),
kept up to date lazily, so that an instant costs in proportion to the migrations it touches. The
per-instant work has two builds with the same results: array operations here, and scalar loops
over the same arrays in :mod:`vsim.model.kernels` (compiled), which also leave the predictions of
migrations whose rate changed pending behind a lower bound until they are needed. While one link
holds every one of many flows, the kernels keep that link's byte clock instead of bringing every
copy up to date at each change of rate (:mod:`vsim.model.kernels.bottleneck`); the results then
agree with the array build's to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from vsim.model import kernels
from vsim.model.datacenter import Datacenter
from vsim.model.network import Links, link_load, max_min_rates
from vsim.model.precopy import (
    EPS_S,
    IS_FLOWING,
    IS_PAUSED,
    PHASE_POSTCOPY,
    PHASE_PRECOPY,
    PHASE_RESUME,
    PHASE_SETUP,
    PHASE_STOPCOPY,
    PHASE_SWITCHOVER,
    ROUND_NO_CONVERGENCE,
    ROUND_STOP,
    MigrationParams,
    Phase,
    PrecopyRounds,
    phase_table,
)

PHASE_NONE, PHASE_WAITING = int(Phase.NONE), int(Phase.WAITING)  # ints: cheaper than members

__all__ = ["IS_PAUSED", "Finished", "MigrationFabric", "MigrationParams", "Phase", "fabric_for"]

# The next transitions are kept with the least of each block of this many VMs, so that finding
# the next one, or those due now, reads one value per block and the few blocks that hold them.
DUE_BLOCK = 64
# Flows from which the compiled kernels keep a shared byte clock while one link holds them all
# (vsim.model.kernels.bottleneck), instead of bringing every copy up to date at each change of
# rate. It saves O(flows) per change; below a few hundred flows that is little, and every copy
# is then caught up as the numpy build does it, so their results stay the same to the last bit.
SHARE_FROM = 512


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


class MigrationFabric(PrecopyRounds):
    """All migrations of a datacenter, their phases, rounds and shared link rates."""

    share_from = SHARE_FROM

    def __init__(self, params: MigrationParams, links: Links, ram_bytes: np.ndarray,
                 dirty_bytes_s: np.ndarray, wws_bytes: np.ndarray, net_bytes_s: np.ndarray,
                 vm_host: np.ndarray, net_follows_cpu: np.ndarray | None = None) -> None:
        self.dirty_max = np.asarray(dirty_bytes_s, dtype=float)
        if params.model == "ram-over-bandwidth":
            # The peers' model: RAM over the slower NIC and nothing else.
            params = replace(params, setup_s=0.0, resume_s=0.0, device_state_bytes=0.0,
                             page_overhead_bytes=0.0, zero_page_frac=0.0, cpu_cycles_per_byte=0.0,
                             round0_tail_bytes=0.0, fresh_page_bytes_s=math.inf)
            self.dirty_max = np.zeros_like(self.dirty_max)
        self.p = params
        self.links = links
        self.ram = np.asarray(ram_bytes, dtype=float)
        self.wws = np.asarray(wws_bytes, dtype=float)
        self.net = np.asarray(net_bytes_s, dtype=float)
        self.vm_host = vm_host  # the datacenter's array: where each VM's traffic leaves
        self._senders = np.flatnonzero(self.net > 0)
        # VMs whose traffic scales with their CPU demand (from their trace), and that scale now.
        self.net_follows_cpu = (np.zeros(len(self.net), dtype=bool) if net_follows_cpu is None
                                else np.asarray(net_follows_cpu, dtype=bool))
        self.net_scale = np.ones(len(self.net))
        self._limited = np.append(np.isfinite(links.capacity), False)  # [-1]: padding
        # The limited links of each migration's flow, found when it starts, listed first: the
        # rows are cut to the widest for max-min.
        self._path_rows = np.full((len(ram_bytes), 6), -1, dtype=np.int64)
        self._path_width = 1
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
        self.first_copy = np.zeros(n)  # bytes of round 0 left to the pause: new to the destination
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
        self._ids = self._no_ids = np.zeros(0, dtype=np.int64)
        self.touched = self._ids
        self.rate_changed = self._ids
        self.instants = 0  # instants with a visible transition
        self._changed_flows = True
        self._recapped: list[int] = []  # flows whose cap changed at their pause, not yet priced
        self._flow_moved: list[int] = []  # VMs whose flow started or ended since then
        # Each migration's state is kept as of its own anchor time and brought up to date only
        # when needed (its transition, or a change of its rate or dirty rate), so that an event
        # costs in proportion to the migrations it touches. ``due_at``: its next visible
        # transition (inf for a VM with none under way); ``_seen_*``: what that prediction rests
        # on; ``_maybe_stale``: VMs whose prediction may no longer hold, since the last update().
        self.anchor = np.zeros(n)
        blocks = -(-n // DUE_BLOCK)
        self._due_rows = np.full((blocks, DUE_BLOCK), np.inf)
        self._due_min = np.full(blocks, np.inf)  # the least of each row
        self._fresh = np.zeros(n, dtype=bool)
        self._seen_rate = np.zeros(n)
        self._maybe_stale: list[np.ndarray] = []
        # What the compiled fire() leaves for the Python one: VMs, decisions, bytes.
        self._fire_buffers = (np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
                              np.empty(n, dtype=np.int8), np.empty(n))

    # --- what the simulation reads --------------------------------------------------------------

    @property
    def due_at(self) -> np.ndarray:
        """Each VM's next visible transition (a view of the rows of DUE_BLOCK VMs)."""
        return self._due_rows.reshape(-1)[:len(self.ram)]

    @property
    def active(self) -> np.ndarray:
        """VMs with a migration past the waiting line."""
        return self._ids

    def in_phase(self, *phases: Phase) -> np.ndarray:
        ids = self._ids
        return ids[phase_table(phases)[self.phase[ids]]]

    def flowing(self) -> np.ndarray:
        ids = self._ids
        return ids[IS_FLOWING[self.phase[ids]]]

    def host_cpu_overhead_hz(self) -> np.ndarray:
        """CPU the migrations take on each host (sender and receiver) at the current rates."""
        ids = self.flowing()
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

    def admit(self, now: float, ready: np.ndarray | None = None) -> list[int]:
        """Start waiting migrations, first come first served, as far as the limits allow and
        their destinations are ``ready`` (a mask over hosts; None: all are)."""
        started: list[int] = []
        if not self.waiting:
            return started
        total = len(self._ids)
        limit_total, limit_host = self.p.max_total, self.p.max_per_host
        if total >= limit_total:
            return started
        in_group = {g: int(np.count_nonzero(self.group[self._ids] == g)) for g in self.group_limit}
        busy = self.busy.tolist()  # scalar work on Python ints: cheaper than numpy scalars
        ok = ready.tolist() if ready is not None else None
        waiting = np.array(self.waiting, dtype=np.int64)
        still: list[int] = []
        for vm, s, d, g in zip(self.waiting, self.source[waiting].tolist(),
                               self.dest[waiting].tolist(), self.group[waiting].tolist(), strict=True):
            if (total >= limit_total or busy[s] >= limit_host or busy[d] >= limit_host
                    or (ok is not None and not ok[d])
                    or in_group.get(g, 0) >= self.group_limit.get(g, math.inf)):
                still.append(vm)
                continue
            total += 1
            in_group[g] = in_group.get(g, 0) + 1
            busy[s] += 1
            busy[d] += 1
            self._begin(vm, now)
            started.append(vm)
        self.waiting = still
        if started:
            self.busy[:] = busy
            new = np.array(started, dtype=np.int64)
            rows = self._limited_paths(new)
            if kernels.COMPILED:
                self._count_moved_flows()
            self._path_rows[new] = rows
            self._path_width = max(self._path_width, int((rows >= 0).sum(axis=1).max()))
            self._fresh[new] = False  # predicted at the next update()
            self._maybe_stale.append(new)
            self._ids = np.sort(np.concatenate([self._ids, new]))
        return started

    def _begin(self, vm: int, now: float) -> None:
        self.began[vm] = self.anchor[vm] = now
        self.phase[vm] = Phase.SETUP
        self.left[vm] = self.p.setup_s
        self.sent[vm] = 0.0
        self.round[vm] = -1  # no pre-copy round yet
        self.throttle[vm] = 0.0
        self.high[vm] = 0
        self.downtime[vm] = 0.0
        self.forced[vm] = False
        self.first_copy[vm] = 0.0
        self.is_post[vm] = self.p.model == "postcopy"
        self.paused_since[vm] = np.nan

    # --- rates ------------------------------------------------------------------------------------

    def refresh_rates(self, now: float) -> None:
        """Link rates of the flows as they are now, recomputed only when the flows changed."""
        self.rate_changed = self._no_ids
        if self._recapped:
            self._changed_flows |= self._cap_matters(self._recapped)
            self._recapped = []
        if self._changed_flows and kernels.COMPILED:  # the same, one flow at a time
            self._changed_flows = False
            k = self._kernel()
            out = np.empty(len(self._ids), dtype=np.int64)
            self._count_moved_flows()
            if k.shared:  # one link holds every flow: its share moves, unless that ends here
                stale = np.empty(len(self._ids), dtype=np.int64)
                n = k.shared_rates(self._ids, now, out, stale) if self._may_share() else -1
                if n >= 0:
                    self.rate_changed = out[:n]
                    if k.n_stale:
                        self._maybe_stale.append(stale[:k.n_stale])
                    return
                k.leave(self._ids, now)
            self.rate_changed = out[:k.move_rates(self._ids, self._new_rates(), now, out)]
            if self.rate_changed.size:
                self._maybe_stale.append(self.rate_changed)
            if len(self._ids) >= k.share_from and self._may_share():
                k.try_share(self._ids, self._path_width, now)
        elif self._changed_flows:
            old = self._rates()
            self._changed_flows = False
            self._flow_moved = []  # counted by the kernels only
            # What the flows whose rate changed sent so far, at their old rates; the others are
            # brought up to date when next touched, as their prediction still holds.
            moved = self.rate_changed
            if moved.size:
                self._maybe_stale.append(moved)
                new = self.rate[moved]
                self.rate[moved] = old
                self._catch_up(moved, now)
                self.rate[moved] = new

    def update(self, now: float, vm_cpu_hz: np.ndarray, vm_capacity_hz: np.ndarray,
               changed: np.ndarray | None = None) -> None:
        """Dirty rates and the next transitions for the state as it is now, given each VM's
        delivered CPU and its capacity (a paused VM dirties nothing). ``changed``: the VMs whose
        CPU or capacity may differ from the last call (None: any); naming them spares a look at
        every migration when an instant touched few."""
        self.refresh_rates(now)
        if kernels.COMPILED:  # the same, one migration at a time, predictions made when needed
            if changed is None:
                ids = self._ids
            else:
                ids = np.asarray(changed, dtype=np.int64)
                if self._maybe_stale:
                    ids = np.concatenate([ids, *self._maybe_stale])
            self._maybe_stale = []
            self._kernel().refresh(ids, now, np.asarray(vm_cpu_hz, dtype=float),
                                   np.asarray(vm_capacity_hz, dtype=float))
            return
        ids = self._ids if changed is None else self._candidates(changed)
        self._maybe_stale = []
        cap = vm_capacity_hz[ids]
        act = (np.divide(vm_cpu_hz[ids], cap, out=np.zeros(len(ids)), where=cap > 0)
               if self.p.dirty_follows_cpu else 1.0 - self.throttle[ids])
        dirty = self.dirty_max[ids] * act
        # Predict again only where something the prediction rests on has changed.
        changed = ~self._fresh[ids] | (self.rate[ids] != self._seen_rate[ids]) | (dirty != self.dirty[ids])
        stale = ids[changed]
        if stale.size:
            self._catch_up(stale, now)  # at the old dirty rates
            self.dirty[stale] = dirty[changed]
            self._set_due(stale, now + self._time_to_visible(stale))
            self._seen_rate[stale] = self.rate[stale]
            self._fresh[stale] = True

    def _candidates(self, changed: np.ndarray) -> np.ndarray:
        """The migrations under way whose prediction may not hold: ``changed`` and
        ``_maybe_stale``, ascending."""
        parts = [np.asarray(changed, dtype=np.int64), *self._maybe_stale]
        if sum(len(part) for part in parts) * 8 > len(self._ids):  # many: a mask over all
            mark = np.zeros(len(self.phase), dtype=bool)
            for part in parts:
                mark[part] = True
            return self._ids[mark[self._ids]]
        ids = np.unique(np.concatenate(parts))
        return ids[self.phase[ids] >= PHASE_SETUP]  # under way

    def _cap_matters(self, vms: list[int]) -> bool:
        """Whether the new caps of these paused flows can change any rate. A flow held below its
        old cap by a link stays held there under a cap no lower than its rate, and max-min rates
        are unique: the others' are what they were. Only a flow held by its cap is priced again."""
        p = self.p
        return any(not (r < p.max_bandwidth_bytes_s and r <= p.switchover_bandwidth_bytes_s)
                   for r in self.rate[vms].tolist())

    def _rates(self) -> np.ndarray:
        """Assign the rates; returns the old rates of those that changed (``rate_changed``)."""
        before = self.rate[self._ids].copy()
        self.rate[self._ids] = self._new_rates()
        # Whose rate changed, so whose hosts spend a different CPU share on copying.
        changed = self.rate[self._ids] != before
        self.rate_changed = self._ids[changed]
        return before[changed]

    def _new_rates(self) -> np.ndarray:
        """The rates of the migrations under way (``active``) for the flows as they are now."""
        active = self._ids
        new = np.zeros(len(active))
        flowing = IS_FLOWING[self.phase[active]]
        ids = active[flowing]
        if ids.size:
            new[flowing] = self._flow_rates(ids)
        return new

    def _flow_rates(self, ids: np.ndarray) -> np.ndarray:
        """The rates of the flows of ``ids`` (migrations in a flowing phase)."""
        links = self.links
        if self.p.model == "ram-over-bandwidth":
            cap = links.capacity
            return np.minimum(cap[links.tx(self.source[ids])], cap[links.rx(self.dest[ids])])
        # All flows at once: with host NICs chained by migrations in and out, the flows form
        # one connected graph in practice, so splitting it would not save work.
        p = self.p
        caps = np.full(len(ids), p.max_bandwidth_bytes_s)
        if p.switchover_bandwidth_bytes_s != p.max_bandwidth_bytes_s:
            caps[IS_PAUSED[self.phase[ids]]] = p.switchover_bandwidth_bytes_s
        if kernels.COMPILED and not self._senders.size:  # the same, reading the flows' rows
            return np.asarray(kernels.max_min_rows(self._path_rows, ids, self._path_width, caps,
                                                   links.capacity))
        paths = self._paths(ids)
        # The VMs' own traffic on the NICs the migrations use competes with them (one flow per VM
        # and direction, capped at its demand); elsewhere it cannot change a migration's rate.
        if self._senders.size:
            talkers = self._talkers_on(np.union1d(self.source[ids], self.dest[ids]))
            host = self.vm_host[talkers].astype(np.int64)
            pad = np.full((2 * talkers.size, paths.shape[1]), -1, dtype=np.int64)
            pad[:talkers.size, 0] = links.tx(host)
            pad[talkers.size:, 0] = links.rx(host)
            paths = np.vstack([paths, pad])
            traffic = self.net[talkers] * self.net_scale[talkers]
            caps = np.concatenate([caps, traffic, traffic])
        return max_min_rates(paths, caps, links.capacity)[:len(ids)]

    def _paths(self, vms: np.ndarray) -> np.ndarray:
        """The limited links of the flows of ``vms`` (unlimited ones constrain nothing)."""
        return self._path_rows[vms, :self._path_width]

    def _limited_paths(self, vms: np.ndarray) -> np.ndarray:
        paths = self.links.path(self.source[vms], self.dest[vms])
        paths = np.where(self._limited[paths], paths, -1)
        return np.take_along_axis(paths, np.argsort(paths < 0, axis=1, kind="stable"), axis=1)

    def _talkers_on(self, hosts: np.ndarray) -> np.ndarray:
        """VMs with traffic of their own on ``hosts``."""
        if self._senders.size == 0:
            return self._senders
        on = np.zeros(self.links.n_hosts + 1, dtype=bool)
        on[hosts] = True
        return self._senders[on[self.vm_host[self._senders]]]  # host -1 (none) reads the pad

    def traffic_follows(self, vm_cpu_demand_frac: np.ndarray) -> None:
        """VMs whose traffic follows their CPU demand send that share of their ``network`` now;
        rates are recomputed when that changed for a VM with traffic."""
        follow = self._senders[self.net_follows_cpu[self._senders]]
        if follow.size == 0:
            return
        scale = vm_cpu_demand_frac[follow]
        if not np.array_equal(scale, self.net_scale[follow]):
            self.net_scale[follow] = scale
            self._changed_flows = True

    def link_bytes_s(self) -> np.ndarray:
        """The migrations' load on every link now (bytes/s, by link id)."""
        ids = self.flowing() if self.active.size else np.zeros(0, dtype=np.int64)
        return link_load(self.links.path(self.source[ids], self.dest[ids]), self.rate[ids],
                         len(self.links.capacity))

    def set_own_traffic(self, vms: np.ndarray, bytes_s: np.ndarray) -> None:
        """The VMs' own traffic (each way) is now ``bytes_s`` (a trace moved on)."""
        if np.array_equal(self.net[vms], bytes_s):
            return
        self.net[vms] = bytes_s
        self._senders = np.flatnonzero(self.net > 0)
        self._changed_flows = True

    def flows_changed(self) -> None:
        """The VMs' placement changed: with VM traffic, recompute the rates at the next update."""
        if self._senders.size:
            self._changed_flows = True

    def _flow_event(self, vm: int) -> None:
        """The flow of ``vm`` starts or ends: every rate may change."""
        self._changed_flows = True
        self._flow_moved.append(vm)

    def _may_share(self) -> bool:
        """Whether the rates can be those of one link's share (the compiled kernels keep its
        byte clock then: :mod:`vsim.model.kernels.bottleneck`): not with the VMs' own traffic
        on the links, nor under the peers' model, which prices each flow alone."""
        return self.p.model != "ram-over-bandwidth" and not self._senders.size

    def _count_moved_flows(self) -> None:
        """Count the flows that started or ended since the rates were last set, while their
        rows of links are still theirs (a VM's row is rewritten when it migrates again). Only
        the kernels' byte clock keeps counts; outside it, they are taken anew when it starts."""
        k = self._kernel()
        if self._flow_moved and k.shared:
            k.count_flows(np.array(self._flow_moved, dtype=np.int64), self._path_width)
        self._flow_moved = []

    # --- rounds -----------------------------------------------------------------------------------

    def _set_due(self, vms: np.ndarray, when: np.ndarray | float) -> None:
        """Set the next transitions of ``vms`` (ascending) and the least of their blocks."""
        self.due_at[vms] = when
        rows = vms // DUE_BLOCK
        if rows.size > 1:
            rows = rows[np.flatnonzero(np.diff(rows, prepend=-1))]
        self._due_min[rows] = self._due_rows[rows].min(axis=1)

    def next_event_at(self) -> float:
        """When the next visible transition of any migration happens (inf: none)."""
        if not self._ids.size:
            return math.inf
        if kernels.COMPILED:
            return self._kernel().next_due()
        return float(self._due_min.min())

    def fire(self, now: float) -> list[Finished]:
        """Apply the transitions due now; returns the migrations that left the fabric."""
        limit = now + max(EPS_S, 1e-13 * now)
        if kernels.COMPILED:  # the same, with throttle steps taken in the kernel
            n_due, r = self._kernel().fire(limit, now)
            return self._fired(now, n_due, r)
        rows = np.flatnonzero(self._due_min <= limit)
        row, col = np.nonzero(self._due_rows[rows] <= limit)
        due = rows[row] * DUE_BLOCK + col  # ascending, as only VMs under way have one
        self._catch_up(due, now)
        # The round-end decisions of all pre-copy migrations due now, at once.
        pre = due[self.phase[due] == PHASE_PRECOPY]
        decided = {}
        if pre.size:
            decision, nxt, high = self._decide(pre)
            self.high[pre] = high
            decided = dict(zip(pre.tolist(), zip(decision.tolist(), nxt.tolist(), strict=True),
                               strict=True))
        return self._apply(now, due, due.tolist(), decided)

    def _fired(self, now: float, n_due: int, r: int) -> list[Finished]:
        """:meth:`_apply` for what the kernels' fire() left in the buffers: ``n_due`` VMs due,
        the first ``r`` of ``rest`` with a transition of their own to apply."""
        out, rest, decision, nxt = self._fire_buffers
        todo = rest[:r].tolist() if r else []
        decided = (dict(zip(todo, zip(decision[:r].tolist(), nxt[:r].tolist(), strict=True),
                            strict=True)) if r else {})
        return self._apply(now, out[:n_due].copy(), todo, decided)

    def _apply(self, now: float, due: np.ndarray, todo: list[int],
               decided: dict[int, tuple[int, float]]) -> list[Finished]:
        """The transitions of ``todo`` (among ``due``, brought up to now), with the round-end
        decisions and bytes of those at one."""
        p = self.p
        self.instants += 1
        self.touched = due  # for the simulation: whose VMs and hosts changed
        finished: list[Finished] = []
        device = p.device_state_bytes
        for vm in todo:
            ph = int(self.phase[vm])
            if ph == PHASE_SETUP:
                body = (1.0 - p.zero_page_frac) * p.wire_factor  # RAM on the wire, less zero pages
                if self.is_post[vm]:
                    self.post_bytes[vm] = self.ram[vm] * body
                    self._pause(vm, PHASE_SWITCHOVER, device, now)
                else:
                    self.phase[vm] = PHASE_PRECOPY
                    self.round[vm] = 0
                    self.left[vm] = self.round_bytes[vm] = self.ram[vm] * body
                    self.round_elapsed[vm] = 0.0
                self._flow_event(vm)
            elif ph == PHASE_PRECOPY:
                d, n = decided[vm]
                if d == ROUND_NO_CONVERGENCE:
                    action = p.on_no_convergence
                    if action == "abort":
                        finished.append(self._release(vm, now, "aborted"))
                        continue
                    if action == "postcopy":
                        self.is_post[vm] = True
                        self.post_bytes[vm] = n
                        self._pause(vm, PHASE_SWITCHOVER, device, now)
                        continue
                    self.forced[vm] = True
                    d = ROUND_STOP
                if d == ROUND_STOP:
                    if self.round[vm] == 0:
                        self.first_copy[vm] = self.left[vm]
                    self._pause(vm, PHASE_STOPCOPY, n + device, now)
                else:  # throttle step, then the next round
                    t = self.throttle[vm]
                    self.throttle[vm] = p.throttle_initial if t == 0 else min(t + p.throttle_increment,
                                                                              p.throttle_max)
                    self.round[vm] += 1
                    self.left[vm] = self.round_bytes[vm] = n
                    self.round_elapsed[vm] = 0.0
            elif ph in (PHASE_STOPCOPY, PHASE_SWITCHOVER):
                self.sent[vm] += self.left[vm]
                self.phase[vm] = PHASE_RESUME
                self.left[vm] = p.resume_s + self.first_copy[vm] / p.fresh_page_bytes_s
                self.first_copy[vm] = 0.0
                self._flow_event(vm)
            elif ph == PHASE_RESUME:
                self.downtime[vm] += now - self.paused_since[vm]
                self.paused_since[vm] = np.nan
                if self.is_post[vm] and self.post_bytes[vm] > 0:
                    self.phase[vm] = PHASE_POSTCOPY
                    self.left[vm] = self.post_bytes[vm]
                    self.post_bytes[vm] = 0.0
                    self._flow_event(vm)
                else:
                    finished.append(self._release(vm, now, "forced" if self.forced[vm] else "completed"))
            elif ph == PHASE_POSTCOPY:
                self.sent[vm] += self.left[vm]
                finished.append(self._release(vm, now, "completed"))
        if not kernels.COMPILED:
            self._fresh[due] = False  # predicted again at the next update()
        self._maybe_stale.append(due)
        return finished


    def _pause(self, vm: int, phase: int, nbytes: float, now: float) -> None:
        self.phase[vm] = phase
        self.left[vm] = nbytes
        self.paused_since[vm] = now
        if self.p.switchover_bandwidth_bytes_s != self.p.max_bandwidth_bytes_s:
            self._recapped.append(vm)  # the paused VM's copy runs under another cap

    def _release(self, vm: int, now: float, outcome: str) -> Finished:
        s, d = int(self.source[vm]), int(self.dest[vm])
        if self.phase[vm] != PHASE_WAITING:
            self.busy[s] -= 1
            self.busy[d] -= 1
            i = int(np.searchsorted(self._ids, vm))
            self._ids = np.concatenate((self._ids[:i], self._ids[i + 1:]))
            if IS_FLOWING[self.phase[vm]]:
                self._flow_event(vm)
        if not math.isnan(self.paused_since[vm]):
            self.downtime[vm] += now - self.paused_since[vm]
        started = self.phase[vm] != PHASE_WAITING
        rec = Finished(vm, s, d, float(self.requested[vm]),
                       float(self.began[vm]) if started else now, now,
                       float(self.sent[vm]), int(self.round[vm]) + 1 if started else 0,
                       float(self.downtime[vm]), float(self.throttle[vm]), outcome,
                       bool(self.is_post[vm]), self.reason.pop(vm, ""), int(self.group[vm]))
        self.phase[vm] = PHASE_NONE
        if kernels.COMPILED:
            self._kernel().set_due(vm, math.inf)
        else:
            self._set_due(np.array([vm]), np.inf)
        self.rate[vm] = 0.0
        self.throttle[vm] = 0.0
        self.paused_since[vm] = np.nan
        return rec

    def cancel(self, vms: np.ndarray, now: float) -> list[Finished]:
        """The VMs departed: their migrations, waiting or under way, are abandoned."""
        gone = [int(vm) for vm in vms if self.phase[vm] != Phase.NONE]
        if not gone:
            return []
        self._catch_up(np.array(gone, dtype=np.int64), now)
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
        frac = np.ones(len(self.ram)) if vm_cpu_frac is None else np.asarray(vm_cpu_frac, dtype=float)
        cpu = frac * (1.0 - self.throttle)
        capacity = np.ones(len(self.ram))
        done: list[Finished] = []
        self.admit(now)
        changed = None
        while len(self._ids):
            self.update(now, cpu, capacity, changed)
            if kernels.COMPILED:
                # The instants whose transitions are all throttle steps are taken in the kernel,
                # with what update() would do next, up to the first with another transition.
                now, n_due, r, steps = self._kernel().steps_alone(frac, cpu, capacity)
                self.instants += steps
            else:
                now = self.next_event_at()
            if not math.isfinite(now):
                raise RuntimeError("migrations can make no progress: a rate is zero, or a migration "
                                   "never converges and no cap stops it")
            done += self._fired(now, n_due, r) if kernels.COMPILED else self.fire(now)
            started = self.admit(now)
            # Only the VMs whose migration moved on can have a new throttle.
            changed = (np.concatenate([self.touched, np.array(started, dtype=np.int64)])
                       if started else self.touched)
            cpu[changed] = frac[changed] * (1.0 - self.throttle[changed])
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


def fabric_for(dc: Datacenter, params: MigrationParams | None = None, *,
               site_fabric: np.ndarray | None = None, site_uplink: np.ndarray | None = None,
               dirty_bytes_s: np.ndarray | None = None, wws_bytes: np.ndarray | None = None,
               net_bytes_s: np.ndarray | None = None,
               net_follows_cpu: np.ndarray | None = None) -> MigrationFabric:
    """The migration fabric of ``dc``: its hosts' NICs, each site's fabric and uplink (default:
    unlimited), and per VM its dirty rate, writable working set and own traffic (default: VMs
    that dirty no memory, with no working-set cap, and send nothing)."""
    h, v = dc.hosts, dc.vms
    n_s = max(len(dc.site_names), int(h.site.max(initial=-1)) + 1)
    assert h.nic_bytes_s is not None  # Hosts fills in the default
    links = Links(h.nic_bytes_s, h.site,
                  np.full(n_s, np.inf) if site_fabric is None else site_fabric,
                  np.full(n_s, np.inf) if site_uplink is None else site_uplink)
    n = len(v)
    return MigrationFabric(
        params or MigrationParams(), links, v.ram_bytes,
        np.zeros(n) if dirty_bytes_s is None else dirty_bytes_s,
        np.full(n, np.inf) if wws_bytes is None else wws_bytes,
        np.zeros(n) if net_bytes_s is None else net_bytes_s, v.host, net_follows_cpu)
