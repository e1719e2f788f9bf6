"""Initial placement as filters plus weighers.

Filters say how many more copies of a VM each host can take (0: the host is excluded); weighers
rank the hosts that pass, lower first, ties to the lowest host id. A policy is an ordering of the
VMs to place, a list of filters and a weigher (none: first fit). Policies read a read-only view of
the datacenter and return one host per VM; they keep their tentative placements to themselves and
never change the datacenter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vsim.model.datacenter import PlacementView

__all__ = [
    "CoresFilter",
    "CpuCapacityFilter",
    "CpuOvercommitFilter",
    "Filter",
    "FilterWeigherPlacement",
    "MemoryAdmissionFilter",
    "MostRoomWeigher",
    "PlacementContext",
    "PowerIncreaseWeigher",
    "RamOvercommitFilter",
    "RandomWeigher",
    "ReservationFilter",
    "TightestWeigher",
    "Weigher",
]

Index = slice | np.ndarray
_EPS = 1e-9  # commitments are sums of floats; do not refuse a VM over rounding dust


class PlacementContext:
    """The view plus the tentative commitments of the VMs placed so far in this call."""

    def __init__(self, view: PlacementView, candidates: np.ndarray, cpu_overcommit: float,
                 ram_overcommit: float) -> None:
        self.view = view
        self.candidates = candidates
        self.cpu_overcommit = cpu_overcommit
        self.ram_overcommit = ram_overcommit
        self.vcpus_used = view.host_vcpus_used.copy()
        self.ram_used = view.host_ram_used.copy()
        self.reservation_used = view.host_reservation_used_hz.copy()
        self.cpu_committed = view.host_cpu_committed_hz.copy()
        self.mem_reserved = None if view.host_mem_reserved is None else view.host_mem_reserved.copy()
        self.swap_used = None if view.host_swap_used is None else view.host_swap_used.copy()

    def take(self, hosts: np.ndarray | int, vm: int, count: np.ndarray | int = 1) -> None:
        v = self.view
        self.vcpus_used[hosts] += v.vm_vcpus[vm] * count
        self.ram_used[hosts] += v.vm_ram_bytes[vm] * count
        self.reservation_used[hosts] += v.vm_reservation_hz[vm] * count
        self.cpu_committed[hosts] += v.vm_capacity_hz[vm] * count
        if self.mem_reserved is not None and v.vm_mem_reserved is not None:
            self.mem_reserved[hosts] += v.vm_mem_reserved[vm] * count
        if self.swap_used is not None and v.vm_swap_need is not None:
            self.swap_used[hosts] += v.vm_swap_need[vm] * count


class Filter:
    """How many copies of VM ``vm`` each host in ``idx`` can still take (inf: no limit here)."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        raise NotImplementedError


def _room_copies(room: np.ndarray, need: float) -> np.ndarray:
    if need <= 0:
        return np.where(room >= -_EPS, np.inf, 0.0)
    return np.floor(np.maximum(room, 0.0) / need + _EPS)


class CandidateFilter(Filter):
    """Only hosts the caller offers (hosts that are on, or the hosts that may be switched on)."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        return np.where(ctx.candidates[idx], np.inf, 0.0)


class CoresFilter(Filter):
    """A VM never has more vCPUs than the host has cores: each vCPU needs a core to run on."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        return np.where(ctx.view.host_cores[idx] >= ctx.view.vm_vcpus[vm], np.inf, 0.0)


class CpuOvercommitFilter(Filter):
    """vCPUs committed to a host stay within ``cpu_overcommit`` x its cores (the vCPU:pCPU ratio)."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        room = ctx.view.host_cores[idx] * ctx.cpu_overcommit - ctx.vcpus_used[idx]
        return _room_copies(room, float(ctx.view.vm_vcpus[vm]))


class RamOvercommitFilter(Filter):
    """VM memory committed to a host stays within ``ram_overcommit`` x its RAM."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        room = ctx.view.host_ram_bytes[idx] * ctx.ram_overcommit - ctx.ram_used[idx]
        return _room_copies(room, float(ctx.view.vm_ram_bytes[vm]))


class ReservationFilter(Filter):
    """CPU reservations on a host never exceed its capacity (they are guarantees)."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        room = ctx.view.host_capacity_hz[idx] - ctx.reservation_used[idx]
        return _room_copies(room, float(ctx.view.vm_reservation_hz[vm]))


class MemoryAdmissionFilter(Filter):
    """A VM powers on only where its memory reservation (and the hypervisor's overhead for it)
    fits in what the reservations already there leave, and the rest of its memory fits in swap:
    vSphere's admission control, which then never runs out of memory to reclaim."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        v = ctx.view
        assert v.host_mem_reservable is not None and v.vm_mem_reserved is not None
        assert ctx.mem_reserved is not None and ctx.swap_used is not None
        assert v.host_swap_size is not None and v.vm_swap_need is not None
        room = v.host_mem_reservable[idx] - ctx.mem_reserved[idx]
        swap = v.host_swap_size[idx] - ctx.swap_used[idx]
        return np.minimum(_room_copies(room, float(v.vm_mem_reserved[vm])),
                          _room_copies(swap, float(v.vm_swap_need[vm])))


class CpuCapacityFilter(Filter):
    """The VMs' nominal CPU (vCPUs x vCPU speed) stays within the host's capacity, as
    CloudSim's MIPS-based placement requires: no CPU overbooking at placement."""

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        room = ctx.view.host_capacity_hz[idx] - ctx.cpu_committed[idx]
        return _room_copies(room, float(ctx.view.vm_capacity_hz[vm]))


class Weigher:
    """Scores for the hosts in ``idx`` that passed the filters; the lowest score wins."""

    def score(self, ctx: PlacementContext, vm: int, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _fill_after(ctx: PlacementContext, vm: int, idx: np.ndarray) -> np.ndarray:
    """The host's most committed dimension (vCPUs or RAM, against the overcommit) after placing."""
    v = ctx.view
    cpu = (ctx.vcpus_used[idx] + v.vm_vcpus[vm]) / (v.host_cores[idx] * ctx.cpu_overcommit)
    ram = (ctx.ram_used[idx] + v.vm_ram_bytes[vm]) / (v.host_ram_bytes[idx] * ctx.ram_overcommit)
    return np.maximum(cpu, ram)


class TightestWeigher(Weigher):
    """Best fit: the host left fullest (in its most committed dimension) by the VM."""

    def score(self, ctx: PlacementContext, vm: int, idx: np.ndarray) -> np.ndarray:
        return -_fill_after(ctx, vm, idx)


class MostRoomWeigher(Weigher):
    """Worst fit: the host left emptiest, which spreads load."""

    def score(self, ctx: PlacementContext, vm: int, idx: np.ndarray) -> np.ndarray:
        return _fill_after(ctx, vm, idx)


class PowerIncreaseWeigher(Weigher):
    """Power-aware best fit: the host whose power grows least when the VM's nominal CPU is
    added to what is committed there (Beloglazov & Buyya, CCPE 2012, PABFD)."""

    def score(self, ctx: PlacementContext, vm: int, idx: np.ndarray) -> np.ndarray:
        v = ctx.view
        before = ctx.cpu_committed[idx] / v.host_capacity_hz[idx]
        after = (ctx.cpu_committed[idx] + v.vm_capacity_hz[vm]) / v.host_capacity_hz[idx]
        return v.power.watts(after, idx) - v.power.watts(before, idx)


class RandomWeigher(Weigher):
    """A uniformly random host among those that pass, from a seeded generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def score(self, ctx: PlacementContext, vm: int, idx: np.ndarray) -> np.ndarray:
        return self.rng.random(len(idx))


STANDARD_FILTERS: tuple[Filter, ...] = (
    CandidateFilter(), CoresFilter(), CpuOvercommitFilter(), RamOvercommitFilter(),
    ReservationFilter(),
)


@dataclass
class FilterWeigherPlacement:
    """A placement policy: VM ordering, filters, and a weigher (``None``: first fit).

    The standard filters (candidates, cores, vCPU and RAM overcommit, reservations) always apply;
    ``extra_filters`` add to them (affinity rules, say).
    """

    extra_filters: Sequence[Filter] = ()
    weigher: Weigher | None = None
    order: Callable[[PlacementView, np.ndarray], np.ndarray] | None = None
    cpu_overcommit: float = 1.0
    ram_overcommit: float = 1.0

    def __call__(self, view: PlacementView, vms: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        ctx = PlacementContext(view, candidates, self.cpu_overcommit, self.ram_overcommit)
        self.filters = [*STANDARD_FILTERS, *self.extra_filters]
        order = self.order(view, vms) if self.order is not None else np.arange(len(vms))
        result = np.full(len(vms), -1, dtype=np.int64)
        if self.weigher is None:
            self._first_fit(ctx, vms, order, result)
        else:
            everywhere = np.arange(view.host_cores.shape[0])
            for pos in order:
                vm = int(vms[pos])
                ok = np.flatnonzero(self.copies(ctx, vm, everywhere) >= 1)
                if ok.size:
                    host = int(ok[np.argmin(self.weigher.score(ctx, vm, ok))])
                    ctx.take(host, vm)
                    result[pos] = host
        return result

    def copies(self, ctx: PlacementContext, vm: int, idx: Index) -> np.ndarray:
        out = self.filters[0].copies(ctx, vm, idx)
        for f in self.filters[1:]:
            out = np.minimum(out, f.copies(ctx, vm, idx))
        return out

    def _first_fit(self, ctx: PlacementContext, vms: np.ndarray, order: np.ndarray,
                   result: np.ndarray) -> None:
        """First fit, fast: whole runs of identical VMs fill hosts in one vectorised step, and a
        single VM scans hosts in growing chunks from the first host that can take anything."""
        v = ctx.view
        n_hosts = v.host_cores.shape[0]
        key = np.stack([v.vm_vcpus[vms], v.vm_ram_bytes[vms], v.vm_reservation_hz[vms]], axis=1)[order]
        smallest = int(vms[order[np.lexsort(key.T[::-1])[0]]]) if len(vms) else -1
        if smallest < 0:
            return
        # Hosts before `lo` cannot take even the smallest VM of this batch in some dimension.
        can_take_any = np.zeros(n_hosts, dtype=bool)
        lo = 0
        mins = [v.vm_vcpus[vms].min(), v.vm_ram_bytes[vms].min(), v.vm_reservation_hz[vms].min()]
        can_take_any[:] = self._fits_mins(ctx, mins, slice(None))
        # Runs of consecutive identical requests (same vCPUs, RAM and reservation).
        cuts = np.flatnonzero(np.any(key[1:] != key[:-1], axis=1)) + 1
        for run_start, run_end in zip(np.r_[0, cuts], np.r_[cuts, len(order)], strict=True):
            lo = int(np.argmax(can_take_any[lo:])) + lo if can_take_any[lo:].any() else n_hosts
            if lo >= n_hosts:
                break  # no host can take even the smallest VM left
            vm = int(vms[order[run_start]])
            m = run_end - run_start
            if m >= 8:
                copies = np.minimum(self.copies(ctx, vm, slice(lo, n_hosts)), m)
                before = np.cumsum(copies) - copies
                counts = np.clip(m - before, 0, copies).astype(np.int64)
                hosts = lo + np.flatnonzero(counts)
                counts = counts[counts > 0]
                placed = int(counts.sum())
                result[order[run_start:run_start + placed]] = np.repeat(hosts, counts)
                ctx.take(hosts, vm, counts)
                can_take_any[hosts] = self._fits_mins(ctx, mins, hosts)
            else:
                for pos in order[run_start:run_end]:
                    host = self._scan(ctx, int(vms[pos]), lo, n_hosts)
                    if host >= 0:
                        ctx.take(host, int(vms[pos]))
                        result[pos] = host
                        can_take_any[host] = self._fits_mins(ctx, mins, np.array([host]))[0]

    def _fits_mins(self, ctx: PlacementContext, mins: list[float], idx: Index) -> np.ndarray:
        """The standard filters for a VM as small as the batch's smallest in every dimension."""
        v = ctx.view
        ok = ctx.candidates[idx] & (v.host_cores[idx] >= mins[0])
        ok &= v.host_cores[idx] * ctx.cpu_overcommit - ctx.vcpus_used[idx] >= mins[0] - _EPS
        ok &= v.host_ram_bytes[idx] * ctx.ram_overcommit - ctx.ram_used[idx] >= mins[1] - _EPS
        ok &= v.host_capacity_hz[idx] - ctx.reservation_used[idx] >= mins[2] - _EPS
        return ok

    def _scan(self, ctx: PlacementContext, vm: int, lo: int, n_hosts: int) -> int:
        start, chunk = lo, 64
        while start < n_hosts:
            stop = min(n_hosts, start + chunk)
            hits = np.flatnonzero(self.copies(ctx, vm, slice(start, stop)) >= 1)
            if hits.size:
                return start + int(hits[0])
            start, chunk = stop, chunk * 4
        return -1
