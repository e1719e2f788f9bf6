"""What the memory model reports: its columns in the hosts and vms tables, and the summary.

Levels (bytes held in balloons, compressed, swapped; free memory; what sharing saves) are the
period's time-weighted means; swap traffic is the bytes moved in the period; a VM's slowdown is
the period's mean factor by which its work took longer (1: nothing missing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vsim.model.datacenter import Datacenter
from vsim.model.interfaces import PeriodSnapshot
from vsim.model.reclaim import STATE_NAMES

__all__ = ["SLOWED", "MemoryTotals", "host_columns", "vm_columns"]

SLOWED = 1.10  # a VM counts as slowed down in a period when its work takes 10 % longer


def _columns(m: dict[str, np.ndarray], prefix: str, levels: dict[str, str], dt: float
             ) -> dict[str, np.ndarray]:
    """Level columns (period means, bytes) and the period's swap traffic (bytes moved)."""
    out = {column: m[f"{prefix}_{key}"] / dt for column, key in levels.items()}
    out["swap_in_bytes"] = m[f"{prefix}_swap_in"].copy()
    out["swap_out_bytes"] = m[f"{prefix}_swap_out"].copy()
    return out


_LEVELS = {"mem_balloon_bytes": "balloon", "mem_compressed_bytes": "compressed",
           "mem_swapped_bytes": "swapped"}


def host_columns(m: dict[str, np.ndarray], dt: float) -> dict[str, np.ndarray]:
    return {"mem_state": m["host_state"].astype(np.int8),
            **_columns(m, "host", {"mem_free_bytes": "free", "mem_shared_saved_bytes": "saved",
                                   **_LEVELS, "mem_deficit_bytes": "deficit"}, dt)}


def vm_columns(m: dict[str, np.ndarray], dt: float, present_s: np.ndarray
               ) -> dict[str, np.ndarray]:
    stall = np.divide(m["vm_stall"], present_s, out=np.zeros(len(present_s)),
                      where=present_s > 0)
    return {**_columns(m, "vm", {"mem_active_bytes": "active", "mem_shared_bytes": "shared",
                                 **_LEVELS}, dt),
            "mem_slowdown": 1.0 + stall}


class MemoryTotals:
    """Whole-run sums per host, for the summary."""

    def __init__(self, dc: Datacenter) -> None:
        self.dc = dc
        n = len(dc.hosts)
        self.enabled = np.zeros(n, dtype=bool)
        self.time_s = 0.0
        self.level_s = {k: np.zeros(n) for k in ("free", "saved", "balloon", "compressed",
                                                 "swapped")}
        self.swapped_peak = np.zeros(n)
        self.swapped_peak_all = 0.0  # the most swapped on all modelled hosts at once (a period)
        self.vm_ram_s = np.zeros(n)  # VM memory committed to each host, x seconds
        self.swap_in = np.zeros(n)
        self.swap_out = np.zeros(n)
        self.worst = np.zeros(n, dtype=np.int8)
        self.vm_present_s = np.zeros(n)  # VM-seconds on each host, and their stall-seconds
        self.vm_stall_s = np.zeros(n)
        self.vm_slowed_s = np.zeros(n)

    def add(self, s: PeriodSnapshot) -> None:
        m = s.memory
        assert m is not None
        n = len(self.dc.hosts)
        self.enabled = m["host_enabled"]
        self.time_s += s.dt_s
        for key, total in self.level_s.items():
            total += m[f"host_{key}"]
        self.swapped_peak = np.maximum(self.swapped_peak, m["host_swapped"] / s.dt_s)
        self.swapped_peak_all = max(self.swapped_peak_all, float(m["host_swapped"].sum()) / s.dt_s)
        self.vm_ram_s += s.host_ram_used * s.dt_s
        self.swap_in += m["host_swap_in"]
        self.swap_out += m["host_swap_out"]
        self.worst = np.maximum(self.worst, m["host_state"])
        placed = s.vm_host >= 0
        host = s.vm_host[placed]
        present, stall = s.vm_present_s[placed], m["vm_stall"][placed]
        slowdown = 1.0 + np.divide(stall, present, out=np.zeros(len(present)), where=present > 0)
        self.vm_present_s += np.bincount(host, weights=present, minlength=n)
        self.vm_stall_s += np.bincount(host, weights=stall, minlength=n)
        self.vm_slowed_s += np.bincount(host, weights=np.where(slowdown > SLOWED, present, 0.0),
                                        minlength=n)

    def summary(self, admission_refusals: int) -> dict[str, Any]:
        h = self.dc.hosts
        on = np.flatnonzero(self.enabled)
        t = self.time_s or 1.0

        def mean_slowdown(idx: np.ndarray) -> float:
            present = self.vm_present_s[idx].sum()
            return float(1.0 + self.vm_stall_s[idx].sum() / present) if present > 0 else 1.0

        hosts = [{
            "host": h.name[i], "group": h.group[i], "ram_bytes": float(h.ram_bytes[i]),
            "vm_ram_bytes": float(self.vm_ram_s[i] / t),  # time-weighted
            "state_worst": STATE_NAMES[int(self.worst[i])],
            **{f"{k}_mean_bytes": float(self.level_s[k][i] / t) for k in self.level_s},
            "swapped_peak_bytes": float(self.swapped_peak[i]),
            "swap_in_bytes": float(self.swap_in[i]), "swap_out_bytes": float(self.swap_out[i]),
            "slowdown_mean": mean_slowdown(np.array([i])),
            "vm_time_slowed_frac": float(self.vm_slowed_s[i] / self.vm_present_s[i])
            if self.vm_present_s[i] > 0 else 0.0,
        } for i in on]
        present = self.vm_present_s[on].sum()
        return {
            "hosts_modelled": int(on.size),
            "swap_in_bytes": float(self.swap_in[on].sum()),
            "swap_out_bytes": float(self.swap_out[on].sum()),
            "swapped_peak_bytes": self.swapped_peak_all,
            "balloon_mean_bytes": float(self.level_s["balloon"][on].sum() / t),
            "shared_saved_mean_bytes": float(self.level_s["saved"][on].sum() / t),
            "slowdown_mean": mean_slowdown(on),
            "vm_time_slowed_frac": float(self.vm_slowed_s[on].sum() / present) if present else 0.0,
            "admission_refusals": admission_refusals,
            "hosts": hosts,
        }
