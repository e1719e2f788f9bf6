"""Linux's Completely Fair Scheduler (CFS) as KVM's vCPU threads meet it.

Under KVM every vCPU is a host thread; the host kernel's CFS shares the CPUs among them. Facts
from ``kernel/sched/fair.c`` (Linux 5.x/6.0-6.5) and its documentation (sched-design-CFS):

* Each CPU has a run queue ordered by virtual runtime: a thread's run time scaled by
  ``1024 / weight`` (weight 1024 at nice 0; a cgroup's ``cpu.weight`` 100 is 1024 too). The
  thread with the smallest vruntime runs next.
* The targeted latency (6 ms) and minimum granularity (0.75 ms) are scaled by
  ``1 + log2(min(CPUs, 8))``; a thread's slice is its weight's part of the latency, or of
  ``nr_running x min_granularity`` once more than ``latency / min_granularity`` (8) threads are
  runnable. Without high-resolution ticks (the default) a slice ends at the first scheduler tick
  (every 4 ms at HZ=250) after it is used up, or earlier when the running thread is ahead of the
  leftmost by more than its slice.
* A waking thread starts no further back than half a latency behind the queue's minimum
  vruntime (GENTLE_FAIR_SLEEPERS) and preempts the running thread when that one's vruntime is
  ahead by more than the wake-up granularity (1 ms, scaled, in the waker's virtual time). A
  group unthrottled at the start of its quota period is placed the same way.
* Idle CPUs pull runnable threads from busy ones; busy CPUs rebalance their weighted load
  periodically.
* ``cpu.max`` quota/period (default period 100 ms) caps a group's CPU time per period.

A VM's weight is split evenly over its vCPU threads (a cgroup per VM spreads its shares over the
CPUs its threads run on in proportion to their load, which with equal threads is the same).
Linux 6.6 replaced CFS with EEVDF; under steady load its shares are the same and its slices are
the base slice (0.75 ms, scaled): ``Fair(latency_s=0.00075 * 8)`` approximates it.
"""

from __future__ import annotations

import math
from array import array
from heapq import heapify, heappop, heappush

from vsim.model.timeslice.common import Caps, choose_cpu
from vsim.model.timeslice.host import HostSlicer
from vsim.model.timeslice.parts import FOREVER, NS, RUNNING, THROTTLED, Policy, Vcpu

__all__ = ["Fair"]

NICE_0 = 1024


class Fair(Policy):
    name = "fair"

    def __init__(self, *, latency_s: float = 0.006, min_granularity_s: float = 0.00075,
                 wakeup_granularity_s: float = 0.001, tick_s: float = 0.004,
                 scaling: str = "log", quota_period_s: float = 0.1, balance_ticks: int = 8,
                 hrtick: bool = False) -> None:
        if scaling not in ("log", "linear", "none"):
            raise ValueError(f"scaling is log, linear or none, got {scaling!r}")
        self.base = (latency_s, min_granularity_s, wakeup_granularity_s)
        self.scaling = scaling
        self.tick_ns = round(tick_s * NS)
        self.ratelimit_ns = 0
        self.slice_includes_switch = False  # the slice ends at a tick, whenever the switch was
        self.quota_ticks = max(1, round(quota_period_s / tick_s))
        self.balance_ticks = balance_ticks
        self.epoch_ticks = math.lcm(self.quota_ticks, balance_ticks)
        self.hrtick = hrtick

    def setup(self, host: HostSlicer) -> None:
        self.h = host
        n = host.n_pcpus
        cpus = min(n, 8)
        factor = {"log": 1 + int(math.log2(cpus)), "linear": cpus, "none": 1}[self.scaling]
        self.latency, self.min_gran, self.wakeup_gran = (round(x * factor * NS) for x in self.base)
        self.nr_latency = max(1, self.latency // self.min_gran)
        # Each CPU's run queue is a heap of (vruntime, id, vCPU): a queued thread's vruntime does
        # not change until it leaves the queue, and the leftmost is what every decision reads.
        self.q: list[list[tuple[int, int, Vcpu]]] = [[] for _ in range(n)]
        # The weights queued on each CPU (the running thread's not included) and each queue's
        # minimum vruntime; integer arrays, which the compiled build reads as C arrays.
        self.load = array("q", [0]) * n
        self.minv = array("q", [0]) * n
        self.caps = Caps(host, self.tick_ns * self.quota_ticks)
        self.ticks = 0
        for v in host.vcpus:
            v.rq = v.pin if v.pin >= 0 else v.id % n
            v.vruntime = 0
            if v.vm >= 0:
                vm = host.vms[v.vm]
                v.weight = max(2, round(NICE_0 * vm.weight / len(vm.vcpus)))
            else:
                v.weight = NICE_0

    # --- queues ---------------------------------------------------------------------------------

    def _move(self, v: Vcpu, p: int) -> None:
        """Re-base ``v``'s vruntime from its last queue to ``p``'s (as on migration)."""
        if p != v.rq:
            v.vruntime += self.minv[p] - self.minv[v.rq]
            v.rq = p

    def _push(self, v: Vcpu, p: int) -> None:
        heappush(self.q[p], (v.vruntime, v.id, v))
        self.load[p] += v.weight

    def _take(self, entry: tuple[int, int, Vcpu], p: int) -> Vcpu:
        """Take a queued thread that need not be the leftmost out of ``p``'s queue."""
        q = self.q[p]
        q.remove(entry)
        heapify(q)
        v = entry[2]
        self.load[p] -= v.weight
        return v

    def enqueue(self, v: Vcpu, now: int, woken: bool) -> int:
        p = choose_cpu(self.h, v)
        if p != v.rq:
            self._move(v, p)
        if woken:
            floor = self.minv[p] - self.latency // 2
            if floor > v.vruntime:
                v.vruntime = floor
        heappush(self.q[p], (v.vruntime, v.id, v))
        self.load[p] += v.weight
        return p

    def requeue(self, v: Vcpu, p: int, now: int) -> None:
        heappush(self.q[p], (v.vruntime, v.id, v))
        self.load[p] += v.weight

    def waiting(self, p: int) -> int:
        return len(self.q[p])

    def pick(self, p: int, now: int) -> Vcpu | None:
        q = self.q[p]
        if not q:  # pull the leftmost movable thread of the busiest queue (the first, on a tie)
            if not any(self.q):  # the common case of a CPU going idle, cheaply
                return None
            busiest, most = -1, 0
            for k, qk in enumerate(self.q):
                if len(qk) > most:
                    busiest, most = k, len(qk)
            if busiest < 0:
                return None
            entry = min([e for e in self.q[busiest] if e[2].pin < 0], default=None)
            if entry is None:
                return None
            v = self._take(entry, busiest)
            self._move(v, p)
            return v
        vruntime, _, v = heappop(q)
        self.load[p] -= v.weight
        if vruntime > self.minv[p]:
            self.minv[p] = vruntime
        return v

    # --- slices and accounting ------------------------------------------------------------------

    def _ideal(self, v: Vcpu, p: int) -> int:
        nr = len(self.q[p]) + 1
        period = self.latency if nr <= self.nr_latency else nr * self.min_gran
        return period * v.weight // (v.weight + self.load[p])

    def slice_ns(self, v: Vcpu, p: int, now: int) -> int:
        if self.hrtick:
            return self._ideal(v, p)
        return FOREVER  # until a tick finds the slice used up

    def _vruntime_now(self, v: Vcpu, now: int) -> int:
        return v.vruntime + max(0, now - v.since) * NICE_0 // v.weight

    def charge(self, v: Vcpu, ran: int, now: int) -> None:
        v.vruntime += ran * NICE_0 // v.weight
        q = self.q[v.rq]
        low = v.vruntime
        if q:
            leftmost = q[0][0]
            if leftmost < low:
                low = leftmost
        if low > self.minv[v.rq]:
            self.minv[v.rq] = low
        if self.caps.any:
            self.caps.charge(v, ran)

    def budget_ns(self, v: Vcpu) -> float:
        return self.caps.budget(v)

    def preempts(self, v: Vcpu, cur: Vcpu, p: int, now: int) -> bool:
        ran = now - cur.since
        ahead = cur.vruntime + (ran if ran > 0 else 0) * NICE_0 // cur.weight - v.vruntime
        return ahead > self.wakeup_gran * NICE_0 // v.weight

    def tick(self, now: int) -> tuple[list[int], list[int]]:
        self.ticks += 1
        preempt = []
        for p, c in enumerate(self.h.cur):
            q = self.q[p]
            if c is None or not q:
                continue
            ran = now - c.since
            ideal = self._ideal(c, p)
            # its slice used up, or (past the minimum granularity) ahead of the leftmost by more
            if ran >= ideal or (ran >= self.min_gran
                                and self._vruntime_now(c, now) - q[0][0] > ideal):
                preempt.append(p)
        if self.ticks % self.balance_ticks == 0:
            preempt += self._balance()
        refilled = self.caps.refill() if self.ticks % self.quota_ticks == 0 else []
        # Linux unthrottles a group with ENQUEUE_WAKEUP (unthrottle_cfs_rq), so its threads are
        # placed like waking ones; left where they were, a capped vCPU fell further behind every
        # period, ran its whole quota in one go after each refill and never repeated a state.
        for m in refilled:
            for v in self.h.vm_vcpus[m]:
                if v.state == THROTTLED:
                    v.vruntime = max(v.vruntime, self.minv[v.rq] - self.latency // 2)
        return preempt, refilled

    def _balance(self) -> list[int]:
        """Move one queued thread from the CPU with the most weight runnable to the one with the
        least, when that narrows the gap (its weight is under the gap: with equal weights, when
        they differ by two threads or more), the thread that leaves the gap smallest; an idle CPU
        that receives one must run it. Linux balances weighted load in the same direction."""
        n = self.h.n_pcpus
        if n == 1:
            return []
        cur = self.h.cur
        load = [self.load[p] + (c.weight if (c := cur[p]) is not None else 0) for p in range(n)]
        busiest = max(range(n), key=lambda k: (load[k], -k))
        idlest = min(range(n), key=lambda k: (load[k], k))
        gap = load[busiest] - load[idlest]
        movable = [e for e in self.q[busiest] if e[2].pin < 0 and e[2].weight < gap]
        if not movable:
            return []
        # Of the best fits, the rightmost (largest vruntime), as Linux detaches from the tail.
        best = min(movable, key=lambda e: (abs(gap - 2 * e[2].weight), -e[0], e[1]))
        v = self._take(best, busiest)
        self._move(v, idlest)
        self._push(v, idlest)
        return [idlest] if cur[idlest] is None else []

    def fingerprint(self) -> tuple:
        m = self.minv
        return (tuple(tuple(sorted((i, vr - m[p]) for vr, i, _ in q)) for p, q in enumerate(self.q)),
                tuple(v.vruntime - m[v.rq] if v.state == RUNNING else 0 for v in self.h.vcpus),
                self.caps.key())
