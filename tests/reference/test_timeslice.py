"""The quantum-level vCPU scheduler (vsim/model/timeslice) against values derived by hand.

Every expected value below is worked out from the documented behaviour of the two kernels the
policies reproduce, not read off a run:

* Xen credit1 (``Credit``, defaults): a vCPU runs a 30 ms slice; ticks every 10 ms; every third
  tick (30 ms) the host's CPU time is dealt out as credit by weight; priorities BOOST > UNDER >
  OVER, first come first served within a priority; a vCPU that wakes UNDER is BOOSTed and
  preempts a lower priority, but never before the running vCPU has had the 1 ms rate limit.
* Linux CFS (``Fair``, defaults, one CPU so no scaling): targeted latency 6 ms, minimum
  granularity 0.75 ms, wake-up granularity 1 ms, ticks every 4 ms (HZ=250, no hrtick), cpu.max
  period 100 ms. With ``n`` runnable threads of equal weight a thread's ideal slice is 6 ms / n
  (at most 3 ms for n >= 2), shorter than a tick, so every tick ends the running slice: the
  threads take turns of exactly one tick, 4 ms.

Derivations used repeatedly:

* ``n`` CPU-bound vCPUs on one pCPU, equal weights: the pCPU is never idle and each vCPU gets
  the same whole slices in turn, so run = window / n and ready = window (n - 1) / n. A window
  that is a whole number of rounds (36 s is one for n = 1..4 under both policies: 36 s is a
  multiple of n x 30 ms and of n x 4 ms) leaves no vCPU a slice ahead; the tolerance allowed is
  one slice anyway (30 ms for credit, 4 ms for CFS), 0.08 % of the window.
* Round robin makes a vCPU wait for the n - 1 others' slices: (n - 1) x 30 ms under credit,
  (n - 1) x 4 ms under CFS. Whatever the order, the mean wait between two slices of a vCPU is
  (n - 1) slices (it is ready (n - 1)/n of the time in window/(n x slice) gaps), so the longest
  is at least that.
* A context switch of ``s`` seconds is the incoming vCPU's ready time. Xen sets the slice timer
  when it chooses the vCPU, before the switch, so under credit the switch eats into the 30 ms
  slice; under CFS the slice ends at the tick, so it eats into the 4 ms turn. One switch per
  turn loses s / 30 ms of the pCPU under credit and s / 4 ms under CFS, and with n hogs on one
  pCPU there are exactly window / 30 ms (window / 4 ms) switches.
* Cache interference ``x`` slows a vCPU by 1 / (1 + x k) while k others wait on its pCPU; with n
  CPU-bound vCPUs on one pCPU k = n - 1 at every dispatch. It changes no scheduling decision, so
  run time is unchanged and work = run / (1 + x (n - 1)).
* Wake-up latency of an I/O-bound vCPU (credit, see the tests for the set-up): its sleeps are
  exponential with mean mu = b (1 - d) / d (b the mean burst, d the demand). With BOOST it
  preempts at once unless the running vCPU was dispatched less than the 1 ms rate limit ago;
  without BOOST (both UNDER) it waits for the running 30 ms slice to end. For a sleep S that
  starts when the other vCPU is dispatched the wait is L - (S mod L), L = 30 ms, of mean
  ``L - mu + L q / (1 - q)`` with q = exp(-L / mu), never above L.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from vsim.model.timeslice import (
    COUNTERS,
    Credit,
    Fair,
    HostSlicer,
    Profile,
    SliceResult,
    VcpuLoad,
    VmLoad,
)

NS = 1_000_000_000
CREDIT_SLICE = 0.030  # Xen credit1 timeslice (sched_credit_tslice_ms = 30)
CREDIT_RATELIMIT = 0.001  # sched_ratelimit_us = 1000
CFS_TICK = 0.004  # HZ = 250
POLICIES = {"credit": Credit, "fair": Fair}
TURN = {"credit": CREDIT_SLICE, "fair": CFS_TICK}  # one vCPU's turn among CPU-bound equals


def hogs(n: int, **vm) -> list[VmLoad]:
    """``n`` one-vCPU VMs whose vCPU never sleeps."""
    return [VmLoad((VcpuLoad(1.0),), **vm) for _ in range(n)]


def run(pcpus: int, vms: list[VmLoad], policy, window: float, warmup: float = 0.0, *,
        profile: Profile | None = None, seed: int = 0, batch: bool = True) -> SliceResult:
    host = HostSlicer(pcpus, vms, policy, profile=profile, rng=np.random.default_rng(seed))
    if not batch:
        host.closed = False  # simulate every slice instead of adding up repeating periods
    return host.run(window, warmup)


def traced(*args, **kwargs) -> HostSlicer:
    """A host that notes every dispatch, slice by slice: (time, pCPU, vCPU id or -1 when the
    pCPU idles)."""
    host = HostSlicer(*args, **kwargs)
    host.closed = False
    host.trace = []
    return host


def longest_ready_ns(host: HostSlicer, result: SliceResult, warmup: float) -> list[int]:
    """Longest wait of each vCPU between two of its runs on a one-pCPU host of CPU-bound vCPUs
    (a vCPU that never sleeps is ready whenever it is not running)."""
    warm = round(warmup * NS)
    # Every dispatch of the window went through _dispatch, or the trace would miss runs.
    assert sum(1 for t, _, v in host.trace if t > warm and v >= 0) == result.counters["dispatches"].sum()
    runs: list[tuple[int, int]] = []  # (start, vCPU), a vCPU that kept the pCPU counted once
    for t, _, v in host.trace:
        if not runs or runs[-1][1] != v:
            runs.append((t, v))
    longest = [0] * len(host.vcpus)
    stopped: dict[int, int] = {}
    for (start, v), (nxt, _) in itertools.pairwise(runs):
        if v in stopped and stopped[v] >= warm:
            longest[v] = max(longest[v], start - stopped[v])
        stopped[v] = nxt
    return longest


def conserved(r: SliceResult) -> np.ndarray:
    """Each vCPU's time accounted for: run + ready + idle + throttled + co-stop."""
    c = r.counters
    return c["run_s"] + c["ready_s"] + c["idle_s"] + c["throttled_s"] + c["costop_s"]


# --- n equal CPU-bound vCPUs on one pCPU -----------------------------------------------------------


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_equal_vcpus_share_one_pcpu(name, n):
    window = 36.0
    r = run(1, hogs(n), POLICIES[name](), window)
    c = r.counters
    tol = TURN[name] + 1e-9  # one slice (see module docstring)
    assert c["run_s"] == pytest.approx(np.full(n, window / n), abs=tol)
    assert c["ready_s"] == pytest.approx(np.full(n, window * (n - 1) / n), abs=tol)
    # Nothing else happens to a vCPU that never sleeps on an uncapped host, and the pCPU never
    # idles: the window is all run or ready, and the runs add up to it exactly.
    for k in ("idle_s", "throttled_s", "costop_s"):
        assert np.all(c[k] == 0.0)
    assert conserved(r) == pytest.approx(np.full(n, window), abs=1e-9)
    assert c["run_s"].sum() == pytest.approx(window, abs=1e-9)
    assert r.pcpu_idle_s == pytest.approx(0.0, abs=1e-9)


# --- the longest wait ------------------------------------------------------------------------------


def _longest_wait(name: str, n: int) -> list[int]:
    warmup, window = 1.0, 6.0
    host = traced(1, hogs(n), POLICIES[name]())
    r = host.run(window, warmup)
    return longest_ready_ns(host, r, warmup)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_credit_worst_wait_is_n_minus_one_slices(n):
    # Round robin of 30 ms slices: a vCPU waits for the n - 1 others, every time.
    expected = round((n - 1) * CREDIT_SLICE * NS)
    assert max(_longest_wait("credit", n)) == expected


@pytest.mark.parametrize("n", [2, 3, 4])
def test_credit_worst_wait_is_at_least_n_minus_one_slices(n):
    # Whatever the order, the mean gap between two slices of a vCPU is (n - 1) slices, so the
    # longest cannot be shorter; and every vCPU does wait.
    waits = _longest_wait("credit", n)
    assert min(waits) >= round((n - 1) * CREDIT_SLICE * NS)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_fair_worst_wait_is_n_minus_one_ticks(n):
    # Ideal slice 6 ms / n <= 3 ms < 4 ms tick: every tick ends the running turn and the vCPU
    # with the smallest vruntime, the one that waited longest, runs next: round robin of ticks.
    assert _longest_wait("fair", n) == [round((n - 1) * CFS_TICK * NS)] * n


# --- wake-up latency under credit: BOOST -----------------------------------------------------------
# One CPU-bound VM and one I/O-bound VM (demand 2 %, bursts of 0.5 ms exponential, so sleeps of
# mean mu = 0.5 x 0.98 / 0.02 = 24.5 ms), both pinned to pCPU 0 of a two-pCPU host. The idle
# second pCPU matters only to the credit: 2 x 30 ms are dealt out per period, each VM earns its
# peak of 30 ms, the CPU-bound one burns ~29.4 ms and the I/O one ~0.6 ms, so both stay UNDER. On a
# one-pCPU host with equal weights the CPU-bound VM overruns its 15 ms share and is OVER, and an
# UNDER waker preempts it with or without BOOST (last test of this section).

IO_DEMAND, IO_BURST = 0.02, 0.0005
IO_SLEEP = IO_BURST * (1 - IO_DEMAND) / IO_DEMAND  # 24.5 ms


def _io_host(boost: bool, *, switch: float = 0.0, window: float = 300.0, seed: int = 1):
    vms = [VmLoad((VcpuLoad(1.0, pin=0),)),
           VmLoad((VcpuLoad(IO_DEMAND, IO_BURST, pin=0),))]
    r = run(2, vms, Credit(boost=boost), window, 1.0, profile=Profile(switch_s=switch), seed=seed)
    return r.latencies_s[1]


def test_credit_boost_bounds_io_wakeup_latency_by_the_rate_limit():
    switch = 5e-6
    lat = _io_host(True, switch=switch)
    assert len(lat) > 10_000  # ~300 s / (24.5 ms + 0.5 ms) wake-ups
    # BOOST > UNDER: the waker preempts at once (its latency is its own switch), unless the
    # running vCPU was dispatched less than the 1 ms rate limit ago; then it waits for the rest.
    assert np.quantile(lat, 0.99) <= CREDIT_RATELIMIT + switch
    # The rate limit delays a wake-up only when the sleep ends within 1 ms of a dispatch of the
    # CPU-bound vCPU: once per 30 ms slice after the sleep began, probability
    # (1 - e^(-1/mu)) / (1 - e^(-30/mu)) with times in ms (5.7 %); allow four standard errors.
    p = (1 - math.exp(-CREDIT_RATELIMIT / IO_SLEEP)) / (1 - math.exp(-CREDIT_SLICE / IO_SLEEP))
    delayed = np.mean(lat > switch + 1e-12)
    assert delayed <= p + 4 * math.sqrt(p * (1 - p) / len(lat))
    assert np.mean(np.isclose(lat, switch, rtol=0, atol=1e-12)) >= 0.9


def test_credit_without_boost_io_waits_for_the_running_slice():
    lat = _io_host(False)
    assert len(lat) > 5_000
    # Both UNDER: no preemption. The CPU-bound vCPU was dispatched when the I/O vCPU went to
    # sleep and runs back-to-back 30 ms slices, so the wake-up waits L - (S mod L).
    L, mu = CREDIT_SLICE, IO_SLEEP
    q = math.exp(-L / mu)
    mean = L - mu + L * q / (1 - q)  # 17.99 ms
    assert lat.max() <= L
    # The wait is spread over [0, L], standard deviation below L / sqrt(12) + ... < 9 ms: the
    # mean of > 5000 is within 0.13 ms (1 sd) of its expectation; 0.5 ms allowed.
    assert lat.mean() == pytest.approx(mean, abs=0.0005)
    # p99: P(wait <= w) = (e^(-(L - w)/mu) - q) / (1 - q) = 0.99  ->  w = L + mu ln(q + 0.99 (1 - q))
    p99 = L + mu * math.log(q + 0.99 * (1 - q))  # 29.83 ms
    assert np.quantile(lat, 0.99) == pytest.approx(p99, abs=0.0005)
    # An order of magnitude above the bound that BOOST gives.
    assert lat.mean() > 10 * CREDIT_RATELIMIT


def test_credit_rate_limit_counts_from_the_context_switch():
    # Fixed pattern: bursts of 0.5 ms and sleeps of 0.5 x 61 = 30.5 ms (demand 1/62). The
    # CPU-bound vCPU is switched in as the I/O one sleeps; its slice expires at 30 ms and it
    # carries on (no other vCPU runnable); the wake-up comes 30.5 ms after the switch, well past
    # the 1 ms rate limit, so BOOST preempts at once: every latency is 0.
    vms = [VmLoad((VcpuLoad(1.0, pin=0),)),
           VmLoad((VcpuLoad(1 / 62, IO_BURST, "fixed", pin=0),))]
    r = run(2, vms, Credit(), 10.0, 1.0)
    assert len(r.latencies_s[1]) > 300
    assert np.all(r.latencies_s[1] == 0.0)


@pytest.mark.parametrize("boost", [True, False])
def test_credit_boost_makes_little_difference_against_an_over_vcpu(boost):
    # One pCPU, equal weights: while the I/O VM is on the active list the CPU-bound VM earns
    # 15 ms a period and burns ~29.4 ms, so it is OVER; the I/O VM uses less than its share and
    # is UNDER, and UNDER beats OVER on wake-up with or without BOOST. (Only after the I/O VM has
    # dropped off the active list, never having been seen running at a tick, does the CPU-bound
    # VM earn the whole 30 ms and creep back to UNDER, at about 1-2 % of the wake-ups.)
    vms = [VmLoad((VcpuLoad(1.0),)), VmLoad((VcpuLoad(IO_DEMAND, IO_BURST),))]
    r = run(1, vms, Credit(boost=boost), 60.0, 1.0, seed=1)
    lat = r.latencies_s[1]
    assert len(lat) > 2000
    assert np.quantile(lat, 0.95) <= CREDIT_RATELIMIT
    # against the ~18 ms mean wait behind an UNDER vCPU without BOOST (test above)
    assert lat.mean() < CREDIT_RATELIMIT


# --- wake-up latency under CFS ---------------------------------------------------------------------


@pytest.mark.parametrize("n_hogs", [1, 2, 3])
@pytest.mark.parametrize("switch", [0.0, 5e-6])
def test_fair_sleeper_wakes_without_waiting(n_hogs, switch):
    # A sleeper (2 %, 0.5 ms bursts) wakes with vruntime >= min_vruntime - latency / 2 = minv -
    # 3 ms (GENTLE_FAIR_SLEEPERS); the running hog's vruntime is >= minv (it was the leftmost when
    # picked), so it is ahead by >= 3 ms > the 1 ms wake-up granularity and is preempted at once
    # (CFS has no rate limit). The only wait is the switch that brings the sleeper in, plus what
    # is left of one already under way if it woke during a switch.
    vms = [*hogs(n_hogs), VmLoad((VcpuLoad(IO_DEMAND, IO_BURST),))]
    r = run(1, vms, Fair(), 60.0, 1.0, profile=Profile(switch_s=switch), seed=5)
    lat = r.latencies_s[-1]
    assert len(lat) > 2000
    assert lat.min() >= switch
    assert lat.max() <= 2 * switch + 1e-12
    assert np.median(lat) == switch


# --- weights and caps ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POLICIES)
def test_weights_two_to_one(name):
    # 2 x lam + 1 x lam = 1 core: 2/3 and 1/3 of the window.
    window = 36.0
    r = run(1, [VmLoad((VcpuLoad(),), weight=2), VmLoad((VcpuLoad(),), weight=1)],
            POLICIES[name](), window, 1.0)
    assert r.counters["run_s"] == pytest.approx([2 / 3 * window, 1 / 3 * window], abs=TURN[name])


@pytest.mark.parametrize(("name", "weights"), [
    *[pytest.param("fair", w, id=f"fair-{w[0]}:{w[1]}") for w in [(3, 1), (1, 3), (4, 1), (1, 4)]],
    *[pytest.param("credit", w, id=f"credit-{w[0]}:{w[1]}")
      for w in [(3, 1), (1, 3), (4, 1), (1, 4)]],
    pytest.param("credit", (3, 2), id="credit-3:2"),
])
def test_weights_three_and_four_to_one(name, weights):
    # w_i / (w_0 + w_1) of the window each, e.g. 4:1 -> 0.8 and 0.2.
    w0, w1 = weights
    window = 36.0
    r = run(1, [VmLoad((VcpuLoad(),), weight=w0), VmLoad((VcpuLoad(),), weight=w1)],
            POLICIES[name](), window, 1.0)
    expected = [w0 / (w0 + w1) * window, w1 / (w0 + w1) * window]
    assert r.counters["run_s"] == pytest.approx(expected, abs=TURN[name])


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("pcpus", [1, 2])
def test_cap_holds_on_an_idle_host(name, pcpus):
    # Alone on the host a CPU-bound VM capped at 0.5 runs half of every cap period (30 ms for
    # credit, 100 ms for cpu.max) and is throttled the other half; the other pCPUs stay idle.
    window = 30.0
    r = run(pcpus, [VmLoad((VcpuLoad(),), cap=0.5)], POLICIES[name](), window, 1.0)
    c = r.counters
    period = 0.030 if name == "credit" else 0.100
    assert c["run_s"][0] == pytest.approx(0.5 * window, abs=period)
    assert c["throttled_s"][0] == pytest.approx(0.5 * window, abs=period)
    assert c["run_s"][0] <= 0.5 * window + 1e-9
    assert c["ready_s"][0] == pytest.approx(0.0, abs=1e-9)
    assert r.pcpu_idle_s == pytest.approx(pcpus * window - c["run_s"][0], abs=1e-9)


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("cap", [0.25, 0.5])
def test_capped_vm_among_cpu_bound_vms(name, cap):
    # One pCPU, VM 0 capped, two uncapped CPU-bound VMs, equal weights. The fair share 1/3 (or
    # 1/2 against one other) is at least the cap, so VM 0 is held at its cap and the others split
    # the rest: cap 0.25 with two others: 0.25, 0.375, 0.375.
    others = 2 if cap == 0.25 else 1
    window = 30.0
    vms = [VmLoad((VcpuLoad(),), cap=cap), *hogs(others)]
    r = run(1, vms, POLICIES[name](), window, 1.0)
    expected = [cap] + [(1 - cap) / others] * others
    period = 0.030 if name == "credit" else 0.100
    assert r.counters["run_s"] / window == pytest.approx(expected, abs=period / window + 1e-9)
    assert r.counters["run_s"][0] <= cap * window + 1e-9


# --- switch cost and interference ------------------------------------------------------------------


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("n", [2, 3, 4])
def test_switch_cost_is_lost_once_per_slice(name, n):
    s, window = 5e-6, 36.0
    r = run(1, hogs(n), POLICIES[name](), window, 1.0, profile=Profile(switch_s=s))
    c = r.counters
    # credit: a 30 ms slice that starts with the switch; CFS: a switch at each 4 ms tick, inside
    # the turn. Either way a whole number of turns fits in 36 s: 1200 of credit, 9000 of CFS.
    turn = CREDIT_SLICE if name == "credit" else CFS_TICK
    lost = s / turn
    assert 1 - c["run_s"].sum() / window == pytest.approx(lost, rel=1e-9)
    assert r.switch_overhead_s == pytest.approx(window - c["run_s"].sum(), abs=1e-9)
    assert c["switches"].sum() == round(window / turn)
    # The switch is the incoming vCPU's ready time: nothing else is lost, and it is shared
    # evenly (each vCPU loses the same share, within one switch).
    assert conserved(r) == pytest.approx(np.full(n, window), abs=1e-9)
    assert c["run_s"] == pytest.approx(np.full(n, (1 - lost) * window / n), abs=TURN[name] + s)


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_interference_slows_work_not_run(name, n):
    x, window = 0.05, 12.0
    plain = run(1, hogs(n), POLICIES[name](), window, 1.0)
    slow = run(1, hogs(n), POLICIES[name](), window, 1.0, profile=Profile(interference=x))
    assert np.array_equal(slow.counters["run_s"], plain.counters["run_s"])
    assert np.array_equal(plain.counters["work_s"], plain.counters["run_s"])
    assert slow.counters["work_s"] == pytest.approx(slow.counters["run_s"] / (1 + x * (n - 1)),
                                                    rel=1e-12)


# --- relaxed co-scheduling -------------------------------------------------------------------------


def _smp_host(name: str, coschedule: str, smp: bool = True) -> SliceResult:
    # Two pCPUs, four CPU-bound vCPUs: one 2-vCPU VM and two 1-vCPU VMs (or four 1-vCPU VMs).
    vms = [VmLoad((VcpuLoad(), VcpuLoad())), *hogs(2)] if smp else hogs(4)
    return run(2, vms, POLICIES[name](), 20.0, 1.0, profile=Profile(coschedule=coschedule))


@pytest.mark.parametrize("name", POLICIES)
def test_relaxed_coscheduling_costops_an_smp_vm_that_competes(name):
    # Four vCPUs for two pCPUs: the SMP VM's vCPUs are often one running and one waiting; the
    # waiting one's skew reaches the 3 ms limit within a slice (30 ms or 4 ms turns), and the
    # running sibling is co-stopped until the laggard catches up.
    r = _smp_host(name, "relaxed")
    costop = r.counters["costop_s"]
    assert costop[:2].sum() > 0.01 * 20.0  # at least 1 % of the window
    assert np.all(costop[2:] == 0.0)  # single-vCPU VMs have no sibling to wait for
    assert conserved(r) == pytest.approx(np.full(4, 20.0), abs=1e-9)


@pytest.mark.parametrize("name", POLICIES)
def test_no_costop_without_coscheduling_or_siblings(name):
    assert np.all(_smp_host(name, "none").counters["costop_s"] == 0.0)
    assert np.all(_smp_host(name, "relaxed", smp=False).counters["costop_s"] == 0.0)


# --- repeating schedules added up period by period -------------------------------------------------

INF = math.inf
CAPS5 = [0.5, INF, 0.25, INF, 0.75]
BATCH_CASES = [
    # (policy, pCPUs, weights, caps, switch_s): each repeats within the window (checked below)
    *[pytest.param(name, *case, id=f"{name}-{label}") for name in POLICIES for label, case in {
        "1p-3-weights-caps": (1, [1, 2, 1], [0.5, INF, 0.3], 0.0),
        "1p-5-caps": (1, [1, 1, 1, 1, 1], CAPS5, 0.0),
        "1p-5-weights-caps": (1, [1, 1, 2, 2, 4], [0.25, INF, 0.5, INF, INF], 0.0),
        "2p-5-caps": (2, [1, 1, 1, 1, 1], CAPS5, 0.0),
        "2p-5-weights-caps": (2, [2, 1, 1, 1, 1], [0.25, INF, 0.5, INF, INF], 0.0),
    }.items()],
    # A repeat needs every timer back in phase: CFS's one-vCPU pCPUs never end a slice, so the
    # cases with a switch cost differ.
    pytest.param("credit", 2, [1, 2, 3], [0.5, INF, 0.3], 0.0, id="credit-2p-3-weights-caps"),
    pytest.param("credit", 1, [1, 2, 3], [INF, 0.5, INF], 3e-6, id="credit-1p-3-switch"),
    pytest.param("credit", 1, [1, 1, 1, 1], [INF] * 4, 4e-6, id="credit-1p-4-switch"),
    pytest.param("fair", 2, [1, 2, 1, 2, 1], [0.5, INF, 0.3, INF, 0.7], 0.0,
                 id="fair-2p-5-weights-caps"),
    pytest.param("fair", 2, [1, 1, 1, 1, 1], CAPS5, 3e-6, id="fair-2p-5-switch"),
]


def _batch_pair(name, pcpus, weights, caps, switch=0.0, interference=0.0, window=60.0,
                warmup=0.25):
    vms = [VmLoad((VcpuLoad(),), weight=w, cap=c) for w, c in zip(weights, caps, strict=True)]
    profile = Profile(switch_s=switch, interference=interference)
    return [run(pcpus, vms, POLICIES[name](), window, warmup, profile=profile, batch=b)
            for b in (True, False)]


def _assert_same(batched: SliceResult, sliced: SliceResult) -> None:
    assert batched.skipped_s > 0  # the repeat was found and most of the window added up
    assert sliced.skipped_s == 0
    for k in COUNTERS:
        assert batched.counters[k] == pytest.approx(sliced.counters[k], abs=1e-9), k
    assert batched.pcpu_idle_s == pytest.approx(sliced.pcpu_idle_s, abs=1e-9)
    assert batched.switch_overhead_s == pytest.approx(sliced.switch_overhead_s, abs=1e-9)
    assert batched.slices == sliced.slices


@pytest.mark.parametrize(("name", "pcpus", "weights", "caps", "switch"), BATCH_CASES)
def test_batched_periods_equal_slice_by_slice(name, pcpus, weights, caps, switch):
    _assert_same(*_batch_pair(name, pcpus, weights, caps, switch))


def test_batched_periods_equal_slice_by_slice_with_interference():
    # VM 1's rate is 1/1.05 while VM 0 waits on the pCPU and 1 while VM 0 is throttled.
    batched, sliced = _batch_pair("credit", 1, [1, 3], [0.5, INF], interference=0.05,
                                  window=6.0, warmup=0.0)
    _assert_same(batched, sliced)


# --- determinism -----------------------------------------------------------------------------------


def _io_mix(name: str, seed: int) -> SliceResult:
    vms = [VmLoad((VcpuLoad(1.0),)), VmLoad((VcpuLoad(0.3, 0.002),), weight=2),
           VmLoad((VcpuLoad(0.1, 0.0005), VcpuLoad(0.6, 0.005)), cap=0.8)]
    return run(2, vms, POLICIES[name](), 5.0, 0.5, seed=seed)


@pytest.mark.parametrize("name", POLICIES)
def test_same_seed_same_result(name):
    a, b = _io_mix(name, 7), _io_mix(name, 7)
    for k in COUNTERS:
        assert np.array_equal(a.counters[k], b.counters[k]), k
    assert len(a.latencies_s) == len(b.latencies_s)
    for x, y in zip(a.latencies_s, b.latencies_s, strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("name", POLICIES)
def test_other_seed_other_result(name):
    a, b = _io_mix(name, 7), _io_mix(name, 8)
    assert not np.array_equal(a.counters["run_s"], b.counters["run_s"])
    assert not np.array_equal(a.latencies_s[1], b.latencies_s[1])
