"""What both policies share: the cap budget of each VM and the choice of a CPU for a vCPU."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from vsim.model.timeslice.parts import RUNNING, Vcpu, first_idle

if TYPE_CHECKING:
    from vsim.model.timeslice.host import HostSlicer

__all__ = ["Caps", "choose_cpu"]


class Caps:
    """Each capped VM may run ``cap x period`` of CPU time per period, over all its vCPUs (Xen's
    cap, cgroup cpu.max); once that is used up its vCPUs wait, throttled, for the next period."""

    def __init__(self, host: HostSlicer, period_ns: int) -> None:
        self.host = host
        self.period_ns = period_ns
        self.quota = [vm.cap * period_ns if math.isfinite(vm.cap) else math.inf for vm in host.vms]
        self.used = [0] * len(host.vms)
        self.any = any(math.isfinite(q) for q in self.quota)

    def budget(self, v: Vcpu) -> float:
        """What ``v`` may still run this period, its running siblings taking their part."""
        if not self.any or v.vm < 0 or math.isinf(self.quota[v.vm]):
            return math.inf
        now = self.host.now
        used, sharing = self.used[v.vm], 1
        for s in self.host.vm_vcpus[v.vm]:
            if s is not v and s.state == RUNNING:
                used += max(0, now - s.since)
                sharing += 1
        return (self.quota[v.vm] - used) / sharing

    def charge(self, v: Vcpu, ran: int) -> None:
        # Only capped VMs keep count: ``refill`` resets only those, and an uncapped VM's count
        # growing without end made every state unique, so repeating schedules on a host with a
        # capped VM were never recognised (``HostSlicer._maybe_skip``).
        if self.any and v.vm >= 0 and math.isfinite(self.quota[v.vm]):
            self.used[v.vm] += ran

    def refill(self) -> list[int]:
        """A new period: the capped VMs start again from nothing (the part of a run that falls
        before the period start is not charged to the new one)."""
        if not self.any:
            return []
        now = self.host.now
        refilled = [m for m, q in enumerate(self.quota) if math.isfinite(q)]
        for m in refilled:
            self.used[m] = -sum(max(0, now - s.since) for s in self.host.vm_vcpus[m]
                                if s.state == RUNNING)
        return refilled

    def key(self) -> tuple:
        return tuple(self.used) if self.any else ()


def choose_cpu(host: HostSlicer, v: Vcpu) -> int:
    """Where a vCPU that becomes runnable queues: its pinned CPU; else the CPU it ran on last if
    that is idle (warm caches), else the first idle CPU, else the last one anyway."""
    if v.pin >= 0:
        return v.pin
    cur = host.cur
    if cur[v.rq] is None:
        return v.rq
    idle = first_idle(cur)
    return idle if idle >= 0 else v.rq
