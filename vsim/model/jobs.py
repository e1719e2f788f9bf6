"""Finite work carried by VMs (CloudSim's cloudlets): an amount of cycles that completes when delivered.

A job has ``threads`` threads of ``length_cycles`` each. While its VM runs, each active thread
wants one vCPU; the VM's CPU delivered to its jobs is split between them in proportion to their
threads (time-shared, like a guest OS scheduler). A job completes when all its cycles are delivered,
and its completion time shows the slowdown it suffered under contention.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Jobs"]


class Jobs:
    """All jobs of a run as arrays: ``vm``, ``threads``, per-thread ``length_cycles``, ``submit_s``."""

    def __init__(self, vm: np.ndarray, threads: np.ndarray, length_cycles: np.ndarray,
                 submit_s: np.ndarray) -> None:
        self.vm = np.asarray(vm, dtype=np.int64)
        self.threads = np.asarray(threads, dtype=np.int64)
        self.length_cycles = np.asarray(length_cycles, dtype=float)
        self.submit_s = np.asarray(submit_s, dtype=float)
        n = len(self.vm)
        self.remaining = self.threads * self.length_cycles  # cycles still to deliver
        self.start_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.submitted = np.zeros(n, dtype=bool)
        self.active = np.zeros(n, dtype=bool)  # submitted, started, not finished or killed
        self.killed = np.zeros(n, dtype=bool)
        self.rate = np.zeros(n)  # cycles per second delivered now

    def __len__(self) -> int:
        return len(self.vm)

    @property
    def done(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.finish_s)))

    @property
    def finished_all(self) -> bool:
        return bool(np.all(~np.isnan(self.finish_s) | self.killed))

    def activate(self, running_vm: np.ndarray, now: float) -> None:
        """Start the submitted jobs whose VM is running (``running_vm`` is a mask over VMs)."""
        ready = self.submitted & ~self.active & np.isnan(self.start_s) & ~self.killed
        ready &= running_vm[self.vm]
        self.active[ready] = True
        self.start_s[ready] = now

    def threads_per_vm(self, n_vms: int) -> np.ndarray:
        return np.bincount(self.vm[self.active], weights=self.threads[self.active], minlength=n_vms)

    def set_rates(self, job_alloc_hz: np.ndarray, threads_per_vm: np.ndarray) -> None:
        """Split each VM's CPU for jobs (``job_alloc_hz``) among its active jobs by threads."""
        a = self.active
        vm = self.vm[a]
        self.rate[:] = 0.0
        self.rate[a] = job_alloc_hz[vm] * self.threads[a] / threads_per_vm[vm]

    def advance(self, dt: float) -> None:
        a = self.active
        self.remaining[a] -= self.rate[a] * dt

    def time_to_next_completion(self) -> float:
        a = self.active & (self.rate > 0)
        if not a.any():
            return np.inf
        return float(np.min(np.maximum(self.remaining[a], 0.0) / self.rate[a]))

    def complete_due(self, now: float) -> np.ndarray:
        """Finish the jobs whose remaining work is (to rounding) zero; returns their ids."""
        # A microsecond of work at the current rate, or a part in 1e12 of the job: float dust.
        tolerance = np.maximum(self.rate * 1e-6, self.threads * self.length_cycles * 1e-12)
        due = np.flatnonzero(self.active & (self.remaining <= tolerance))
        self.active[due] = False
        self.remaining[due] = 0.0
        self.finish_s[due] = now
        self.rate[due] = 0.0
        return due

    def kill_on(self, vm_mask: np.ndarray) -> np.ndarray:
        """Jobs of departed VMs stop unfinished; returns their ids."""
        gone = np.flatnonzero(vm_mask[self.vm] & np.isnan(self.finish_s) & ~self.killed)
        self.active[gone] = False
        self.killed[gone] = True
        self.rate[gone] = 0.0
        return gone
