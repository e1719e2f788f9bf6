"""Hypervisor CPU sharing. The fluid proportional-share scheduler, for every host at once.

The fluid model is what a proportional-share hypervisor scheduler (ESXi shares, KVM/CFS weights,
Xen credit weights) converges to over intervals much longer than a timeslice. On each host:

* a VM never gets more than it demands, nor more than its limit, nor more than one core per vCPU;
* a VM that demands at least its reservation gets at least its reservation;
* the rest of the host is divided max-min fairly in proportion to the VMs' shares
  (weighted water-filling), and the scheduler is work-conserving: capacity is left idle only
  when every VM on the host is satisfied.

Formally, with bounds ``lo_i = min(e_i, r_i)`` and ``e_i`` the capped demand, every VM on a host
gets ``a_i = clip(w_i * lam, lo_i, e_i)`` where the host's level ``lam`` makes the sum equal the
host's capacity (or ``a = e`` when the host is not contended). The sum is a non-decreasing,
piecewise-linear function of ``lam`` whose breakpoints are ``lo_i / w_i`` and ``e_i / w_i``, so
``lam`` is found exactly by sorting breakpoints, not by iteration.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["CpuScheduler", "FluidScheduler", "contention_loss", "fluid_share"]


class CpuScheduler(Protocol):
    """What the datacenter asks of a CPU scheduler: delivered Hz for every running VM."""

    def allocate(
        self,
        host: np.ndarray,
        demand_hz: np.ndarray,
        shares: np.ndarray,
        reservation_hz: np.ndarray,
        cap_hz: np.ndarray,
        capacity_hz: np.ndarray,
    ) -> np.ndarray: ...


class FluidScheduler:
    """Proportional share with reservations and limits, solved exactly per host (see module doc)."""

    def allocate(
        self,
        host: np.ndarray,
        demand_hz: np.ndarray,
        shares: np.ndarray,
        reservation_hz: np.ndarray,
        cap_hz: np.ndarray,
        capacity_hz: np.ndarray,
    ) -> np.ndarray:
        return fluid_share(host, demand_hz, shares, reservation_hz, cap_hz, capacity_hz)


def _group_cumsum(values: np.ndarray, starts: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    """Cumulative sum restarted at every group start (values sorted by group)."""
    total = np.cumsum(values)
    before = np.concatenate(([0.0], total))[starts]
    return total - before[group_of]


def fluid_share(
    host: np.ndarray,
    demand_hz: np.ndarray,
    shares: np.ndarray,
    reservation_hz: np.ndarray,
    cap_hz: np.ndarray,
    capacity_hz: np.ndarray,
) -> np.ndarray:
    """Delivered Hz of each VM.

    ``host[i]`` is the index of VM ``i``'s host in ``capacity_hz``; ``cap_hz[i]`` is the most VM
    ``i`` can use (its limit, and one core per vCPU); ``shares`` must be positive.
    """
    n_hosts = capacity_hz.shape[0]
    want = np.minimum(demand_hz, cap_hz)
    floor = np.minimum(want, reservation_hz)
    wanted = np.bincount(host, weights=want, minlength=n_hosts)
    contended_host = wanted > capacity_hz
    alloc = want.copy()
    if not contended_host.any():
        return alloc

    floors_all = np.bincount(host, weights=floor, minlength=n_hosts)
    # Reservations are admitted against capacity, so floors fit. Where they do not (a caller
    # broke admission, or admission's rounding tolerance), every VM is held at its floor scaled
    # down to fit: there is nothing left to share.
    over = contended_host & (floors_all >= capacity_hz)
    if over.any():
        squeezed = over[host]
        scale = capacity_hz / np.where(floors_all > 0, floors_all, 1.0)
        alloc[squeezed] = floor[squeezed] * np.minimum(1.0, scale[host[squeezed]])
        contended_host &= ~over
        if not contended_host.any():
            return alloc

    mine = np.flatnonzero(contended_host[host])
    h = host[mine]
    lo, hi, w = floor[mine], want[mine], shares[mine]
    floors = floors_all

    # Breakpoints of f_h(lam) = sum clip(w lam, lo, hi): slope +w from lo/w, -w from hi/w.
    keys = np.concatenate((lo / w, hi / w))
    groups = np.concatenate((h, h))
    slope_step = np.concatenate((w, -w))
    order = np.lexsort((keys, groups))
    keys, groups, slope_step = keys[order], groups[order], slope_step[order]
    first = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    group_index = np.cumsum(np.r_[False, groups[1:] != groups[:-1]])
    slope_after = _group_cumsum(slope_step, first, group_index)
    gap = np.diff(keys, prepend=keys[0])
    gap[first] = 0.0
    slope_before = np.r_[0.0, slope_after[:-1]]
    slope_before[first] = 0.0
    level = floors[groups] + _group_cumsum(slope_before * gap, first, group_index)

    target = capacity_hz[groups]
    below = level <= target
    # For each host, the last breakpoint at or below the target: lam lies in the segment after it.
    last = np.full(n_hosts, -1, dtype=np.int64)
    np.maximum.at(last, groups[below], np.flatnonzero(below))
    hosts_here = np.unique(h)
    j = last[hosts_here]
    lam = np.zeros(n_hosts)
    slope = slope_after[j]
    lam[hosts_here] = keys[j] + np.divide(
        target[j] - level[j], slope, out=np.zeros_like(slope), where=slope > 0
    )
    # The running sums above span all hosts and lose digits; one exact step per host restores
    # sum(alloc) == capacity: fix the VMs at their bounds and give the rest their weighted level.
    at_lo = w * lam[h] <= lo
    at_hi = ~at_lo & (w * lam[h] >= hi)
    free = ~(at_lo | at_hi)
    fixed = np.bincount(h, weights=np.where(at_lo, lo, 0.0) + np.where(at_hi, hi, 0.0), minlength=n_hosts)
    free_w = np.bincount(h[free], weights=w[free], minlength=n_hosts)
    exact = free_w > 0
    lam[exact] = (capacity_hz[exact] - fixed[exact]) / free_w[exact]
    alloc[mine] = np.clip(w * lam[h], lo, hi)
    return alloc


def contention_loss(runnable_per_core: np.ndarray, switch_loss: np.ndarray,
                    interference: np.ndarray) -> np.ndarray:
    """Share of a host's CPU that time-slicing itself costs, given its runnable vCPUs per core.

    A core with one runnable vCPU never switches. Once vCPUs queue, the host scheduler switches
    at every slice end, which costs ``switch_loss`` (switch time over slice length), and each vCPU
    more per core evicts the others' caches and TLBs, costing ``interference`` per extra vCPU.
    The fluid share then divides what is left. Both are per-host parameters that ``vsim
    calibrate`` fits to real guests; zero (the default) is the ideal fluid scheduler.
    """
    extra = np.maximum(runnable_per_core - 1.0, 0.0)
    loss = np.where(extra > 0, switch_loss + interference * extra, 0.0)
    return np.clip(loss, 0.0, 0.95)
