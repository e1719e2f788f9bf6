"""The memory model inside a run: when it is recomputed, and its time-weighted period sums.

The simulation calls :meth:`MemoryRun.slowdown` wherever it shares CPU (the state of memory
changes with the same events: samples, arrivals, departures, migrations) and divides each VM's
CPU cap by it: a VM stalled on faults does less work with the same vCPUs. Levels are kept as
rates between two events, like the CPU sums, so a period's mean is exact.
"""

from __future__ import annotations

import numpy as np

from vsim.model.interfaces import DemandSource
from vsim.model.reclaim import LEVELS, MemoryModel

__all__ = ["HOST_MEMORY", "VM_MEMORY", "MemoryRun"]

# Rows of the per-VM and per-host rate arrays (levels in bytes, traffic in bytes/s).
VM_MEMORY = (*LEVELS, "swap_in", "swap_out", "stall")
HOST_MEMORY = ("free", "saved", "balloon", "compressed", "swapped", "swap_in", "swap_out",
               "deficit")
_VM_IN, _VM_OUT = VM_MEMORY.index("swap_in"), VM_MEMORY.index("swap_out")
_HOST_IN, _HOST_OUT = HOST_MEMORY.index("swap_in"), HOST_MEMORY.index("swap_out")


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
            self.p_vm[_VM_IN, moved] += into[moved]
            self.p_vm[_VM_OUT, moved] += out[moved]
            where = m.where[moved]
            ok = where >= 0
            np.add.at(self.p_host[_HOST_IN], where[ok], into[moved][ok])
            np.add.at(self.p_host[_HOST_OUT], where[ok], out[moved][ok])
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
        for row, key in enumerate(LEVELS):
            r[row, vms] = m.level[key][vms]
        r[_VM_IN, vms] = m.swap_in_bytes_s[vms]
        r[_VM_OUT, vms] = m.swap_out_bytes_s[vms]
        r[VM_MEMORY.index("stall"), vms] = m.slowdown[vms] - 1.0
        placed = np.flatnonzero(m.where >= 0)
        where = m.where[placed]

        def per_host(values: np.ndarray) -> np.ndarray:
            return np.bincount(where, weights=values[placed], minlength=n_h)[hosts]

        values = {
            "free": np.where(m.hosts.enabled, m.host_free, 0.0)[hosts],
            "saved": m.host_saved[hosts],
            **{k: per_host(m.level[k]) for k in ("balloon", "compressed", "swapped")},
            "swap_in": per_host(m.swap_in_bytes_s),
            "swap_out": per_host(m.swap_out_bytes_s),
            "deficit": m.host_deficit[hosts],
        }
        for row, key in enumerate(HOST_MEMORY):
            self.r_host[row, hosts] = values[key]

    def snapshot(self, vm_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The period's sums (levels x seconds, traffic in bytes) for every host and the VMs
        ``vm_ids``; keys ``host_<row>``, ``vm_<row>`` and ``host_state`` (the period's worst)."""
        out = {f"host_{k}": self.p_host[i] for i, k in enumerate(HOST_MEMORY)}
        out.update({f"vm_{k}": self.p_vm[i, vm_ids] for i, k in enumerate(VM_MEMORY)})
        out["host_state"] = self.state_max
        out["host_enabled"] = self.model.hosts.enabled
        return out
