"""Xen's credit scheduler (credit1), the default of Xen up to 4.11.

Facts from Xen's ``sched_credit.c`` and its documentation (Chisnall, *The Definitive Guide to the
Xen Hypervisor*, 2007; Cherkasova et al., SIGMETRICS PER 2007):

* Credits are CPU time: every 30 ms accounting period the host's CPU time (30 ms per physical
  CPU) is dealt out to the active VMs in proportion to their weights (256 by default; only ratios
  matter), and within a VM equally to its active vCPUs. A running vCPU burns credit as it runs.
* Priorities: BOOST > UNDER (credit left) > OVER (credit used up). Each physical CPU has a run
  queue ordered by priority, first come first served within a priority; a vCPU runs for a 30 ms
  slice or until it blocks, then goes to the back of its priority.
* A vCPU that wakes while UNDER is BOOSTed and preempts a running vCPU of lower priority, but not
  before that one has run the rate limit (1 ms); boost is lost at the next 10 ms tick that finds
  it running.
* Priorities change only at accounting (OVER if credit < 0, else UNDER) and at ticks (boost
  lost). A vCPU that earned more than one slice of credit stops earning and keeps half; credit
  never sinks below minus one slice.
* A slice is timed from the scheduling decision: the slice timer and the vCPU's credit burn
  both start when the scheduler chooses it, so the context switch that brings it in is part of
  its 30 ms and is paid from its credit.
* Load balancing: a CPU whose best queued vCPU is OVER (or that has none) takes a better one
  from another CPU's queue; an idle CPU takes anything runnable.

Caps are enforced per accounting period as a budget of CPU time (see ``Caps``) rather than by
Xen's parking on negative credit; both hold a VM to ``cap`` of a core over a period.
"""

from __future__ import annotations

import math
from operator import attrgetter

from vsim.model.timeslice.common import Caps, choose_cpu
from vsim.model.timeslice.host import HostSlicer
from vsim.model.timeslice.parts import NS, RUNNING, THROTTLED, Policy, Vcpu

__all__ = ["Credit"]

BOOST, UNDER, OVER, IDLE = 0, 1, 2, 3
_PRI = attrgetter("pri")


class Credit(Policy):
    name = "credit"

    def __init__(self, *, slice_s: float = 0.030, tick_s: float = 0.010, accounting_ticks: int = 3,
                 ratelimit_s: float = 0.001, boost: bool = True) -> None:
        self.slice = round(slice_s * NS)
        self.tick_ns = round(tick_s * NS)
        self.epoch_ticks = accounting_ticks
        self.ratelimit_ns = round(ratelimit_s * NS)
        self.slice_includes_switch = True  # the slice timer is set when the vCPU is chosen
        self.boost = boost

    def setup(self, host: HostSlicer) -> None:
        self.h = host
        n = host.n_pcpus
        self.q: list[list[Vcpu]] = [[] for _ in range(n)]
        self.period = self.tick_ns * self.epoch_ticks
        self.caps = Caps(host, self.period)
        self.ticks = 0
        self.active: set[int] = set()
        self._earned: dict[tuple[tuple[int, int], ...], list[int]] = {}
        for v in host.vcpus:
            v.credit, v.pri, v.charged = 0, UNDER, 0
            v.rq = v.pin if v.pin >= 0 else v.id % n

    def _weight(self, vm: int) -> float:
        return self.h.vms[vm].weight if vm >= 0 else 1.0

    def _insert(self, v: Vcpu, p: int) -> None:
        """Behind every vCPU of its priority or better."""
        q = self.q[p]
        pri = v.pri
        i = len(q)
        while i:
            ahead = q[i - 1]
            if ahead.pri <= pri:
                break
            i -= 1
        q.insert(i, v)
        v.rq = p

    def enqueue(self, v: Vcpu, now: int, woken: bool) -> int:
        if woken and self.boost and v.pri == UNDER:
            v.pri = BOOST
        p = choose_cpu(self.h, v)
        self._insert(v, p)
        return p

    def requeue(self, v: Vcpu, p: int, now: int) -> None:
        self._insert(v, p)

    def waiting(self, p: int) -> int:
        return len(self.q[p])

    def pick(self, p: int, now: int) -> Vcpu | None:
        q = self.q[p]
        if not q and not any(self.q):  # the common case of a CPU going idle, cheaply
            return None
        best = IDLE
        if q:
            head = q[0]
            best = head.pri
        if best >= OVER:
            for k in range(1, self.h.n_pcpus):
                peer = self.q[(p + k) % self.h.n_pcpus]
                for i, v in enumerate(peer):
                    if v.pin < 0 and v.pri < best:
                        del peer[i]
                        v.rq = p
                        v.charged = now
                        return v
        if not q:
            return None
        v = q.pop(0)
        v.charged = now
        return v

    def slice_ns(self, v: Vcpu, p: int, now: int) -> int:
        return self.slice

    def charge(self, v: Vcpu, ran: int, now: int) -> None:
        # Burnt from the last charge or, after a switch, from the scheduling decision
        # (``pick``): Xen times the vCPU from there, so it pays for the switch that brings it in.
        if now > v.charged:
            v.credit -= now - v.charged
        v.charged = now
        if self.caps.any:
            self.caps.charge(v, ran)

    def budget_ns(self, v: Vcpu) -> float:
        return self.caps.budget(v)

    def preempts(self, v: Vcpu, cur: Vcpu, p: int, now: int) -> bool:
        return v.pri < cur.pri

    def tick(self, now: int) -> tuple[list[int], list[int]]:
        self.ticks += 1
        active = self.active
        for v in self.h.cur:
            if v is not None:
                if v.pri == BOOST:
                    v.pri = UNDER
                if now > v.charged:  # the burn of ``charge``
                    v.credit -= now - v.charged
                v.charged = now
                active.add(v.id)
        if self.ticks % self.epoch_ticks:
            return [], []
        self._account()
        refilled = self.caps.refill()
        return self._outranked(refilled), refilled

    def _outranked(self, refilled: list[int]) -> list[int]:
        """The CPUs whose running vCPU is outranked by a vCPU of a capped VM that the refill is
        about to let run again. Xen unparks such a vCPU by waking it (csched_acct), and a woken
        vCPU preempts a running one of lower priority (__runq_tickle); without this, a capped
        UNDER vCPU waited behind a whole 30 ms slice of an OVER one after every refill and got
        far less than its cap (a third of a core instead of half, next to one CPU hog)."""
        h = self.h
        idle = {p for p, c in enumerate(h.cur) if c is None}
        out: list[int] = []
        for m in refilled:
            for v in h.vm_vcpus[m]:
                if v.state != THROTTLED:
                    continue
                # Where the host will queue it (choose_cpu): an idle CPU just runs it.
                if v.pin >= 0:
                    p = v.pin
                else:
                    p = v.rq if v.rq in idle or not idle else min(idle)
                if p in idle:
                    idle.discard(p)
                    continue
                cur = h.cur[p]
                if cur is not None and cur.pri > v.pri and p not in out:
                    out.append(p)
        return out

    def _peak(self, m: int, active: int) -> float:
        """The most credit VM ``m`` earns in a period with ``active`` vCPUs on the active list."""
        peak = float(self.period * active)
        if m >= 0 and math.isfinite(self.h.vms[m].cap):
            peak = min(peak, self.h.vms[m].cap * self.period)
        return peak

    def _earnings(self, sizes: tuple[tuple[int, int], ...]) -> list[int]:
        """What each active vCPU of each group earns in a period, the groups given as (VM, its
        active vCPUs) in the order of their first vCPU.

        A VM earns at most its peak (one period per active vCPU, less if capped); what its
        weight would give it beyond that goes to the others by weight (csched_acct's
        credit_peak, credit_cap and credit_xtra). Dropping it instead dealt out less than the
        host's CPU time, every vCPU sank to OVER and weights stopped mattering; and a capped VM
        earned more than it may use, left the active list and was outranked."""
        share: dict[int, float] = {}
        left, budget = dict(sizes), float(self.period * self.h.n_pcpus)
        while left:
            total_w = sum(self._weight(m) for m in left)
            full = [m for m, n in left.items()
                    if budget * self._weight(m) / total_w >= self._peak(m, n)]
            if not full:
                share.update((m, budget * self._weight(m) / total_w) for m in left)
                break
            for m in full:
                share[m] = self._peak(m, left.pop(m))
                budget -= share[m]
        return [round(share[m] / n) for m, n in sizes]

    def _account(self) -> None:
        """Deal out the period's CPU time as credit to the vCPUs that ran at a tick lately."""
        vcpus = self.h.vcpus
        groups: dict[int, list[Vcpu]] = {}
        for i in sorted(self.active):
            v = vcpus[i]
            groups.setdefault(v.vm, []).append(v)
        if groups:
            # The earnings depend on nothing but which VMs are active with how many vCPUs,
            # which seldom changes from one period to the next.
            sizes = tuple([(m, len(vs)) for m, vs in groups.items()])
            earned = self._earned.get(sizes)
            if earned is None:
                if len(self._earned) > 4096:
                    self._earned.clear()
                earned = self._earned[sizes] = self._earnings(sizes)
            top, active = self.slice, self.active
            for each, vs in zip(earned, groups.values(), strict=True):
                for v in vs:
                    # Lower bound on credits (sched_credit.c, csched_acct): without it a vCPU
                    # that keeps using more than its share sinks without end and, once it
                    # competes less, stays OVER for as long as it overran.
                    credit = v.credit + each
                    if credit < -top:
                        credit = -top
                    if credit > top:  # stops earning, keeps half (sched_credit.c)
                        credit //= 2
                        active.discard(v.id)
                    v.credit = credit
                    if v.pri != BOOST:  # only negative credit is OVER (csched_acct: credit < 0)
                        v.pri = UNDER if credit >= 0 else OVER
        for q in self.q:
            q.sort(key=_PRI)  # stable: first come first served within a priority

    def fingerprint(self) -> tuple:
        now = self.h.now
        return (tuple([tuple([v.id for v in q]) for q in self.q]),
                tuple([(v.credit, v.pri, v.charged - now if v.state == RUNNING else 0)
                       for v in self.h.vcpus]),
                tuple(sorted(self.active)), self.caps.key())
