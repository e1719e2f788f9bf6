"""Time slicing against the fluid model: over a long window, does each VM get its fluid share?

The fluid model (``vsim.model.cpu.fluid_share``) is what a proportional-share scheduler converges
to: every VM gets ``clip(w_i lam, 0, e_i)``, ``e_i = min(demand, cap, 1 core)`` (one vCPU each,
no reservation), ``lam`` filling the host's capacity (1 per pCPU) when it is contended. Random
hosts (seeded ``numpy`` generators: 1-4 pCPUs, 1-8 one-vCPU VMs, weights 0.5-4, a cap on about a
third) are run through ``HostSlicer`` under both policies for 60 s after a 1 s warm-up, and
``run_s / window`` per VM is compared with that allocation.

What the comparison needs of the workload. The fluid model's demand is open-loop (a VM that
wants 0.7 of a core keeps wanting it however long it waits); the slicer's bursty vCPU is
closed-loop: its next sleep starts only once its burst is done, so every wait for the CPU makes
it run less than its demand (with a share r of the CPU while runnable it runs
1 / (1/r + (1 - d)/d): 0.42 instead of 0.5 for d = 0.72, r = 0.5). The two mean the same thing
for a CPU-bound vCPU (always runnable, an open-loop backlog) and for a light one that seldom
waits. So each VM is either CPU-bound (demand 1) or light: demand in (0, 0.15], at most 0.7 of
its fluid level, light demands adding up to at most 0.3 per pCPU. A waking light vCPU preempts a
CPU-bound one (CFS places it half a latency behind min_vruntime; credit BOOSTs it, or it is UNDER
against OVER), so it waits only behind other light bursts: it runs d / (1 + d W / b), W ~ b x
(the other light demand on its pCPU), i.e. it loses about 0.15 x 0.3 = 4.5 % of its demand at
most, < 0.007 of a core.

Why 0.03 of a core. A CPU-bound vCPU's share is whole slices (30 ms credit, 4 ms CFS): over 60 s
that is off by a few slices, < 0.002. A light vCPU's run is a random sum of some 60 s d / 2 ms
exponential bursts: standard deviation about sqrt(2 b d / 60 s) <= 0.0032 (b = 2 ms, d <= 0.15).
With the closed-loop loss above, 0.03 is several times what either can explain.

Work conservation. Both policies give an idle pCPU any runnable vCPU, so without caps the host
hands out the fluid model's total. A cap is a budget per period (30 ms credit, 100 ms CFS) that a
CPU-bound VM uses up at the start of the period; capped VMs throttled at the same time can leave
a pCPU idle that the fluid model, which spreads a cap evenly, counts as used: with caps only
"never more than the fluid total" is asserted.

Where the slicer is known to differ from the fluid model (measured on these hosts). The tests
assert the invariants for every host, and every VM's share where agreement is expected (CFS on
one pCPU; credit on one pCPU with CPU-bound, uncapped VMs); elsewhere a share off by more than
0.03 is reported as an expected failure naming the deviations that apply and the error found:

* CFS on several pCPUs: one run queue per pCPU, balanced by moving whole threads from the most
  to the least loaded (by weight) when that narrows the gap, so a thread alone on a pCPU keeps
  all of it while two that share one get half each (3 equal hogs on 2 pCPUs: 1, 1/2, 1/2 instead
  of 2/3 each, as Linux does; errors up to 0.2 of a core here). What holds is asserted instead:
  each of n equal CPU-bound vCPUs on p pCPUs gets between 1/ceil(n/p) and 1/floor(n/p) of a core.
* Credit on several pCPUs: per-pCPU queues, and a pCPU takes work from another only when its own
  best is OVER (weights 4, 2, 1, 1, 1 on 2 pCPUs: 0.81 for 0.89).
* Credit with caps: a cap is a budget per 30 ms accounting period, used in whole slices taken in
  turn; a capped VM whose turn does not come in a period loses that period's budget and falls
  short of a cap it is entitled to (weights 4, 2, 0.5, 1, 3, 3, 4, cap 0.22 on the first, one
  pCPU: 0.14 for 0.22). Xen parks a capped vCPU on negative credit and lets it catch up instead.
* Credit with light VMs: a vCPU earns credit only while on the active list, which it joins when
  a tick finds it running; a light VM is dealt credit it cannot use, which is halved away, so the
  CPU-bound VMs together earn less than they burn, all sink to OVER and share round robin more
  than by weight (hogs of weights 0.5 and 4 and two light VMs: 0.17 for 0.094). Xen's
  credit_balance, which tops the next period up by such a deficit, is not modelled.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsim.model.cpu import fluid_share
from vsim.model.timeslice import Credit, Fair, HostSlicer, SliceResult, VcpuLoad, VmLoad

POLICIES = {"credit": Credit, "fair": Fair}
WINDOW, WARMUP = 60.0, 1.0
BURST = 0.002
TOL = 0.03  # of a core (module docstring)
LIGHT_MAX = 0.15  # a light VM's demand
LIGHT_MARGIN = 0.7  # ... is at most this much of its fluid level
LIGHT_TOTAL = 0.3  # ... and the light VMs' demands add up to at most this much per pCPU
CFS_TURN = 0.004  # one CFS turn among CPU-bound equals: a 4 ms tick
SEEDS = range(15)


def fluid(pcpus: int, demand: np.ndarray, weight: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """fluid_share for one host of ``pcpus`` cores, one-vCPU VMs (at most one core each)."""
    n = len(demand)
    return fluid_share(np.zeros(n, dtype=np.int64), demand, weight, np.zeros(n),
                       np.minimum(cap, 1.0), np.array([float(pcpus)]))


def random_host(seed: int, pcpus: int | None = None):
    """1-4 pCPUs (or ``pcpus``), 1-8 one-vCPU VMs, weights 0.5-4, a cap on about a third; half
    the VMs CPU-bound (demand 1), the others light (demand in (0, LIGHT_MAX]). A light VM that
    would crowd its pCPUs (see module docstring) is made CPU-bound instead, the largest first.
    Returns pCPUs, demands, weights, caps and the fluid allocation (cores)."""
    g = np.random.default_rng(seed)
    p = int(g.integers(1, 5))
    pcpus = pcpus or p
    n = int(g.integers(1, 9))
    demand = np.where(g.random(n) < 0.5, 1.0, g.uniform(0.0, LIGHT_MAX, n) + 1e-3)
    weight = g.choice([0.5, 1.0, 2.0, 3.0, 4.0], n)
    cap = np.where(g.random(n) < 0.3, g.uniform(0.1, 0.9, n), np.inf)
    while True:
        alloc = fluid(pcpus, demand, weight, cap)
        want = np.minimum(demand, np.minimum(cap, 1.0))
        held = alloc < want - 1e-12
        lam = np.max(alloc[held] / weight[held]) if held.any() else np.inf
        level = np.minimum(weight * lam, np.minimum(cap, 1.0))
        light = demand < 1.0
        crowded = light & (demand > LIGHT_MARGIN * level)
        if not crowded.any() and demand[light].sum() > LIGHT_TOTAL * pcpus:
            crowded = light & (demand == demand[light].max())
        if not crowded.any():
            return pcpus, demand, weight, cap, alloc
        demand[crowded] = 1.0


def simulate(name: str, seed: int, pcpus, demand, weight, cap) -> SliceResult:
    vms = [VmLoad((VcpuLoad(float(d), BURST),), weight=float(w), cap=float(c))
           for d, w, c in zip(demand, weight, cap, strict=True)]
    host = HostSlicer(pcpus, vms, POLICIES[name](), rng=np.random.default_rng(seed))
    return host.run(WINDOW, WARMUP)


def known_deviation(name: str, pcpus: int, demand: np.ndarray, cap: np.ndarray) -> str | None:
    """Why this host is not expected to match the fluid model (module docstring), if it is not."""
    if name == "fair":
        return "CFS per-CPU run queues, balanced by moving whole threads" if pcpus > 1 else None
    reasons = []
    if pcpus > 1:
        reasons.append("credit per-CPU queues")
    if np.isfinite(cap).any():
        reasons.append("credit caps as per-period budgets")
    if (demand < 1.0).any():
        reasons.append("credit dealt to light VMs and halved away")
    return ", ".join(reasons) or None


def check_against_fluid(name: str, seed: int, pcpus: int | None = None) -> None:
    pcpus, demand, weight, cap, alloc = random_host(seed, pcpus)
    r = simulate(name, seed, pcpus, demand, weight, cap)
    c = r.counters
    share = c["run_s"] / WINDOW

    # Invariants, whatever the policy and the host:
    # every vCPU's window is accounted for (run, ready, asleep, throttled, co-stopped) ...
    total = c["run_s"] + c["ready_s"] + c["idle_s"] + c["throttled_s"] + c["costop_s"]
    assert total == pytest.approx(np.full(len(demand), WINDOW), abs=1e-9)
    # ... no VM runs more than one core or its cap (a cap holds per period: at most one period's
    # quota more where the window cuts a period) ...
    assert np.all(share <= np.minimum(cap, 1.0) + 0.1 / WINDOW + 1e-12)
    # ... light VMs get their demand (they are never held back, by construction) ...
    light = demand < 1.0
    assert share[light] == pytest.approx(demand[light], abs=TOL)
    # ... the host never gives out more than the fluid model's total, and gives out all of it
    # when no VM is capped: an idle pCPU takes any runnable vCPU. (A cap is a budget per
    # period, used up at the start of it: capped VMs throttled at the same time can leave pCPUs
    # idle that the fluid model, which spreads a cap evenly, counts as used.)
    assert share.sum() <= alloc.sum() + TOL
    if not np.isfinite(cap).any():
        assert share.sum() == pytest.approx(alloc.sum(), abs=TOL)
    assert r.pcpu_idle_s == pytest.approx(pcpus * WINDOW - c["run_s"].sum(), abs=1e-6)

    # Each VM's share.
    err = float(np.max(np.abs(share - alloc)))
    why = known_deviation(name, pcpus, demand, cap)
    if why is not None and err > TOL:
        pytest.xfail(f"known deviations that apply here ({why}): "
                     f"max |share - fluid| = {err:.3f} of a core")
    assert share == pytest.approx(alloc, abs=TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", POLICIES)
def test_random_host_against_fluid(name, seed):
    check_against_fluid(name, seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", POLICIES)
def test_random_one_pcpu_host_against_fluid(name, seed):
    # The same hosts squeezed onto one pCPU: CFS has a single run queue there and must match.
    check_against_fluid(name, seed, pcpus=1)


@pytest.mark.parametrize("seed", SEEDS)
def test_credit_weights_of_cpu_bound_vms_on_one_pcpu(seed):
    # CPU-bound VMs with random weights on one pCPU: credit's priorities hold every VM to its
    # weighted share of the 30 ms dealt out each period. A VM's run is whole 30 ms slices, so
    # over 60 s it can be off by a few slices; 0.01 of a core is 20 slices.
    g = np.random.default_rng(seed)
    n = int(g.integers(1, 9))
    weight = g.choice([0.5, 1.0, 2.0, 3.0, 4.0], n)
    demand, cap = np.ones(n), np.full(n, np.inf)
    alloc = fluid(1, demand, weight, cap)
    np.testing.assert_allclose(alloc, weight / weight.sum(), rtol=1e-12)
    r = simulate("credit", seed, 1, demand, weight, cap)
    assert r.counters["run_s"] / WINDOW == pytest.approx(alloc, abs=0.01)


@pytest.mark.parametrize("seed", SEEDS)
def test_fair_equal_vcpus_on_several_pcpus_share_their_run_queue(seed):
    # CFS keeps one run queue per pCPU and moves a thread only when two queues differ by two or
    # more: n equal CPU-bound vCPUs on p pCPUs sit floor(n/p) or ceil(n/p) to a queue, and each
    # gets the same part of its pCPU as the others on it.
    g = np.random.default_rng(seed)
    p = int(g.integers(2, 5))
    n = int(g.integers(p + 1, 3 * p + 1))
    vms = [VmLoad((VcpuLoad(1.0),)) for _ in range(n)]
    r = HostSlicer(p, vms, Fair(), rng=g).run(WINDOW, WARMUP)
    share = r.counters["run_s"] / WINDOW
    slack = 2 * CFS_TURN / WINDOW
    assert np.all(share >= 1 / math.ceil(n / p) - slack)
    assert np.all(share <= 1 / math.floor(n / p) + slack)
    assert share.sum() == pytest.approx(p, abs=1e-9)  # no pCPU ever idles

