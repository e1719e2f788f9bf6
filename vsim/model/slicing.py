"""The time-slicing model on chosen hosts of a datacenter run.

Most hosts of a datacenter share their CPUs by the fluid model. On the hosts chosen for it, every
time the CPU demand there changes (a trace sample, a VM arriving or leaving), the host is simulated
timeslice by timeslice (:mod:`vsim.model.timeslice`) for a window with that demand, and what the
window measured holds until the next change: each VM's delivered CPU, and per vCPU the ready,
co-stop and idle shares, context switches and wake-up latencies. A window of a few seconds holds
hundreds of slices per CPU, enough for shares and percentiles; the window, not the interval, is
what costs time, so a month at 5-minute samples costs 8,640 windows per host.

Wake-up latencies are kept as histograms with 20 logarithmic bins per decade from 1 us to 10 s
(and one bin below 1 us), so that a period's percentiles can be read over all the windows it
spans; a percentile is exact to within a bin (12 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vsim.model.datacenter import Datacenter
from vsim.model.timeslice import HostSlicer, VcpuLoad, VmLoad
from vsim.model.timeslice.profiles import Hypervisor

__all__ = ["LATENCY_EDGES_S", "SLOT_RATES", "SlicedHosts", "SlicingSpec", "latency_percentile"]

# Bin k holds latencies in [EDGES[k-1], EDGES[k]); bin 0 everything below 1 us.
LATENCY_EDGES_S = 10.0 ** np.linspace(-6, 1, 7 * 20 + 1)
_CACHE_PER_HOST = 32  # demands seen lately on a host, with what their windows measured
SLOT_RATES = ("run", "ready", "costop", "idle", "switches", "wakeups", "work")


def latency_percentile(hist: np.ndarray, q: float) -> np.ndarray:
    """The ``q``-th percentile (0..100) of each row of latency histograms (NaN for empty rows),
    interpolated geometrically within its bin."""
    hist = np.atleast_2d(hist)
    total = hist.sum(axis=1)
    cum = np.cumsum(hist, axis=1)
    target = total * q / 100.0
    k = np.minimum((cum < target[:, None]).sum(axis=1), hist.shape[1] - 1)
    before = np.where(k > 0, cum[np.arange(len(k)), k - 1], 0.0)
    inside = hist[np.arange(len(k)), k]
    frac = np.divide(target - before, inside, out=np.zeros(len(k)), where=inside > 0)
    lo = np.where(k > 0, LATENCY_EDGES_S[np.maximum(k - 1, 0)], 0.0)
    hi = LATENCY_EDGES_S[np.minimum(k, len(LATENCY_EDGES_S) - 1)]
    value = np.where(k > 0, lo * (hi / np.where(lo > 0, lo, 1.0)) ** frac, hi * frac)
    return np.where(total > 0, value, np.nan)


@dataclass(frozen=True)
class SlicingSpec:
    """How one host is time-sliced: its hypervisor (policy and costs) and the window simulated
    for each demand (after ``warmup_s``, so that queues are in their steady state)."""

    hypervisor: Hypervisor
    window_s: float = 10.0
    warmup_s: float = 1.0


class SlicedHosts:
    """The hosts of ``specs`` (host id -> spec), time-sliced; ``burst_s[vm]`` is each VM's mean CPU
    burst per wake-up, ``seed`` the run's seed."""

    def __init__(self, dc: Datacenter, specs: dict[int, SlicingSpec], burst_s: np.ndarray,
                 seed: int) -> None:
        self.dc = dc
        self.specs = specs
        self.hosts = np.array(sorted(specs), dtype=np.int64)
        self.is_sliced = np.zeros(len(dc.hosts), dtype=bool)
        self.is_sliced[self.hosts] = True
        self.burst_s = np.asarray(burst_s, dtype=float)
        self.seed = seed
        self.windows = 0
        self.slices = 0
        self._calls = dict.fromkeys(specs, 0)
        self._last: dict[int, tuple] = {}
        self._cache: dict[int, dict[tuple, tuple]] = {}
        # Per host: the slots (vm, vCPU) on it and their rates since ``_since``.
        self._slots: dict[int, np.ndarray] = {h: np.zeros(0, dtype=np.int64) for h in specs}
        self._rates: dict[int, np.ndarray] = {h: np.zeros((0, len(SLOT_RATES))) for h in specs}
        self._hist_rates: dict[int, np.ndarray] = {
            h: np.zeros((0, len(LATENCY_EDGES_S))) for h in specs}
        self._since = dict.fromkeys(specs, 0.0)
        self._slot_of: dict[tuple[int, int], int] = {}
        self.slot_vm: list[int] = []
        self.slot_vcpu: list[int] = []
        self.slot_host: list[int] = []
        self._sums = np.zeros((0, len(SLOT_RATES)))
        self._hist = np.zeros((0, len(LATENCY_EDGES_S)))
        self._present = np.zeros(0)

    # --- slots ----------------------------------------------------------------------------------

    def _slots_for(self, vm: int, n: int, host: int) -> list[int]:
        out = []
        for i in range(n):
            slot = self._slot_of.get((vm, i))
            if slot is None or self.slot_host[slot] != host:
                slot = len(self.slot_vm)
                self._slot_of[(vm, i)] = slot
                self.slot_vm.append(vm)
                self.slot_vcpu.append(i)
                self.slot_host.append(host)
            out.append(slot)
        grow = len(self.slot_vm) - len(self._present)
        if grow > 0:
            self._sums = np.vstack([self._sums, np.zeros((grow, len(SLOT_RATES)))])
            self._hist = np.vstack([self._hist, np.zeros((grow, len(LATENCY_EDGES_S)))])
            self._present = np.concatenate([self._present, np.zeros(grow)])
        return out

    def _flush(self, host: int, now: float) -> None:
        dt = now - self._since[host]
        slots = self._slots[host]
        if dt > 0 and slots.size:
            self._sums[slots] += self._rates[host] * dt
            self._hist[slots] += self._hist_rates[host] * dt
            self._present[slots] += dt
        self._since[host] = now

    # --- sharing --------------------------------------------------------------------------------

    def allocate(self, now: float, scope: np.ndarray, ids: np.ndarray, host: np.ndarray,
                 demand_hz: np.ndarray, cap_hz: np.ndarray, alloc_hz: np.ndarray) -> None:
        """Overwrite ``alloc_hz`` (aligned with ``ids``) for the VMs on time-sliced hosts among
        ``ids`` (every running VM of the hosts in the mask ``scope``, on ``host``), simulating each
        host whose demand changed; a host in scope that runs no VM any more stops its rates."""
        on = self.is_sliced[host]
        busy = np.unique(host[on]) if on.any() else np.zeros(0, dtype=np.int64)
        for h in busy.tolist():
            mine = np.flatnonzero(host == h)
            alloc_hz[mine] = self._host(now, h, ids[mine], demand_hz[mine], cap_hz[mine])
        empty = self.is_sliced & scope
        empty[busy] = False
        for h in np.flatnonzero(empty).tolist():
            if self._slots[h].size:
                self._clear(now, h)

    def _clear(self, now: float, h: int) -> None:
        self._flush(h, now)
        self._slots[h] = np.zeros(0, dtype=np.int64)
        self._rates[h] = np.zeros((0, len(SLOT_RATES)))
        self._hist_rates[h] = np.zeros((0, len(LATENCY_EDGES_S)))
        self._last.pop(h, None)

    def _host(self, now: float, h: int, vms: np.ndarray, demand_hz: np.ndarray,
              cap_hz: np.ndarray) -> np.ndarray:
        d = self.dc
        core_hz = float(d.hosts.core_hz[h])
        vcpus = d.vms.vcpus[vms]
        per_vcpu = np.clip(demand_hz / np.maximum(vcpus * core_hz, 1.0), 0.0, 1.0)
        cap_cores = cap_hz / core_hz
        # A VM paused (a migration's switch-over) demands nothing; a cap of a whole vCPU per
        # vCPU is no cap.
        per_vcpu[cap_cores <= 0] = 0.0
        caps = np.where((cap_cores > 0) & (cap_cores < vcpus - 1e-9), cap_cores, math.inf)
        key = (tuple(vms.tolist()), tuple(np.round(per_vcpu, 9).tolist()),
               tuple(np.round(caps, 9).tolist()))
        cache = self._cache.setdefault(h, {})
        if key not in cache:
            if len(cache) >= _CACHE_PER_HOST:
                del cache[next(iter(cache))]  # the oldest
            cache[key] = self._simulate(h, vms, per_vcpu, caps, vcpus)
        slots, rates, hist, alloc = cache[key]
        if key != self._last.get(h):
            self._last[h] = key
            self._flush(h, now)
            self._slots[h], self._rates[h], self._hist_rates[h] = slots, rates, hist
        return alloc

    def _simulate(self, h: int, vms: np.ndarray, per_vcpu: np.ndarray, caps: np.ndarray,
                  vcpus: np.ndarray) -> tuple:
        spec = self.specs[h]
        d = self.dc
        shares = d.vms.shares[vms]
        mean_share = float(shares.mean()) if len(shares) else 1.0
        loads = [VmLoad(tuple(VcpuLoad(float(per_vcpu[j]), float(self.burst_s[vm]))
                              for _ in range(int(vcpus[j]))),
                        weight=float(shares[j]) / mean_share, cap=float(caps[j]))
                 for j, vm in enumerate(vms.tolist())]
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(h, self._calls[h])))
        self._calls[h] += 1
        policy = spec.hypervisor.make_policy()
        host = HostSlicer(int(d.hosts.cores[h]), loads, policy, profile=spec.hypervisor.costs,
                          rng=rng)
        res = host.run(spec.window_s, spec.warmup_s) if loads else None
        self.windows += 1
        slots: list[int] = []
        for j, vm in enumerate(vms.tolist()):
            slots += self._slots_for(vm, int(vcpus[j]), h)
        n = len(slots)
        rates = np.zeros((n, len(SLOT_RATES)))
        hist = np.zeros((n, len(LATENCY_EDGES_S)))
        alloc = np.zeros(len(vms))
        if res is not None:
            self.slices += res.slices
            c, w = res.counters, spec.window_s
            guest = np.flatnonzero(res.vm >= 0)  # the host OS's own tasks come last
            rates[:, 0] = c["run_s"][guest] / w
            rates[:, 1] = (c["ready_s"][guest] + c["throttled_s"][guest]) / w
            rates[:, 2] = c["costop_s"][guest] / w
            rates[:, 3] = c["idle_s"][guest] / w
            rates[:, 4] = c["switches"][guest] / w
            rates[:, 6] = c["work_s"][guest] / w
            for k, g in enumerate(guest.tolist()):
                lat = res.latencies_s[g]
                rates[k, 5] = len(lat) / w
                hist[k] = np.bincount(np.searchsorted(LATENCY_EDGES_S, lat, side="right"),
                                      minlength=len(LATENCY_EDGES_S))[:len(LATENCY_EDGES_S)] / w
            alloc = np.bincount(res.vm[guest], weights=c["work_s"][guest], minlength=len(vms)) \
                / w * float(d.hosts.core_hz[h])
        return np.array(slots, dtype=np.int64), rates, hist, alloc

    # --- reporting ------------------------------------------------------------------------------

    def take_period(self, now: float) -> dict[str, np.ndarray] | None:
        """The period's sums per slot that was on a time-sliced host, and start a new period."""
        for h in self.specs:
            self._flush(h, now)
        seen = np.flatnonzero(self._present > 0)
        if seen.size == 0:
            return None
        out = {
            "slot": seen,
            "vm": np.array(self.slot_vm, dtype=np.int64)[seen],
            "vcpu": np.array(self.slot_vcpu, dtype=np.int64)[seen],
            "host": np.array(self.slot_host, dtype=np.int64)[seen],
            "present_s": self._present[seen].copy(),
            "hist": self._hist[seen].copy(),
            **{name: self._sums[seen, k].copy() for k, name in enumerate(SLOT_RATES)},
        }
        self._sums[:] = 0.0
        self._hist[:] = 0.0
        self._present[:] = 0.0
        return out
