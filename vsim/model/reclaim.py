"""The memory reclamation chain of an overcommitted host, and what it costs its VMs.

For every host whose memory is modelled, given the VMs that run there now, this finds the steady
state the hypervisor reaches (all hosts at once, with array operations):

1. Demand: each VM's configured memory (a guest that has run a while has touched all of it, with
   its page cache) plus the hypervisor's overhead per VM. Free memory is RAM less that.
2. Below ``share_below`` x ``min_free``: page sharing. Zero pages are always shared; pages
   identical between VMs of one template (or any two VMs) too, as the sharing mode allows. Each
   VM of a group of n holding the same content keeps 1/n of the copy.
3. Below ``balloon_below`` x ``min_free``: balloons take back the guests' idle memory (never
   their active working set, at most ``balloon_max_frac`` of a VM) until free memory is back at
   that threshold.
4. Below ``swap_below`` x ``min_free``: compression (when on), then host swapping, until free
   memory is back at that threshold. Coldest pages go first; compressed pages are the hottest of
   those evicted (the compression cache sits in front of swap).
5. If even that cannot hold the threshold (everything left is reserved, or swap is full), the
   host is in the low state with a deficit.

Who gives memory back is decided by shares, with ESXi's idle memory tax: VM i keeps T_i bytes
where the shares per page ``S_i / (T_i * (f_i + k * (1 - f_i)))`` (``f_i``: the active share of
T_i, k = 1 / (1 - tax)) are equal across VMs (Waldspurger, "Memory Resource Management in
VMware ESX Server", OSDI 2002). Only private pages are given back or evicted: a VM keeps at
least its part of the shared copies plus its reservation of private pages, and at most what it
consumes. Reservations are never reclaimed, and the compression cache never pushes out the
pages a reservation backs, so a working set within the reservation never misses. A VM's limit
caps T_i with no host pressure at all (but cannot evict its shared pages).

The transient (how fast balloons inflate, swap-out at the device's speed) is not modelled: the
state holds from one event to the next, and the pages that change place at an event are counted
as swapped out (or in) at that instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vsim.model.memory import MemoryParams, device_wait

__all__ = ["LEVELS", "STATE_NAMES", "HostMemory", "MemoryModel", "Reclaim", "VmMemory", "reclaim"]

STATE_NAMES = ("high", "clear", "soft", "hard", "low")


@dataclass
class HostMemory:
    """Per host: its memory settings (thresholds as shares of ``min_free``)."""

    enabled: np.ndarray  # bool: the host's memory is modelled
    ram: np.ndarray
    min_free: np.ndarray
    share_below: np.ndarray
    balloon_below: np.ndarray
    swap_below: np.ndarray
    low_below: np.ndarray
    sharing: np.ndarray  # index into memory.SHARING_MODES
    compression: np.ndarray  # bool
    overhead_bytes: np.ndarray  # per VM
    overhead_frac: np.ndarray  # per byte of the VM's memory (page tables, device state)
    swap_latency_s: np.ndarray
    swap_bandwidth: np.ndarray
    swap_size: np.ndarray


@dataclass
class VmMemory:
    """Per VM: its memory settings; ``active_frac`` changes during a run."""

    ram: np.ndarray
    template: np.ndarray  # -1: none
    reservation: np.ndarray
    limit: np.ndarray
    shares: np.ndarray
    active_frac: np.ndarray
    access_bytes_s: np.ndarray  # working-set bytes touched per second at 100 % CPU
    zero_frac: np.ndarray
    template_frac: np.ndarray  # of its non-zero pages, identical in VMs of its template
    common_frac: np.ndarray  # of its non-zero pages, identical in any VM
    balloon: np.ndarray  # bool: a balloon driver runs in the guest


@dataclass
class Reclaim:
    """The state of the VMs ``ids`` (per-VM arrays follow ``ids``) and of every host."""

    ids: np.ndarray
    host: np.ndarray
    overhead: np.ndarray
    shared: np.ndarray  # the VM's bytes backed by shared pages
    saved: np.ndarray  # its part of what sharing saves
    balloon: np.ndarray
    compressed: np.ndarray  # bytes of its pages held compressed (before compression)
    swapped: np.ndarray
    kept: np.ndarray  # T_i: host memory the VM keeps
    p_compressed: np.ndarray  # share of its touches that find a compressed page
    p_swapped: np.ndarray  # ... a swapped page
    state: np.ndarray  # per host, index into STATE_NAMES
    free: np.ndarray
    deficit: np.ndarray


def _by_host(host: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(host, weights=values, minlength=n)


def _sharing(h: HostMemory, v: VmMemory, ids: np.ndarray, host: np.ndarray, n_h: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per VM: bytes backed by shared pages, its part of the saving, and its shared zero
    pages."""
    m = v.ram[ids]
    mode = h.sharing[host]
    zero = np.where(mode >= 1, v.zero_frac[ids] * m, 0.0)
    content = m - v.zero_frac[ids] * m
    tmpl = v.template[ids]
    # Within a template: its own pages and, in 'template' mode, the common ones too (only VMs
    # of one template share at all there); in 'all' mode the common ones are shared host-wide.
    in_group = np.where((mode >= 2) & (tmpl >= 0),
                        v.template_frac[ids] + np.where(mode == 2, v.common_frac[ids], 0.0), 0.0)
    host_wide = np.where(mode == 3, v.common_frac[ids], 0.0)
    key = host.astype(np.int64) * (int(v.template.max(initial=-1)) + 2) + tmpl + 1
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    n_group = counts[inverse].astype(float)
    n_host = np.bincount(host, minlength=n_h)[host].astype(float)
    grouped = np.where(n_group >= 2, in_group * content, 0.0)
    wide = np.where(n_host >= 2, host_wide * content, 0.0)
    shared = zero + grouped + wide
    saved = zero + grouped * (1.0 - 1.0 / n_group) + wide * (1.0 - 1.0 / n_host)
    return shared, saved, zero


def _water_fill(host: np.ndarray, n_h: int, need: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                shares: np.ndarray, active: np.ndarray, k: float) -> np.ndarray:
    """T_i in [lo_i, hi_i] with sum(hi - T) = need per host and equal taxed shares per page."""
    out = hi.copy()
    busy = need > 0
    mine = busy[host]
    if not mine.any():
        return out
    host, lo, hi, shares, active = host[mine], lo[mine], hi[mine], shares[mine], active[mine]

    def kept(lam: np.ndarray) -> np.ndarray:
        x = lam[host] * shares
        return np.clip(np.where(x < active, x, active + (x - active) / k), lo, hi)

    def taken(lam: np.ndarray) -> np.ndarray:
        return _by_host(host, hi - kept(lam), n_h)

    # The lambda at which each VM reaches hi: beyond it, nothing is taken from the host.
    top = np.where(hi <= active, hi, active + k * (hi - active)) / shares
    lam_hi = np.zeros(n_h)
    np.maximum.at(lam_hi, host, top)
    lam_lo = np.zeros(n_h)
    for _ in range(40):  # bisection down to 1e-12 of the range ...
        lam = 0.5 * (lam_lo + lam_hi)
        enough = taken(lam) <= need  # taking too little: lower lambda
        lam_hi = np.where(busy & enough, lam, lam_hi)
        lam_lo = np.where(busy & ~enough, lam, lam_lo)
    # ... then one linear step: what is taken is piecewise linear in lambda, and by now almost
    # always linear between the two ends, so this lands on the need to rounding.
    t_lo, t_hi = taken(lam_lo), taken(lam_hi)
    span = t_lo - t_hi
    frac = np.divide(t_lo - need, span, out=np.ones(n_h), where=span > 0)
    out[mine] = kept(lam_lo + np.clip(frac, 0.0, 1.0) * (lam_hi - lam_lo))
    return out


def reclaim(h: HostMemory, v: VmMemory, ids: np.ndarray, host: np.ndarray,
            p: MemoryParams) -> Reclaim:
    """The reclamation chain's steady state for VMs ``ids`` running on ``host`` (see module)."""
    n_h = len(h.ram)
    m = v.ram[ids]
    active = v.active_frac[ids] * m
    overhead = h.overhead_bytes[host] + h.overhead_frac[host] * m
    limit = np.minimum(v.limit[ids], m)
    min_free = h.min_free
    free0 = h.ram - _by_host(host, overhead + limit, n_h)
    engaged = free0 < h.share_below * min_free
    shared, saved, zero = _sharing(h, v, ids, host, n_h)
    on = engaged[host]
    shared, saved, zero = (np.where(on, x, 0.0) for x in (shared, saved, zero))
    consumed = m - saved
    # Only private pages can be given back or evicted. Zero pages are idle; the working set is
    # spread evenly over the other pages, shared or not, so its private part is in proportion.
    private = np.maximum(0.0, m - shared)
    nonzero = m - zero
    active_private = np.clip(active * np.divide(private, nonzero, out=np.ones(len(ids)),
                                                where=nonzero > 0), 0.0, private)
    idle_private = private - active_private
    # A VM keeps at least its part of the shared copies (they cannot go) and its reservation of
    # private pages.
    copies = consumed - private
    hi = np.minimum(consumed, np.maximum(limit, copies))  # a limit cannot evict shared pages
    lo = np.minimum(copies + np.minimum(v.reservation[ids], private), hi)
    free1 = h.ram - _by_host(host, overhead + hi, n_h)
    # The balloon takes idle memory only: what the guest holds beyond its active working set.
    bcap = np.where(v.balloon[ids], np.minimum(p.balloon_max_frac * m, idle_private), 0.0)
    lo_balloon = np.clip(consumed - bcap, lo, hi)
    need_b = np.maximum(0.0, h.balloon_below * min_free - free1)
    x_b = np.minimum(need_b, _by_host(host, hi - lo_balloon, n_h))
    need_s = np.maximum(0.0, h.swap_below * min_free - free1 - x_b)
    hard = need_s > 0
    room = _by_host(host, hi - lo, n_h)
    x = np.where(hard, np.minimum(x_b + need_s, room), x_b)
    k = 1.0 / (1.0 - p.idle_tax)
    kept = _water_fill(host, n_h, x, np.where(hard[host], lo, lo_balloon), hi,
                       v.shares[ids], np.minimum(active, hi), k)
    taken = consumed - kept
    balloon = np.minimum(taken, bcap)
    rest = taken - balloon
    rho = p.compression_ratio
    # The compression cache sits in the memory the VM keeps, so it may not push the pages its
    # reservation backs out of plain residency: at most rho x (private kept - min(W, R)).
    protected = np.minimum(active_private, v.reservation[ids])
    cache_room = np.maximum(0.0, rho * (kept - copies - protected))
    compressed = np.where(h.compression[host],
                          np.minimum.reduce([rest / (1.0 - 1.0 / rho),
                                             rho * p.compression_max_frac * m, cache_room]),
                          0.0)
    swapped = rest - compressed * (1.0 - 1.0 / rho)
    # A full swap device: the pages that do not fit stay with their VM, and the host is short.
    total = _by_host(host, swapped, n_h)
    fit = np.divide(h.swap_size, total, out=np.ones(n_h), where=total > h.swap_size)
    short = swapped * (1.0 - fit[host])
    swapped = swapped - short
    kept = kept + short
    free = free1 + x - _by_host(host, short, n_h)
    # What the host lacks to hold the swap threshold: what was not reclaimable at all, and the
    # pages that found no swap space (unless there was room for them anyway).
    deficit = h.swap_below * min_free - free
    deficit = np.where(deficit > 1.0, deficit, 0.0)  # not rounding dust
    # Coldest pages go first (the private idle ones), and the hottest evicted ones are the
    # compressed. (A working set within the reservation never misses: the balloon takes idle
    # pages only, and compression and swapping leave kept >= the reservation in plain
    # residency.)
    evicted = balloon + compressed + swapped
    hot = np.clip(evicted - idle_private, 0.0, active_private)
    hot_c = np.minimum(hot, compressed)
    p_c = np.divide(hot_c, active, out=np.zeros(len(ids)), where=active > 0)
    p_s = np.divide(hot - hot_c, active, out=np.zeros(len(ids)), where=active > 0)
    state = np.select([deficit > 1.0, hard, need_b > 0, engaged], [4, 3, 2, 1], 0)
    state = np.where(free < h.low_below * min_free * (1 - 1e-9), 4, state)
    return Reclaim(ids, host, overhead, shared, saved, balloon, compressed, swapped, kept, p_c,
                   p_s, state.astype(np.int8), free, deficit)


# What the model keeps per VM, in bytes (the rows of its period sums follow this order).
LEVELS = ("active", "shared", "balloon", "compressed", "swapped")


@dataclass
class MemoryModel:
    """The hosts' memory over a run: the chain at every change, the slowdown it causes, and the
    swap traffic (steady faults, and pages moved when the state changes)."""

    hosts: HostMemory
    vms: VmMemory
    params: MemoryParams = field(default_factory=MemoryParams)

    def __post_init__(self) -> None:
        n_h, n_v = len(self.hosts.ram), len(self.vms.ram)
        self.level = {k: np.zeros(n_v) for k in LEVELS}
        self.slowdown = np.ones(n_v)
        self.swap_in_bytes_s = np.zeros(n_v)  # steady fault traffic
        self.swap_out_bytes_s = np.zeros(n_v)
        self.moved_out = np.zeros(n_v)  # bytes swapped out / in at state changes, not yet taken
        self.moved_in = np.zeros(n_v)
        self.where = np.full(n_v, -1, dtype=np.int64)  # the host each VM's levels are on
        self.host_state = np.zeros(n_h, dtype=np.int8)
        self.host_free = self.hosts.ram.copy()
        self.host_saved = np.zeros(n_h)
        self.host_deficit = np.zeros(n_h)

    def update(self, ids: np.ndarray, host: np.ndarray, busy: np.ndarray,
               scope: np.ndarray | None = None) -> np.ndarray:
        """The state of the hosts in ``scope`` (bool per host; None: all) whose running VMs are
        ``ids`` on ``host``, each busy ``busy`` of its CPU; returns each VM's slowdown."""
        h, v, p = self.hosts, self.vms, self.params
        n_h = len(h.ram)
        scope = np.ones(n_h, dtype=bool) if scope is None else scope
        mine = h.enabled[host]
        # VMs that were on these hosts and are not any more: their pages went with them (to
        # another host, where they count from now on, or away for good).
        gone = (self.where >= 0) & scope[np.maximum(self.where, 0)]
        gone[ids[mine]] = False
        for level in self.level.values():
            level[gone] = 0.0
        self.slowdown[gone] = 1.0
        self.swap_in_bytes_s[gone] = self.swap_out_bytes_s[gone] = 0.0
        self.where[gone] = -1
        ids, host, busy = ids[mine], host[mine], busy[mine]
        r = reclaim(h, v, ids, host, p)
        delta = r.swapped - self.level["swapped"][ids]
        self.moved_out[ids] += np.maximum(delta, 0.0)
        self.moved_in[ids] += np.maximum(-delta, 0.0)
        for key, val in zip(LEVELS, (v.active_frac[ids] * v.ram[ids], r.shared, r.balloon,
                                      r.compressed, r.swapped), strict=True):
            self.level[key][ids] = val
        self.where[ids] = host
        # The slowdown, with the swap device shared by the host's faulting VMs.
        touches = v.access_bytes_s[ids] / p.page_bytes
        other = r.p_compressed * p.t_decompress_s
        fault = p.fault_s(h.swap_latency_s[host], h.swap_bandwidth[host])
        per_fault = np.full(len(ids), p.page_bytes * (1.0 + p.evict_dirty))
        q = device_wait(host, n_h, touches, busy, r.p_swapped, other, fault, per_fault,
                        h.swap_bandwidth)
        slow = 1.0 + touches * (other + r.p_swapped * (fault + q[host]))
        faults = busy * touches * r.p_swapped / slow
        self.slowdown[ids] = slow
        self.swap_in_bytes_s[ids] = faults * p.page_bytes
        self.swap_out_bytes_s[ids] = faults * p.page_bytes * p.evict_dirty
        self.host_state[scope] = r.state[scope]
        self.host_free[scope] = r.free[scope]
        self.host_saved[scope] = np.bincount(host, weights=r.saved, minlength=n_h)[scope]
        self.host_deficit[scope] = r.deficit[scope]
        out = np.ones(len(mine))
        out[mine] = slow
        return out

    def take_moved(self) -> tuple[np.ndarray, np.ndarray]:
        """Bytes swapped out and in at state changes since the last call, per VM."""
        out, into = self.moved_out, self.moved_in
        self.moved_out, self.moved_in = np.zeros_like(out), np.zeros_like(into)
        return out, into
