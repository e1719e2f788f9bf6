"""The memory model inside a run: when it is recomputed, and its time-weighted period sums.

The simulation calls :meth:`MemoryRun.slowdown` wherever it shares CPU (the state of memory
changes with the same events: samples, arrivals, departures, migrations) and divides each VM's
CPU cap by it: a VM stalled on faults does less work with the same vCPUs. Levels are kept as
rates between two events, like the CPU sums, so a period's mean is exact.
"""

from __future__ import annotations

import numpy as np

from vsim.model.interfaces import DemandSource
from vsim.model.reclaim import MemoryModel

__all__ = ["HOST_MEMORY", "VM_MEMORY", "MemoryRun"]

# Rows of the per-VM and per-host rate arrays (levels in bytes, traffic in bytes/s).
VM_MEMORY = ("active", "shared", "balloon", "compressed", "swapped", "swap_in", "swap_out",
             "stall")
HOST_MEMORY = ("free", "saved", "balloon", "compressed", "swapped", "swap_in", "swap_out",
               "deficit")


class MemoryRun:
    def __init__(self, model: MemoryModel, sources: list[DemandSource] | None = None) -> None:
        self.model = model
        self.sources = sources or []
        n_h, n_v = len(model.hosts.ram), len(model.vms.ram)
        self.r_vm = np.zeros((len(VM_MEMORY), n_v))
        self.r_host = np.zeros((len(HOST_MEMORY), n_h))
        self.reset_period()

    def reset_period(self) -> None:
        self.p_vm = np.zeros_like(self.r_vm)
        self.p_host = np.zeros_like(self.r_host)
        self.state_max = self.model.host_state.copy()

    def on_sample(self, source: DemandSource, k: int) -> None:
        self.model.vms.active_frac[source.vms] = source.row(k)

    def slowdown(self, ids: np.ndarray, host: np.ndarray, busy: np.ndarray,
                 scope: np.ndarray | None) -> np.ndarray:
        """The new state of the hosts in ``scope`` (None: all); each VM's slowdown."""
        m = self.model
        slow = m.update(ids, host, busy, scope)
        out, into = m.take_moved()
        moved = np.flatnonzero((out > 0) | (into > 0))
        if moved.size:
            # Pages that changed place at this instant: counted at once, on the VM's host.
            self.p_vm[5, moved] += into[moved]
            self.p_vm[6, moved] += out[moved]
            where = m.where[moved]
            ok = where >= 0
            np.add.at(self.p_host[5], where[ok], into[moved][ok])
            np.add.at(self.p_host[6], where[ok], out[moved][ok])
        self.state_max = np.maximum(self.state_max, m.host_state)
        return slow

    def flush(self, hosts: np.ndarray | slice, host_dt: np.ndarray, vms: np.ndarray | slice,
              vm_dt: np.ndarray) -> None:
        self.p_host[:, hosts] += self.r_host[:, hosts] * host_dt
        self.p_vm[:, vms] += self.r_vm[:, vms] * vm_dt

    def set_rates(self, hosts: np.ndarray | slice, vms: np.ndarray | slice) -> None:
        """Rates of ``hosts`` and ``vms`` from the model's state (call after :meth:`slowdown`;
        the caller has flushed them)."""
        m = self.model
        n_h = len(m.hosts.ram)
        r = self.r_vm
        for row, key in enumerate(VM_MEMORY[:5]):
            r[row, vms] = m.level[key][vms]
        r[5, vms] = m.swap_in_bytes_s[vms]
        r[6, vms] = m.swap_out_bytes_s[vms]
        r[7, vms] = m.slowdown[vms] - 1.0
        placed = np.flatnonzero(m.where >= 0)
        where = m.where[placed]

        def per_host(values: np.ndarray) -> np.ndarray:
            return np.bincount(where, weights=values[placed], minlength=n_h)[hosts]

        rh = self.r_host
        rh[0, hosts] = np.where(m.hosts.enabled, m.host_free, 0.0)[hosts]
        rh[1, hosts] = m.host_saved[hosts]
        rh[2, hosts] = per_host(m.level["balloon"])
        rh[3, hosts] = per_host(m.level["compressed"])
        rh[4, hosts] = per_host(m.level["swapped"])
        rh[5, hosts] = per_host(m.swap_in_bytes_s)
        rh[6, hosts] = per_host(m.swap_out_bytes_s)
        rh[7, hosts] = m.host_deficit[hosts]

    def snapshot(self, vm_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The period's sums (levels x seconds, traffic in bytes) for every host and the VMs
        ``vm_ids``; keys ``host_<row>``, ``vm_<row>`` and ``host_state`` (the period's worst)."""
        out = {f"host_{k}": self.p_host[i] for i, k in enumerate(HOST_MEMORY)}
        out.update({f"vm_{k}": self.p_vm[i, vm_ids] for i, k in enumerate(VM_MEMORY)})
        out["host_state"] = self.state_max
        out["host_enabled"] = self.model.hosts.enabled
        return out
