"""One host's vCPUs on its physical CPUs, simulated timeslice by timeslice.

The fluid model (:mod:`vsim.model.cpu`) gives each VM its long-run share; what a VM's users feel
inside that share, CPU ready, co-stop, wake-up latency, comes from the order in which the
hypervisor runs vCPUs. Here every vCPU alternates between bursts of work and sleeps (or never
sleeps: CPU-bound); a scheduling policy (:mod:`.credit` for Xen's credit scheduler, :mod:`.fair`
for Linux CFS under KVM) keeps one run queue per physical CPU and decides who runs next and for
how long; and this module keeps time and accounts for every nanosecond of every vCPU:

* run: on a physical CPU; ready: runnable but waiting for one (including the context switch that
  brings it in); throttled: runnable but held back by its VM's cap; co-stop: stopped by relaxed
  co-scheduling so that a lagging sibling vCPU can catch up; idle: asleep.
* A vCPU's wake-up latency is the time from its wake-up to its first instruction on a CPU.

Time inside is integer nanoseconds, so that the kernel's integer arithmetic (vruntime, credits)
is reproduced exactly and a schedule that repeats can be recognised as repeating: the loop does
not go through simpy at all, and when every vCPU is CPU-bound the schedule becomes periodic after
a few accounting periods; the rest of the window is then added up period by period instead of
slice by slice (see ``_maybe_skip``).
"""

from __future__ import annotations

import gc
import math
from array import array
from heapq import heappop, heappush
from math import ceil

import numpy as np

from vsim.model.timeslice.parts import (
    COSTOPPED,
    COUNTERS,
    FOREVER,
    NS,
    READY,
    RUNNING,
    SLEEPING,
    THROTTLED,
    Policy,
    Profile,
    SliceResult,
    Vcpu,
    VcpuLoad,
    VmLoad,
    first_idle,
)

# The parts are re-exported: the policies and callers import them from here.
__all__ = ["COSTOPPED", "COUNTERS", "FOREVER", "NS", "READY", "RUNNING", "SLEEPING", "THROTTLED",
           "HostSlicer", "Policy", "Profile", "SliceResult", "Vcpu", "VcpuLoad", "VmLoad"]

_WAKE, _TICK = range(2)  # the kinds of events on the heap
_NO_TIMER = (1 << 63) - 1  # a CPU's slice timer when it has none
_MAX_EPOCHS = 256  # states kept while looking for a repeating schedule
_INF = math.inf


def _ints(value: int, n: int) -> array:
    # Integer arrays rather than lists: the compiled build reads them as C arrays.
    return array("q", [value]) * n


class HostSlicer:
    """One host: ``pcpus`` physical CPUs, ``vms`` on them, one policy. ``run`` once."""

    def __init__(self, pcpus: int, vms: list[VmLoad], policy: Policy, *,
                 profile: Profile | None = None, rng: np.random.Generator | None = None) -> None:
        if pcpus < 1:
            raise ValueError("a host has at least one physical CPU")
        self.n_pcpus = pcpus
        self.profile = profile or Profile()
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.vms = vms
        self.vcpus: list[Vcpu] = []
        self.vm_vcpus: list[list[Vcpu]] = []
        for m, vm in enumerate(vms):
            mine = []
            for i, load in enumerate(vm.vcpus):
                if load.pin >= pcpus:
                    raise ValueError(f"VM {m} vCPU {i} is pinned to CPU {load.pin}; the host has {pcpus}")
                v = Vcpu(len(self.vcpus), m, load)
                v.index = i
                self.vcpus.append(v)
                mine.append(v)
            self.vm_vcpus.append(mine)
        if self.profile.host_os > 0:
            for p in range(pcpus):
                self.vcpus.append(Vcpu(len(self.vcpus), -1, VcpuLoad(
                    self.profile.host_os, self.profile.host_os_burst_s, pin=p)))
        self.policy = policy
        self.switch_ns = round(self.profile.switch_s * NS)
        self.interference = self.profile.interference
        self.relaxed = self.profile.coschedule == "relaxed"
        self.skew_limit = round(self.profile.skew_limit_s * NS)
        self.cur: list[Vcpu | None] = [None] * pcpus
        self.last: list[Vcpu | None] = [None] * pcpus
        self.end = _ints(0, pcpus)
        # Each CPU's slice timer (when it fires, and its sequence number among the heap's events),
        # kept beside the heap: slices end or are cut short by the million, and a timer here is
        # re-armed in place where one on the heap would leave a stale entry behind.
        self.timer_at = _ints(_NO_TIMER, pcpus)
        self.timer_seq = _ints(0, pcpus)
        self.idle_since = _ints(0, pcpus)
        self.idle_ns = _ints(0, pcpus)
        self.heap: list[tuple[int, int, int, int]] = []  # (when, sequence, kind, vCPU or tick)
        self.seq = 0
        self.now = 0
        self.overhead = 0
        self.dispatches = 0
        self.measure_from = 0
        self.cos_at = _ints(0, len(vms))
        # When each VM's pending co-scheduling check is due (-1: none) and its sequence number:
        # checks, like slice timers, are kept beside the heap and re-armed in place.
        self.cos_due = _ints(-1, len(vms))
        self.cos_seq = _ints(0, len(vms))
        self.switched_in = _ints(0, pcpus)  # when the running vCPU was switched in (rate limit)
        self.smp_vms = array("q", [m for m, vs in enumerate(self.vm_vcpus) if len(vs) >= 2]
                             if self.profile.coschedule == "relaxed" else [])
        self._measuring = False
        # Set to a list to record every scheduling decision: (ns, pCPU, vCPU id, -1 for idle).
        self.trace: list[tuple[int, int, int]] | None = None
        self.closed = all(math.isinf(v.burst_mean) for v in self.vcpus)
        for v in self.vcpus:
            v.capped = v.vm >= 0 and math.isfinite(vms[v.vm].cap)
            v.cos = self.relaxed and v.vm >= 0 and len(self.vm_vcpus[v.vm]) >= 2

    # --- the event loop -------------------------------------------------------------------------
    # A simulated slice costs a few microseconds as Python (under a microsecond compiled, see
    # host.pxd), most of it attribute lookups and calls, so on the hot path (a wake-up, a
    # slice's end, a dispatch) the small steps (drawing a burst or a sleep, arming a slice's
    # timer) are written out, and policies are asked only what they decide (budgets only for capped VMs, queue lengths only when interference is
    # modelled). ``_dispatch`` stays the one place where a vCPU starts to run.

    def _push(self, t: int, kind: int, arg: int) -> None:
        self.seq += 1
        heappush(self.heap, (t, self.seq, kind, arg))

    def _arm(self, p: int, t: int) -> None:
        self.end[p] = t
        self.seq += 1
        self.timer_at[p] = t
        self.timer_seq[p] = self.seq

    def _draw(self, v: Vcpu) -> float:
        """A standard exponential (1 for fixed patterns), from a block drawn ahead. Blocks come
        from the host's generator in the order the vCPUs use them up."""
        if v.fixed:
            return 1.0
        if not v.draws:
            v.draws = self.rng.standard_exponential(512).tolist()
        return v.draws.pop()

    def run(self, window_s: float, warmup_s: float = 0.0) -> SliceResult:
        """Simulate ``warmup_s`` then ``window_s`` and return the counters of the window."""
        # The loop makes no reference cycles, only short-lived tuples by the million (heap
        # entries) and, for a repeating schedule, a state per epoch: the cyclic garbage collector
        # would walk the whole process's objects again and again for nothing (40 % of the run
        # time with thousands of epochs kept).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(window_s, warmup_s)
        finally:
            if enabled:
                gc.enable()

    def _run(self, window_s: float, warmup_s: float) -> SliceResult:
        pol = self.policy
        pol.setup(self)
        for v in self.vcpus:
            if math.isinf(v.burst_mean) or self.rng.random() < v.burst_mean / (v.burst_mean + v.sleep_mean):
                self._wake(v, woken=False)
            elif math.isinf(v.sleep_mean):  # demand 0: asleep for good
                v.state = SLEEPING
            else:
                v.state = SLEEPING
                v.since = self.now
                self._push(self.now + round(v.sleep_mean * self._draw(v) * self.rng.random()),
                           _WAKE, v.id)
        for p in range(self.n_pcpus):
            if self.cur[p] is None:
                self._dispatch(p)
        self.seq += 1
        heappush(self.heap, (pol.tick_ns, -self.seq, _TICK, 1))
        warm = round(warmup_s * NS)
        end = warm + round(window_s * NS)
        self._loop(warm)
        base = self._snapshot()
        self.measure_from = warm
        self._measuring = True
        for v in self.vcpus:
            v.lat.clear()
        self._fingerprints: dict[tuple, tuple] = {}  # state at an epoch -> its _counters()
        self._skipped = 0
        self._extra: np.ndarray | None = None
        self._loop(end)
        return self._result(base, window_s)

    def _loop(self, end: int) -> None:
        heap, pol, vcpus, cur = self.heap, self.policy, self.vcpus, self.cur
        pop = heappop
        n = self.n_pcpus
        smp = self.smp_vms
        n_smp = len(smp)
        while True:
            # The next event: the heap's first or, if earlier, a CPU's slice timer; between
            # events due at the same nanosecond, the one scheduled first.
            top = heap[0]  # never empty: the tick re-arms itself
            t, s = top[0], top[1]
            p = c = -1
            for q in range(n):
                tq = self.timer_at[q]
                if tq < t or (tq == t and self.timer_seq[q] < s):
                    t, s, p = tq, self.timer_seq[q], q
            for k in range(n_smp):
                m = smp[k]
                tq = self.cos_due[m]
                if tq >= 0 and (tq < t or (tq == t and self.cos_seq[m] < s)):
                    t, s, p, c = tq, self.cos_seq[m], -1, m
            if t > end:
                break
            self.now = t
            if p >= 0:
                self._slice_end(p)
                continue
            if c >= 0:
                self._cosched(c)
                continue
            _, _, kind, arg = pop(heap)
            if kind == _WAKE:
                v = vcpus[arg]
                if v.state == SLEEPING:
                    v.idle += t - v.since
                    self._wake(v, True)
            elif kind == _TICK:
                preempt, refilled = pol.tick(t)
                for m in refilled:
                    for v in self.vm_vcpus[m]:
                        if v.state == THROTTLED:
                            v.throttled += t - v.since
                            self._ready(v, False)
                for p in preempt:
                    if cur[p] is None:
                        self._dispatch(p)
                    elif self.end[p] > t:
                        self._preempt(p)
                # A tick sorts before everything else due at the same nanosecond (its sequence
                # number is negative): Xen and Linux run their timer handlers (ticks,
                # accounting) before they reschedule, so a slice that ends on a tick is judged
                # with the priorities the tick has just set.
                self.seq += 1
                heappush(heap, (t + pol.tick_ns, -self.seq, _TICK, arg + 1))
                if self.closed and self._measuring and arg % pol.epoch_ticks == 0:
                    end = self._maybe_skip(end)
        self.now = end

    # --- transitions ----------------------------------------------------------------------------

    def _wake(self, v: Vcpu, woken: bool) -> None:
        now = self.now
        if v.burst_mean < _INF:
            if v.fixed:
                b = v.burst_mean
            else:
                draws = v.draws
                if not draws:
                    draws = v.draws = self.rng.standard_exponential(512).tolist()
                b = v.burst_mean * draws.pop()
            v.burst_left = b if b > 1.0 else 1.0
        v.woke = now if woken else -1
        if v.cos and now > self.cos_at[v.vm]:
            self._skew_advance(v.vm)
        if v.capped and self.policy.budget_ns(v) <= 0:
            v.state, v.since = THROTTLED, now
        else:
            self._ready(v, woken)

    def _ready(self, v: Vcpu, woken: bool) -> None:
        now = self.now
        pol, cur = self.policy, self.cur
        v.state, v.since = READY, now
        p = pol.enqueue(v, now, woken)
        c = cur[p]
        if c is None:
            self._dispatch(p)
        elif woken and pol.preempts(v, c, p, now):
            allowed = self.switched_in[p] + pol.ratelimit_ns  # counted from the switch
            if now >= allowed:
                self._preempt(p)
            elif self.end[p] > allowed:
                self._arm(p, allowed)
        elif v.pin < 0:
            idle = first_idle(cur)
            if idle >= 0:
                self._dispatch(idle)  # an idle CPU takes work from the busy ones
        if v.cos:
            self._cosched(v.vm)

    def _dispatch(self, p: int) -> None:
        now = self.now
        pol = self.policy
        v = pol.pick(p, now)
        while v is not None and v.capped and pol.budget_ns(v) <= 0:  # its VM used up its cap
            v.ready += now - v.since
            v.state, v.since = THROTTLED, now
            v = pol.pick(p, now)
        idle_since = self.idle_since
        if v is None:
            if idle_since[p] < 0:
                idle_since[p] = now
            self.cur[p] = None
            if self.trace is not None:
                self.trace.append((now, p, -1))
            return
        if idle_since[p] >= 0:
            self.idle_ns[p] += now - idle_since[p]
            idle_since[p] = -1
        v.ready += now - v.since
        start = now
        if self.last[p] is not v:
            v.switches += 1
            if self.switch_ns:
                start += self.switch_ns
                v.ready += self.switch_ns
                self.overhead += self.switch_ns
            self.switched_in[p] = start
        v.state, v.since = RUNNING, start
        self.cur[p] = self.last[p] = v
        if self.trace is not None:
            self.trace.append((now, p, v.id))
        v.dispatches += 1
        self.dispatches += 1
        if v.woke >= 0:
            if v.woke >= self.measure_from:
                v.lat.append(start - v.woke)
            v.woke = -1
        rate = 1.0
        if self.interference:
            waiting = pol.waiting(p)
            if waiting:
                rate = 1.0 / (1.0 + self.interference * waiting)
        v.rate = rate
        length = pol.slice_ns(v, p, now)
        if start > now and pol.slice_includes_switch:
            length -= start - now
        if v.burst_left < _INF:
            burst = ceil(v.burst_left / rate)
            if burst < length:
                length = burst
        if v.capped:
            budget = pol.budget_ns(v)
            if budget < length:
                length = int(budget)
        t = start + length if length > 1 else start + 1
        self.end[p] = t
        if length < FOREVER:  # a slice without end needs no timer: the policy preempts it
            self.seq += 1
            self.timer_at[p] = t
            self.timer_seq[p] = self.seq
        if v.cos:
            self._cosched(v.vm)

    def _stop(self, p: int) -> Vcpu:
        """Take the running vCPU off CPU ``p`` and account for its run."""
        v = self.cur[p]
        assert v is not None
        now = self.now
        if v.cos and now > self.cos_at[v.vm]:
            self._skew_advance(v.vm)
        ran = now - v.since
        if ran < 0:  # stopped during the switch that was bringing it in
            v.ready += ran
            ran = 0
        v.run += ran
        done = ran * v.rate
        v.work += done
        self.policy.charge(v, ran, now)
        v.burst_left -= done  # CPU-bound: stays infinite
        self.cur[p] = None
        self.timer_at[p] = _NO_TIMER
        v.since = now
        return v

    def _slice_end(self, p: int) -> None:
        v = self._stop(p)
        now = self.now
        pol = self.policy
        if v.burst_left < 0.5:
            v.state = SLEEPING
            v.skew = 0
            if v.fixed:
                d = 1.0
            else:
                draws = v.draws
                if not draws:
                    draws = v.draws = self.rng.standard_exponential(512).tolist()
                d = draws.pop()
            self.seq += 1
            heappush(self.heap, (now + round(v.sleep_mean * d), self.seq, _WAKE, v.id))
        elif v.capped and pol.budget_ns(v) <= 0:
            v.state = THROTTLED
        else:
            v.state = READY
            pol.requeue(v, p, now)
        self._dispatch(p)
        if v.cos:
            self._cosched(v.vm)

    def _preempt(self, p: int) -> None:
        v = self._stop(p)
        v.state = READY
        self.policy.requeue(v, p, self.now)
        self._dispatch(p)

    # --- relaxed co-scheduling ------------------------------------------------------------------
    # A runnable vCPU that waits while a sibling runs falls behind by the time it waits (its
    # skew); one that runs while siblings are co-stopped catches up. Once a waiting vCPU's skew
    # reaches the limit, its running siblings are co-stopped; they start again once every
    # sibling's skew is back under half the limit (or the laggard went idle). Only VMs of two
    # or more vCPUs take part (``Vcpu.cos``); a lone vCPU never lags a sibling. Skews advance at
    # the moments these functions are called, so the calls themselves are part of the model.

    def _skew_advance(self, m: int) -> None:
        now = self.now
        dt = now - self.cos_at[m]
        self.cos_at[m] = now
        if dt <= 0:
            return
        vs = self.vm_vcpus[m]
        running = stopped = False
        for v in vs:
            s = v.state
            if s == RUNNING:
                running = True
            elif s == COSTOPPED:
                stopped = True
        if running:
            for v in vs:
                s = v.state
                if s == READY:
                    v.skew += dt
                elif s == RUNNING and stopped:
                    v.skew = v.skew - dt if v.skew > dt else 0

    def _cosched(self, m: int) -> None:
        now = self.now
        if now > self.cos_at[m]:
            self._skew_advance(m)
        vs = self.vm_vcpus[m]
        limit = self.skew_limit
        half = limit // 2
        self.cos_due[m] = -1
        stopped = running = False
        lag = -1  # the largest skew of a waiting vCPU
        lead = 0  # the largest skew of a running one
        for v in vs:
            s = v.state
            if s == RUNNING:
                running = True
                if v.skew > lead:
                    lead = v.skew
            elif s == READY:
                if v.skew > lag:
                    lag = v.skew
            elif s == COSTOPPED:
                stopped = True
        if stopped:
            if lag <= half and lead <= half:
                held = []  # (loops rather than comprehensions: the compiled build types them)
                for v in vs:
                    if v.state == COSTOPPED:
                        held.append(v)
                for v in held:
                    if v.state == COSTOPPED:  # not restarted already by the _ready of a sibling
                        v.costop += now - v.since
                        self._ready(v, woken=False)
                return
            if lead > half:  # the running ones catch up; look again once the first has
                catch = -1  # until the first running one is back at half the limit
                for v in vs:
                    if v.state == RUNNING and v.skew > half and (catch < 0 or v.skew - half < catch):
                        catch = v.skew - half
                self.seq += 1
                self.cos_due[m] = now + catch
                self.cos_seq[m] = self.seq
            return
        if not running or lag < 0:
            return
        if lag >= limit:
            leaders = []
            for v in vs:
                if v.state == RUNNING:
                    leaders.append(v)
            for v in leaders:
                p = self.cur.index(v)
                self._stop(p)
                v.state = COSTOPPED
                self._dispatch(p)
            return
        self.seq += 1
        self.cos_due[m] = now + limit - lag
        self.cos_seq[m] = self.seq

    # --- repeating schedules --------------------------------------------------------------------

    def _counters(self) -> tuple:
        """The counters as they stand, taken cheaply (at every epoch while a repeat is looked
        for); ``_snapshot`` closes the open intervals."""
        # Tuples of numbers only: the garbage collector stops tracking them, where thousands of
        # kept lists would make every full collection longer.
        return (self.now, tuple([(v.run, v.ready, v.idle, v.throttled, v.costop, v.work,
                                  v.dispatches, v.switches, v.state, v.since, v.rate)
                                 for v in self.vcpus]),
                self.dispatches, self.overhead, tuple(self.idle_ns), tuple(self.idle_since))

    def _snapshot(self, counters: tuple | None = None) -> tuple[np.ndarray, tuple]:
        """Counters of every vCPU as of now (or as ``_counters`` took them), open intervals
        closed then, plus host totals."""
        now, vcpus, dispatches, overhead, idle_ns, idle_since = counters or self._counters()
        rows = []
        for run, ready, idle, throttled, costop, work, disp, switches, s, since, rate in vcpus:
            open_ = max(now - since, 0)
            rows.append((run + (open_ if s == RUNNING else 0),
                         ready + (open_ if s == READY else 0) - (since - now if since > now else 0),
                         idle + (open_ if s == SLEEPING else 0),
                         throttled + (open_ if s == THROTTLED else 0),
                         costop + (open_ if s == COSTOPPED else 0),
                         work + (open_ * rate if s == RUNNING else 0.0),
                         disp, switches))
        idle = sum(idle_ns[p] + (now - idle_since[p] if idle_since[p] >= 0 else 0)
                   for p in range(len(idle_ns)))
        host = (dispatches, overhead, idle)
        return np.array(rows, dtype=float).reshape(len(vcpus), len(COUNTERS)), host

    def _state_key(self) -> tuple:
        """Everything the schedule's future depends on, times taken relative to now: one flat
        tuple (fixed length per host) and the policy's own."""
        now, end = self.now, self.end
        key: list[object] = [-1 if v is None else v.id for v in self.last]
        # Once a vCPU has run past the rate limit, how long ago it was switched in no longer
        # matters.
        limit = -self.policy.ratelimit_ns - 1
        for p, c in enumerate(self.cur):
            key += (-1, 0, 0, 0, 0.0) if c is None else (
                c.id, end[p] - now, c.since - now, max(self.switched_in[p] - now, limit), c.rate)
        for m in self.smp_vms:  # the co-scheduling clock and its pending check
            due = self.cos_due[m]
            key += (self.cos_at[m] - now, due - now if due >= 0 else -1)
        for v in self.vcpus:
            key += (v.state, v.skew, v.rq)
        key.append(self.policy.fingerprint())
        return tuple(key)

    def _maybe_skip(self, end: int) -> int:
        """With CPU-bound vCPUs only, the schedule depends on nothing but its own state: once the
        state at an epoch (every timer in phase) equals an earlier epoch's, it repeats with that
        period to the end of the window. Count the whole periods that fit and simulate the rest;
        returns the new end of the simulation."""
        if self._skipped:
            return end
        key = self._state_key()
        seen = self._fingerprints.get(key)
        if seen is None:
            if len(self._fingerprints) >= _MAX_EPOCHS:  # no short period: stop looking
                self.closed = False
                self._fingerprints.clear()
                return end
            self._fingerprints[key] = self._counters()
            return end
        period = self.now - seen[0]
        repeats = (end - self.now) // period
        if repeats < 1:
            return end
        rows0, host0 = self._snapshot(seen)
        rows1, host1 = self._snapshot()
        self._extra = (rows1 - rows0) * repeats
        self._extra_host = tuple((b - a) * repeats for a, b in zip(host0, host1, strict=True))
        self._skipped = repeats * period
        return end - self._skipped

    def _result(self, base: tuple[np.ndarray, tuple], window_s: float) -> SliceResult:
        rows, host = self._snapshot()
        rows = rows - base[0]
        host = tuple(b - a for a, b in zip(base[1], host, strict=True))
        if self._extra is not None:
            rows = rows + self._extra
            host = tuple(a + b for a, b in zip(host, self._extra_host, strict=True))
        counters = {}
        for j, name in enumerate(COUNTERS):
            col = rows[:, j]
            counters[name] = col / NS if name.endswith("_s") else col.astype(np.int64)
        return SliceResult(
            window_s=window_s,
            vm=np.array([v.vm for v in self.vcpus], dtype=np.int64),
            counters=counters,
            latencies_s=[np.array(v.lat, dtype=float) / NS for v in self.vcpus],
            pcpu_idle_s=host[2] / NS,
            switch_overhead_s=host[1] / NS,
            slices=int(host[0]),
            skipped_s=self._skipped / NS,
        )
