"""Memory overcommit: the parameters, the presets and what a page that is not resident costs.

Everything the reclamation chain (:mod:`vsim.model.reclaim`) and the slowdown need that is not a
scenario's own choice lives here, in :class:`MemoryParams` and the presets, so that a calibration
against real guests changes one object.

**What a touch costs.** A VM touches its active working set of W bytes page by page, ``a`` pages
per second of CPU time when nothing is missing (``t_hit = 1 / a``). A touch of a page that was
compressed costs a decompression besides (``t_decompress``); one of a page that was swapped out
costs a fault: the device's latency and the transfer of the page in, and of a victim page out
when it is dirty (``t_fault``). With touches spread evenly over the working set, a touch misses
with probability (missing bytes) / W, so the time per touch over ``t_hit`` is

    slowdown = 1 + a * (p_compressed * t_decompress + p_swapped * (t_fault + q))

where ``q`` is the wait for the swap device when the VMs of a host together ask for more than
its bandwidth (see :func:`device_wait`). For one VM with nothing compressed and random touches
this is :func:`swap_slowdown`, which the KVM backend's memory experiment measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RECLAIM_PRESETS",
    "SHARING_MODES",
    "SWAP_DEVICES",
    "MemoryParams",
    "ReclaimPreset",
    "SwapDevice",
    "device_wait",
    "esxi_min_free",
    "swap_slowdown",
]

GiB = 2.0**30


@dataclass(frozen=True)
class SwapDevice:
    """Where a host swaps to: the time to start a page read and the bandwidth of the device."""

    latency_s: float
    bandwidth_bytes_s: float


# Typical figures for one 4 KiB random read: a 7200 rpm disk (seek plus half a turn), a SATA SSD,
# an NVMe SSD (vendor data sheets give 70-100 us and 10-20 us read latency).
SWAP_DEVICES: dict[str, SwapDevice] = {
    "hdd": SwapDevice(8e-3, 150e6),
    "ssd": SwapDevice(100e-6, 500e6),
    "nvme": SwapDevice(20e-6, 2.5e9),
}

# Page sharing, weakest to strongest: none; zero pages only; also pages identical between VMs
# cloned from the same template (ESXi's TPS salted per template); also pages identical between
# any VMs (KSM, ESXi's TPS before salting).
SHARING_MODES = ("off", "zero", "template", "all")


@dataclass(frozen=True)
class ReclaimPreset:
    """When a hypervisor starts each step of the chain, as free memory falls below a share of
    ``min_free`` (``min_free`` itself: ESXi's sliding scale, or a share of RAM)."""

    min_free_frac: float | None  # None: ESXi's sliding scale
    share_below: float
    balloon_below: float
    swap_below: float
    low_below: float
    sharing: str
    compression: bool


RECLAIM_PRESETS: dict[str, ReclaimPreset] = {
    # ESXi 6+: states high / clear (<100 % of minFree: page sharing) / soft (<64 %: balloon) /
    # hard (<32 %: compression and swapping) / low (<16 %); pages are shared within a VM and
    # zero pages everywhere (inter-VM sharing is salted off by default since 6.0); memory
    # compression on.
    "esxi": ReclaimPreset(None, 1.0, 0.64, 0.32, 0.16, "zero", True),
    # KVM: ksmtuned merges pages once free memory is below 20 % of RAM (its default threshold),
    # a balloon policy (oVirt MoM) inflates below the same 20 %, and the host kernel swaps when
    # free memory reaches its watermarks (about 1 % of RAM); zswap is off by default.
    "kvm": ReclaimPreset(0.20, 1.0, 1.0, 0.05, 0.01, "all", False),
}


def esxi_min_free(ram_bytes: np.ndarray | float) -> np.ndarray:
    """ESXi's minFree: 6 % of the first 4 GiB, 4 % of the next 8, 2 % of the next 16, 1 % of the
    rest (899 MB for 28 GiB; VMware's vSphere 6 resource management guide)."""
    ram = np.asarray(ram_bytes, dtype=float)
    out = np.zeros_like(ram)
    lower = 0.0
    for upper, frac in ((4 * GiB, 0.06), (12 * GiB, 0.04), (28 * GiB, 0.02), (math.inf, 0.01)):
        out += frac * np.clip(ram - lower, 0.0, upper - lower)
        lower = upper
    return out


@dataclass(frozen=True)
class MemoryParams:
    """The memory model's constants: what a calibration against real guests may fit."""

    page_bytes: float = 4096.0
    # ESXi's idle memory tax (Mem.IdleTax, 75 %): an idle page costs a VM's shares 1 / (1 - tax)
    # times an active one, so idle memory is reclaimed first (Waldspurger, OSDI 2002).
    idle_tax: float = 0.75
    # The most of its memory a guest's balloon may take (ESXi's Mem.CtlMaxPercent, 65 %).
    balloon_max_frac: float = 0.65
    # Compression (ESXi): a page is kept compressed when it shrinks at least twice; the cache
    # holds at most 10 % of a VM's memory (Mem.MemZipMaxPct).
    compression_ratio: float = 2.0
    compression_max_frac: float = 0.10
    t_decompress_s: float = 20e-6
    # Share of evicted pages that are dirty and must be written to swap (1: every touch writes).
    evict_dirty: float = 1.0

    def fault_s(self, device: SwapDevice | np.ndarray, bandwidth: np.ndarray | None = None
                ) -> np.ndarray:
        """Service time of one fault on an idle device: its latency, the page in and the dirty
        share of a victim page out."""
        if isinstance(device, SwapDevice):
            latency, bandwidth = np.asarray(device.latency_s), np.asarray(device.bandwidth_bytes_s)
        else:
            latency = device
        assert bandwidth is not None
        return latency + self.page_bytes * (1.0 + self.evict_dirty) / bandwidth


def swap_slowdown(ratio: np.ndarray | float, t_hit_s: np.ndarray | float,
                  t_fault_s: np.ndarray | float, order: str = "random") -> np.ndarray:
    """Slowdown of touching a working set ``ratio`` times the resident memory (W / R).

    random: a touch hits with probability R / W, so 1 + (1 - min(1, R / W)) * t_fault / t_hit;
    sequential (touches in a cycle, least-recently-used eviction): every touch misses once
    W > R, so 1 + t_fault / t_hit."""
    ratio = np.asarray(ratio, dtype=float)
    cost = np.asarray(t_fault_s, dtype=float) / np.asarray(t_hit_s, dtype=float)
    if order == "random":
        miss = 1.0 - np.minimum(1.0, 1.0 / ratio)
    elif order == "sequential":
        miss = (ratio > 1.0).astype(float)
    else:
        raise ValueError(f"order is random or sequential, got {order!r}")
    return 1.0 + miss * cost


def device_wait(host: np.ndarray, n_hosts: int, touches_s: np.ndarray, busy: np.ndarray,
                p_swapped: np.ndarray, other_s: np.ndarray, fault_s: np.ndarray,
                bytes_per_fault: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Per host, the wait ``q`` each fault adds when the host's swap device is saturated.

    VM i (on ``host[i]``) runs ``busy[i]`` of its CPU time and touches ``touches_s[i]`` pages per
    second of it; a touch costs ``other_s[i]`` besides swap faults (decompression) and misses to
    swap with probability ``p_swapped[i]``. Its fault rate is then
    ``busy * a * p / (1 + a * (other + p * (t_fault + q)))``: when the rates at ``q = 0`` ask for
    more than the device's bandwidth, ``q`` grows until they fit in it (each fault waits its
    turn), so swap traffic never exceeds the bandwidth. Zero where the device keeps up."""
    a, p = touches_s, p_swapped

    def traffic(q: np.ndarray) -> np.ndarray:
        rate = busy * a * p / (1.0 + a * (other_s + p * (fault_s + q[host])))
        return np.bincount(host, weights=rate * bytes_per_fault, minlength=n_hosts)

    q = np.zeros(n_hosts)
    over = traffic(q) > bandwidth * (1 + 1e-12)
    if not over.any():
        return q
    # Each VM's rate is below busy / q, so at q = sum(busy * bytes) / bandwidth it fits.
    hi = np.bincount(host, weights=busy * bytes_per_fault, minlength=n_hosts) / bandwidth
    lo = np.zeros(n_hosts)
    hi = np.where(over, hi, 0.0)
    for _ in range(60):  # bisection to 1e-18 of the bound: exact for any table we print
        mid = 0.5 * (lo + hi)
        fits = traffic(mid) <= bandwidth
        hi = np.where(over & fits, mid, hi)
        lo = np.where(over & ~fits, mid, lo)
    return np.where(over, hi, 0.0)
