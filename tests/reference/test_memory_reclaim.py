"""The memory overcommit model (vsim/model/memory and reclaim) against values derived by hand.

Every expected value below is worked out from the model's documented behaviour (ESXi's
reclamation chain, VMware's vSphere 6 resource management guide, Waldspurger's OSDI 2002 paper),
not read off a run.

Set-ups. Most tests use one host with a round ``min_free`` chosen by hand (not ESXi's sliding
scale) so that the thresholds are simple numbers: with ``min_free`` = 2 GiB and ESXi's shares
(sharing below 100 %, balloon below 64 %, swap below 32 %, low below 16 %) the thresholds are
2, 1.28, 0.64 and 0.32 GiB. No per-VM overhead unless a test says so; swap space unbounded unless
a test says so; compression off unless a test says so.

Derivations used repeatedly (sizes in GiB):

* Free memory before sharing: ``free0 = RAM - sum(overhead + min(limit, ram))``; sharing is on
  when ``free0 < share_below * min_free``. A VM keeps ``consumed = ram - saved`` then, and
  ``free1 = RAM - sum(overhead + consumed)``.
* Balloon: a VM's balloon takes at most ``bcap = min(0.65 * ram, consumed - active)`` (its idle
  memory, ESXi's Mem.CtlMaxPercent 65 %). In the soft state balloons take back
  ``balloon_below * min_free - free1`` so that free memory ends at that threshold, or all of
  ``sum(bcap)`` if that is less.
* Hard state: when ``free1 + sum(bcap) < swap_below * min_free`` the host takes
  ``x = swap_below * min_free - free1`` in all (balloons, then compression and swap), so free
  memory ends at ``swap_below * min_free``. A VM's taken memory is ballooned up to its ``bcap``;
  the rest is compressed (when on) and swapped.
* The reference host of the pressure sweeps: 16 GiB, ``min_free`` 2 GiB, zero-page sharing,
  ``n`` VMs of 1 GiB with 10 % zero pages and 75 % active. Sharing saves 0.1 per VM
  (consumed 0.9), ``bcap = min(0.65, 0.9 - 0.75) = 0.15``, so ``free1 = 16 - 0.9 n`` and

  - n <= 14: free0 = 16 - n >= 2: high (n = 14 is exactly at the threshold, not below it);
  - n = 15, 16: free1 = 2.5, 1.6 >= 1.28: clear;
  - n = 17..20: free1 < 1.28 but free1 + 0.15 n = 16 - 0.75 n >= 0.64 (n <= 20.48): soft;
  - n >= 21: hard, x = 0.64 - free1 = 0.9 n - 15.36, and every VM loses x / n > 0.15: its
    balloon is full and it swaps x / n - 0.15.

* Shares with the idle memory tax: VM i keeps T_i with ``S_i / (W_i + k (T_i - W_i))`` equal
  across VMs (T_i >= W_i, k = 1 / (1 - tax) = 4), i.e. ``T_i = W_i + (lambda S_i - W_i) / k``;
  below its working set (T_i < W_i) simply ``T_i = lambda S_i``. The T_i sum to what is left.
* Miss fractions: the coldest pages go first, so a VM misses only on the evicted bytes beyond
  its idle private bytes (private pages less the working set's share of them, the working set
  spread evenly over the non-zero pages): ``p = max(0, evicted - idle_private) / W``; the
  compression cache, inside T, never pushes out what the reservation backs, so ``p = 0`` while
  ``W <= reservation``. Tests that check p use no shared pages (idle_private = ram - W).
* Slowdown: ``1 + a (p_c t_decompress + p_s (t_fault + q))``, ``a`` touches (pages) per second,
  ``t_fault = latency + page * (1 + dirty) / bandwidth``. n identical VMs that saturate the
  device: fault traffic ``n b a p B / slowdown = bandwidth`` (B bytes per fault, b busy), so
  ``slowdown = n b a p B / bandwidth`` and q follows.

Accounting identities hold throughout: RAM = free + kept + overhead, even when swap is full
(the pages that find no swap space stay with their VM); a VM's taken memory is its balloon plus
what compression frees plus its swapped memory.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsim.model.memory import (
    RECLAIM_PRESETS,
    SHARING_MODES,
    SWAP_DEVICES,
    MemoryParams,
    SwapDevice,
    device_wait,
    esxi_min_free,
    swap_slowdown,
)
from vsim.model.reclaim import STATE_NAMES, HostMemory, MemoryModel, Reclaim, VmMemory, reclaim

GiB = 2.0**30
MiB = 2.0**20
P = MemoryParams()
SSD = SWAP_DEVICES["ssd"]
T_FAULT_SSD = SSD.latency_s + 4096 * 2 / SSD.bandwidth_bytes_s  # 100 us + 8 KiB at 500 MB/s
ACCESS = 1 * GiB  # working-set bytes touched per second at 100 % CPU
A = ACCESS / 4096  # touches per second: 262144


def close(expected: float | np.ndarray) -> object:
    """Bytes to a byte (the water-fill and the bisections are exact to ~1e-16 relative)."""
    return pytest.approx(expected, rel=1e-9, abs=1.0)


def _arr(x: object, n: int, dtype: type = float) -> np.ndarray:
    return np.array(np.broadcast_to(np.asarray(x, dtype=dtype), (n,)), dtype=dtype)


def hosts(n: int = 1, *, ram: object = 16 * GiB, min_free: object = 2 * GiB,
          sharing: str = "zero", compression: bool = False, overhead_bytes: float = 0.0,
          overhead_frac: float = 0.0, device: SwapDevice = SSD,
          swap_size: object = math.inf) -> HostMemory:
    """ESXi's thresholds (100 / 64 / 32 / 16 % of min_free) with a chosen min_free."""
    return HostMemory(
        enabled=_arr(True, n, bool), ram=_arr(ram, n), min_free=_arr(min_free, n),
        share_below=_arr(1.0, n), balloon_below=_arr(0.64, n), swap_below=_arr(0.32, n),
        low_below=_arr(0.16, n), sharing=_arr(SHARING_MODES.index(sharing), n, int),
        compression=_arr(compression, n, bool), overhead_bytes=_arr(overhead_bytes, n),
        overhead_frac=_arr(overhead_frac, n), swap_latency_s=_arr(device.latency_s, n),
        swap_bandwidth=_arr(device.bandwidth_bytes_s, n), swap_size=_arr(swap_size, n))


def vms(n: int, *, ram: object = 1 * GiB, template: object = -1, reservation: object = 0.0,
        limit: object = math.inf, shares: object = 1000.0, active_frac: object = 0.75,
        zero_frac: object = 0.0, template_frac: object = 0.0, common_frac: object = 0.0,
        balloon: object = True, access: object = ACCESS) -> VmMemory:
    return VmMemory(
        ram=_arr(ram, n), template=_arr(template, n, int), reservation=_arr(reservation, n),
        limit=_arr(limit, n), shares=_arr(shares, n), active_frac=_arr(active_frac, n),
        access_bytes_s=_arr(access, n), zero_frac=_arr(zero_frac, n),
        template_frac=_arr(template_frac, n), common_frac=_arr(common_frac, n),
        balloon=_arr(balloon, n, bool))


def run(h: HostMemory, v: VmMemory, host: object = 0, params: MemoryParams = P) -> Reclaim:
    """All VMs of ``v`` placed on ``host`` (one index for all, or one per VM)."""
    n = len(v.ram)
    return reclaim(h, v, np.arange(n), _arr(host, n, int), params)


def sweep_host(n: int, **kw: object) -> tuple[HostMemory, VmMemory]:
    """The reference host of the pressure sweeps (see the module docstring)."""
    return hosts(**kw), vms(n, zero_frac=0.1)


def state(r: Reclaim, host: int = 0) -> str:
    return STATE_NAMES[r.state[host]]


# --- memory.py: minFree, presets, fault time, the slowdown of one VM ---------------------------


def test_state_names_in_esxi_order() -> None:
    assert STATE_NAMES == ("high", "clear", "soft", "hard", "low")


def test_esxi_min_free_sliding_scale() -> None:
    # 6 % of the first 4 GiB, 4 % of the next 8, 2 % of the next 16, 1 % of the rest.
    # 0.88 GiB = 245.76 + 327.68 + 327.68 = 901.12 MiB (VMware's "899 MB" sums the truncated
    # 245 + 327 + 327).
    at_28 = (0.06 * 4 + 0.04 * 8 + 0.02 * 16) * GiB
    at_100 = at_28 + 0.01 * (100 - 28) * GiB  # 1.6 GiB
    at_2 = 0.06 * 2 * GiB
    at_8 = (0.06 * 4 + 0.04 * 4) * GiB
    got = esxi_min_free(np.array([2, 8, 28, 100]) * GiB)
    assert got == pytest.approx([at_2, at_8, at_28, at_100], rel=1e-12)
    assert float(esxi_min_free(28 * GiB)) == pytest.approx(901.12 * MiB, rel=1e-12)


def test_esxi_preset_thresholds_match_vsphere_states() -> None:
    # vSphere 6: clear below 100 % of minFree, soft below 64 %, hard below 32 %, low below 16 %.
    esxi = RECLAIM_PRESETS["esxi"]
    assert esxi.min_free_frac is None  # the sliding scale
    assert (esxi.share_below, esxi.balloon_below, esxi.swap_below, esxi.low_below) == (
        1.0, 0.64, 0.32, 0.16)
    assert esxi.sharing == "zero" and esxi.compression


def test_fault_time_is_latency_plus_page_in_and_dirty_page_out() -> None:
    # One 4 KiB page in and (evict_dirty = 1) one out: 8 KiB at the device's bandwidth.
    for dev in SWAP_DEVICES.values():
        expected = dev.latency_s + 2 * 4096 / dev.bandwidth_bytes_s
        assert float(P.fault_s(dev)) == pytest.approx(expected, rel=1e-12)
    clean = MemoryParams(evict_dirty=0.0)
    assert float(clean.fault_s(SSD)) == pytest.approx(100e-6 + 4096 / 500e6, rel=1e-12)
    assert math.isclose(T_FAULT_SSD, 116.384e-6, rel_tol=1e-12)


def test_swap_slowdown_random_and_sequential() -> None:
    t_hit, t_fault = 1e-7, 1e-4  # a fault costs 1000 hits
    # Random touches, W = 2 R: half of them miss.
    assert float(swap_slowdown(2.0, t_hit, t_fault)) == pytest.approx(1 + 0.5 * 1000)
    # W = 4/3 R: a quarter miss; W <= R: none.
    assert float(swap_slowdown(4 / 3, t_hit, t_fault)) == pytest.approx(1 + 0.25 * 1000)
    assert float(swap_slowdown(0.5, t_hit, t_fault)) == 1.0
    assert float(swap_slowdown(1.0, t_hit, t_fault)) == 1.0
    # Sequential (LRU, cyclic): every touch misses as soon as W > R.
    seq = swap_slowdown(np.array([0.9, 1.0, 1.01, 3.0]), t_hit, t_fault, order="sequential")
    assert seq == pytest.approx([1.0, 1.0, 1001.0, 1001.0])
    with pytest.raises(ValueError):
        swap_slowdown(2.0, t_hit, t_fault, order="lifo")


# --- 1. no pressure ---------------------------------------------------------------------------


def test_no_pressure_no_reclamation_and_no_slowdown() -> None:
    # 64 GiB host, ESXi minFree 0.24 + 0.32 + 0.32 + 0.01 * 36 = 1.24 GiB; four 4 GiB VMs with
    # 64 MiB + 1 % overhead each: free0 = 64 - 4 (4 + 1/16 + 0.04) = 47.59 GiB, far above.
    h = hosts(ram=64 * GiB, min_free=esxi_min_free(64 * GiB), sharing="all",
              overhead_bytes=64 * MiB, overhead_frac=0.01)
    assert float(h.min_free[0]) == pytest.approx(1.24 * GiB, rel=1e-12)
    v = vms(4, ram=4 * GiB, template=0, zero_frac=0.3, template_frac=0.5, common_frac=0.2)
    r = run(h, v)
    assert state(r) == "high"
    overhead = 64 * MiB + 0.01 * 4 * GiB
    assert r.overhead == close([overhead] * 4)
    assert float(r.free[0]) == close(64 * GiB - 4 * (4 * GiB + overhead))
    for arr in (r.shared, r.saved, r.balloon, r.compressed, r.swapped, r.p_compressed,
                r.p_swapped):
        assert np.all(arr == 0.0)
    assert np.all(r.kept == 4 * GiB)
    assert float(r.deficit[0]) == 0.0

    m = MemoryModel(h, v)
    slow = m.update(np.arange(4), np.zeros(4, dtype=int), np.ones(4))
    assert np.all(slow == 1.0)
    assert np.all(m.swap_in_bytes_s == 0.0) and np.all(m.swap_out_bytes_s == 0.0)
    out, into = m.take_moved()
    assert np.all(out == 0.0) and np.all(into == 0.0)
    assert m.host_state[0] == 0 and float(m.host_saved[0]) == 0.0


# --- 2. the order of reclamation --------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [
    (10, "high"), (13, "high"), (14, "high"),  # free0 = 16 - n >= 2 GiB
    (15, "clear"), (16, "clear"),  # free1 = 16 - 0.9 n = 2.5, 1.6 >= 1.28
    (17, "soft"), (18, "soft"), (20, "soft"),  # 16 - 0.75 n >= 0.64
    (21, "hard"), (22, "hard"), (30, "hard"),
])
def test_state_follows_growing_pressure(n: int, expected: str) -> None:
    r = run(*sweep_host(n))
    assert state(r) == expected
    # The chain's steps appear in order: nothing is ballooned before sharing, nothing swapped
    # before the hard state.
    if expected == "high":
        assert np.all(r.saved == 0.0)
    if expected in ("high", "clear"):
        assert np.all(r.balloon == 0.0)
    if expected != "hard":
        assert np.all(r.swapped == 0.0)
    else:
        assert np.all(r.swapped > 0.0)


def test_clear_state_frees_by_sharing_only() -> None:
    # n = 16: zero pages shared, 0.1 GiB saved per VM; free = 16 - 16 * 0.9 = 1.6 GiB.
    r = run(*sweep_host(16))
    assert state(r) == "clear"
    assert r.saved == close([0.1 * GiB] * 16)
    assert r.shared == close([0.1 * GiB] * 16)
    assert r.kept == close([0.9 * GiB] * 16)
    assert float(r.free[0]) == close(16 * GiB - 16 * 0.9 * GiB)


def test_soft_state_balloons_free_memory_back_to_balloon_threshold() -> None:
    # n = 17: free1 = 16 - 15.3 = 0.7 GiB, so balloons take 0.64 * 2 - 0.7 = 0.58 GiB in all,
    # shared equally by identical VMs; free memory ends at 1.28 GiB.
    r = run(*sweep_host(17))
    assert state(r) == "soft"
    total = 0.64 * 2 * GiB - (16 * GiB - 17 * 0.9 * GiB)
    assert total == pytest.approx(0.58 * GiB)
    assert float(r.balloon.sum()) == close(total)
    assert r.balloon == close([total / 17] * 17)
    assert float(r.free[0]) == close(0.64 * 2 * GiB)
    assert np.all(r.swapped == 0.0) and np.all(r.compressed == 0.0)
    assert float(r.deficit[0]) == 0.0


def test_soft_state_with_full_balloons_holds_until_swap_threshold() -> None:
    # n = 20: free1 = 16 - 18 = -2 GiB; balloons would need 3.28 but hold 20 * 0.15 = 3 GiB.
    # Free memory ends at 1 GiB: below the balloon threshold, still above the swap one (0.64),
    # so the host stays soft and nothing is swapped.
    r = run(*sweep_host(20))
    assert state(r) == "soft"
    assert r.balloon == close([0.15 * GiB] * 20)
    assert float(r.free[0]) == close(16 * GiB - 20 * 0.9 * GiB + 20 * 0.15 * GiB)
    assert np.all(r.swapped == 0.0)


def test_hard_state_swaps_free_memory_back_to_swap_threshold() -> None:
    # n = 22: free1 = 16 - 19.8 = -3.8 GiB; balloons give 22 * 0.15 = 3.3 (full), swap the
    # rest: 0.64 + 3.8 - 3.3 = 1.14 GiB, 1.14 / 22 per VM; free memory ends at 0.64 GiB.
    r = run(*sweep_host(22))
    assert state(r) == "hard"
    assert r.balloon == close([0.15 * GiB] * 22)
    swapped = 0.32 * 2 * GiB - (16 * GiB - 22 * 0.9 * GiB) - 22 * 0.15 * GiB
    assert swapped == pytest.approx(1.14 * GiB)
    assert float(r.swapped.sum()) == close(swapped)
    assert r.swapped == close([swapped / 22] * 22)
    assert float(r.free[0]) == close(0.32 * 2 * GiB)
    assert float(r.deficit[0]) == 0.0


def test_swapping_starts_only_when_the_balloon_is_full() -> None:
    # Over the sweep, and for VMs that differ in idle memory (active 50 % to 95 %), a VM swaps
    # only once its own balloon holds all it may (bcap = min(0.65, 0.9 - active)).
    active = np.linspace(0.5, 0.95, 10)
    bcap = np.clip(0.9 - active, 0.0, 0.65) * GiB
    seen_hard = False
    for n_rep in range(1, 6):
        n = 10 * n_rep
        v = vms(n, zero_frac=0.1, active_frac=np.tile(active, n_rep))
        r = run(hosts(ram=12 * GiB), v)
        swapping = r.swapped > 0
        seen_hard |= bool(swapping.any())
        assert r.balloon[swapping] == close(np.tile(bcap, n_rep)[swapping])
        assert np.all(r.balloon <= np.tile(bcap, n_rep) + 1.0)
    assert seen_hard


def test_free_memory_is_ram_less_overhead_and_kept() -> None:
    # Every byte is accounted: what the VMs keep plus their overhead plus free is the RAM, in
    # every state (swap space unbounded here).
    for n in (10, 16, 17, 20, 22, 30):
        h, v = sweep_host(n, overhead_bytes=32 * MiB, overhead_frac=0.02)
        r = run(h, v)
        assert float(r.free[0] + r.kept.sum() + r.overhead.sum()) == close(16 * GiB)


# --- 3. reservations and limits ---------------------------------------------------------------


def reserved_working_set() -> tuple[HostMemory, VmMemory]:
    # 12 GiB host, min_free 1 GiB, three 8 GiB VMs each with a 4 GiB working set. VM 0 has no
    # balloon driver and a 4 GiB reservation. free1 = 12 - 24 = -12; balloons (VMs 1, 2: bcap
    # min(5.2, 4) = 4 each) give 8, short of 0.32 + 12: hard, x = 12.32 GiB. Equal shares and
    # everyone below W: T = lambda S, VM 0 held at its 4 GiB reservation, VMs 1 and 2 keep
    # (24 - 12.32 - 4) / 2 = 3.84 each. VM 0 swaps 4 (all idle); VMs 1 and 2 balloon 4 and
    # swap 0.16, all of it working set: p = 0.16 / 4 = 0.04.
    h = hosts(ram=12 * GiB, min_free=1 * GiB, sharing="off")
    v = vms(3, ram=8 * GiB, active_frac=0.5, reservation=[4 * GiB, 0, 0],
            balloon=[False, True, True])
    return h, v


def test_reserved_working_set_is_never_slowed() -> None:
    h, v = reserved_working_set()
    r = run(h, v)
    assert state(r) == "hard"
    assert r.kept == close([4 * GiB, 3.84 * GiB, 3.84 * GiB])
    assert r.balloon == close([0, 4 * GiB, 4 * GiB])
    assert r.swapped == close([4 * GiB, 0.16 * GiB, 0.16 * GiB])
    assert float(r.p_swapped[0]) == 0.0
    assert r.p_swapped[1:] == pytest.approx([0.04, 0.04], rel=1e-9)

    m = MemoryModel(h, v)
    slow = m.update(np.arange(3), np.zeros(3, dtype=int), np.ones(3))
    assert slow[0] == 1.0
    assert float(m.swap_in_bytes_s[0]) == 0.0
    # VMs 1 and 2 fault 2 * a p / (1 + a p t_f) * 8 KiB ~ 77 MB/s < 500 MB/s: q = 0.
    assert slow[1:] == pytest.approx([1 + A * 0.04 * T_FAULT_SSD] * 2, rel=1e-9)


def test_reserved_working_set_is_never_slowed_with_compression() -> None:
    # The same with compression on: the chain keeps the same T (compression only changes how
    # the taken memory is freed). VMs 1 and 2: rest 0.16, all of it compressed (0.32 GiB of
    # pages, all working set: p_c = 0.32 / 4 = 0.08, nothing swapped). VM 0 still never misses
    # (its 4 GiB are swapped, not compressed: see the next test).
    h, v = reserved_working_set()
    h.compression[:] = True
    r = run(h, v)
    assert r.kept == close([4 * GiB, 3.84 * GiB, 3.84 * GiB])
    assert r.compressed[1:] == close([0.32 * GiB] * 2)
    assert r.swapped[1:] == close([0, 0])
    assert float(r.p_swapped[0]) == 0.0 and float(r.p_compressed[0]) == 0.0
    assert r.p_compressed[1:] == pytest.approx([0.08, 0.08], rel=1e-9)
    m = MemoryModel(h, v)
    slow = m.update(np.arange(3), np.zeros(3, dtype=int), np.ones(3))
    assert slow[0] == 1.0
    assert slow[1:] == pytest.approx([1 + A * 0.08 * P.t_decompress_s] * 2, rel=1e-9)


def test_reserved_memory_is_not_turned_into_compression_cache() -> None:
    # VM 0 above is held at T = 4 GiB = its reservation = W. The compression cache sits inside
    # T, so compressing its pages would push part of its reserved working set out of plain
    # residency; the chain compresses at most rho (T - min(W, R)) = 0 of them and swaps the
    # 4 GiB it gives up instead, all idle: 8 - 4 = 4 GiB resident, the whole working set.
    h, v = reserved_working_set()
    h.compression[:] = True
    r = run(h, v)
    w = v.active_frac * v.ram
    assert float(r.compressed[0]) == 0.0
    assert float(r.swapped[0]) == close(4 * GiB)
    resident = v.ram - r.balloon - r.compressed - r.swapped
    missing = np.maximum(0.0, w - resident)
    assert float(missing[0]) == 0.0
    # Every VM's misses cover its working set that is not plainly resident.
    assert np.all((r.p_compressed + r.p_swapped) * w >= missing - 1.0)


def test_kept_never_below_reservation() -> None:
    # 12 GiB host, min_free 1 GiB, ten 2 GiB VMs with reservations 0 .. 2 GiB: free1 = -8.
    # Balloons may take min(1.3, 2 - W, 2 - reservation) each, 6.46 GiB in all, short of
    # 0.32 + 8 = 8.32: hard, x = 8.32 GiB, which fits in what is not reserved (20 - 10 = 10).
    # Fully reserved VMs lose nothing.
    res = np.array([0, 0.5, 1, 1.5, 2] * 2) * GiB
    v = vms(10, ram=2 * GiB, reservation=res, active_frac=np.linspace(0.2, 0.9, 10))
    r = run(hosts(ram=12 * GiB, min_free=1 * GiB, sharing="off"), v)
    assert state(r) == "hard"
    assert np.all(r.kept >= res - 1.0)
    assert r.kept[res == 2 * GiB] == close([2 * GiB, 2 * GiB])
    assert float(r.free[0]) == close(0.32 * GiB)
    assert float((2 * GiB - r.kept).sum()) == close(8.32 * GiB)


@pytest.mark.parametrize(("limit", "balloon", "swapped", "p_s"), [
    # 8 GiB VM, W = 2 GiB, bcap = min(0.65 * 8, 8 - 2) = 5.2 GiB; excess = 8 - limit.
    (3.0, 5.0, 0.0, 0.0),  # excess 5 < 5.2: ballooned only
    (2.0, 5.2, 0.8, 0.0),  # excess 6: balloon full, 0.8 swapped, still all idle (8 - 2 = 6)
    (1.0, 5.2, 1.8, 0.5),  # excess 7: 1 GiB of the 2 GiB working set swapped: p = 1 / 2
])
def test_limit_caps_kept_without_host_pressure(limit: float, balloon: float, swapped: float,
                                               p_s: float) -> None:
    v = vms(1, ram=8 * GiB, active_frac=0.25, limit=limit * GiB)
    r = run(hosts(ram=64 * GiB), v)
    assert state(r) == "high"  # 64 - limit GiB free: the host is not under pressure
    assert r.kept == close([limit * GiB])
    assert r.balloon == close([balloon * GiB])
    assert r.swapped == close([swapped * GiB])
    assert r.p_swapped == pytest.approx([p_s], abs=1e-12)


# --- 4. page sharing --------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "same_template", "saved"), [
    # Two 4 GiB VMs; 10 % zero pages, of the 3.6 GiB of content 50 % from the template and 20 %
    # common to any guest. A group of n sharing x saves x (1 - 1/n) per VM: x / 2 here.
    ("off", True, 0.0),
    ("zero", True, 0.4),
    ("zero", False, 0.4),
    ("template", True, 0.4 + (0.5 + 0.2) * 3.6 / 2),  # template mode: common pages per template
    ("template", False, 0.4),
    ("all", True, 0.4 + 0.5 * 3.6 / 2 + 0.2 * 3.6 / 2),
    ("all", False, 0.4 + 0.2 * 3.6 / 2),  # common pages shared across templates
])
def test_page_sharing_by_mode_and_template(mode: str, same_template: bool, saved: float) -> None:
    # 8.7 GiB host, min_free 1 GiB: free0 = 0.7 < 1 GiB, sharing on; free1 >= 0.7 >= 0.64:
    # no balloon, so free memory is RAM less what the VMs consume.
    h = hosts(ram=8.7 * GiB, min_free=1 * GiB, sharing=mode)
    v = vms(2, ram=4 * GiB, template=[0, 0] if same_template else [0, 1], zero_frac=0.1,
            template_frac=0.5, common_frac=0.2)
    r = run(h, v)
    assert state(r) == "clear"
    assert r.saved == close([saved * GiB] * 2)
    assert r.kept == close([(4 - saved) * GiB] * 2)
    assert float(r.free[0]) == close(8.7 * GiB - 2 * (4 - saved) * GiB)


def test_one_template_shares_more_than_two() -> None:
    def pair(template: list[int]) -> VmMemory:
        return vms(2, ram=4 * GiB, template=template, zero_frac=0.1, template_frac=0.5,
                   common_frac=0.2)

    for mode in ("template", "all"):
        h = hosts(ram=8 * GiB, min_free=1 * GiB, sharing=mode)
        same, diff = run(h, pair([3, 3])), run(h, pair([3, 4]))
        # 'template': 0.7 * 3.6 / 2 = 1.26 GiB more per VM; 'all': 0.5 * 3.6 / 2 = 0.9 GiB more.
        extra = {"template": 0.7, "all": 0.5}[mode] * 3.6 / 2 * GiB
        assert (same.saved - diff.saved) == close([extra] * 2)


def test_sharing_group_of_three_keeps_a_third_each() -> None:
    # Three 3 GiB VMs of one template, template mode, no zero pages: 60 % of the content is the
    # template's, each keeps a third of it: saved = 0.6 * 3 * (1 - 1/3) = 1.2 GiB per VM. A
    # fourth VM without a template shares nothing. MemoryModel sums the host's saving.
    h = hosts(ram=10 * GiB, min_free=1 * GiB, sharing="template")
    v = vms(4, ram=3 * GiB, template=[7, 7, 7, -1], template_frac=0.6)
    r = run(h, v)
    assert r.saved == close([1.2 * GiB] * 3 + [0.0])
    assert r.shared == close([1.8 * GiB] * 3 + [0.0])
    m = MemoryModel(h, v)
    m.update(np.arange(4), np.zeros(4, dtype=int), np.ones(4))
    assert float(m.host_saved[0]) == close(3.6 * GiB)


# --- 5. the slowdown and the swap device ------------------------------------------------------


def limited(n: int, active_frac: object, limit: float = 4 * GiB) -> tuple[HostMemory, VmMemory]:
    # 8 GiB VMs without balloon capped at ``limit`` on a 64 GiB host: no host pressure, each
    # swaps 8 - limit, of which W - limit is working set (p = (W - limit) / W for W > limit).
    return (hosts(ram=64 * GiB, sharing="off"),
            vms(n, ram=8 * GiB, active_frac=active_frac, limit=limit, balloon=False))


def test_single_vm_slowdown_equals_swap_slowdown() -> None:
    fracs = np.array([0.25, 0.5, 0.55, 0.6, 0.75, 0.9, 1.0])
    w = fracs * 8 * GiB
    resident = np.minimum(w, 4 * GiB)  # of the working set
    expected = 1 + A * (1 - resident / w) * T_FAULT_SSD
    got = []
    for f in fracs:
        h, v = limited(1, f)
        m = MemoryModel(h, v)
        got.append(float(m.update(np.arange(1), np.zeros(1, dtype=int), np.ones(1))[0]))
    assert got == pytest.approx(expected.tolist(), rel=1e-12)
    assert got == pytest.approx(
        swap_slowdown(w / resident, 1 / A, P.fault_s(SSD), order="random").tolist(), rel=1e-12)
    assert got[:2] == [1.0, 1.0]  # W <= limit: nothing of the working set is out
    assert np.all(np.diff(got[1:]) > 0)


def test_slowdown_grows_with_pressure() -> None:
    # Reference sweep without sharing (consumed = 1, bcap = min(0.65, 0.25) = 0.25): hard for
    # n >= 21 with x = 0.64 - (16 - n) = n - 15.36 GiB; each VM loses x / n, ballooned 0.25,
    # swapped x / n - 0.25, all of that working set (the idle 0.25 is the balloon's):
    # p = (x / n - 0.25) / 0.75. Busy 1 % keeps the device far from saturation: q = 0.
    ns = np.arange(21, 33)
    p_exp = ((ns - 15.36) / ns - 0.25) / 0.75
    p_got, slow_got = [], []
    for n in ns:
        h, v = hosts(sharing="off"), vms(int(n))
        r = run(h, v)
        assert state(r) == "hard"
        assert float(r.swapped.sum()) == close((0.75 * n - 15.36) * GiB)
        m = MemoryModel(h, v)
        slow = m.update(np.arange(n), np.zeros(n, dtype=int), np.full(n, 0.01))
        p_got.append(float(r.p_swapped[0]))
        slow_got.append(float(slow[0]))
    assert p_got == pytest.approx(p_exp.tolist(), rel=1e-9)
    assert slow_got == pytest.approx((1 + A * p_exp * T_FAULT_SSD).tolist(), rel=1e-9)
    assert np.all(np.diff(p_got) > 0) and np.all(np.diff(slow_got) > 0)


def test_swap_traffic_is_bounded_by_the_device_bandwidth() -> None:
    # Ten 8 GiB VMs capped at 4 GiB, W = 6 GiB: p = 1/3 each. Alone a VM would fault
    # a p / (1 + a p t_f) * 8 KiB ~ 64 MB/s; ten ask ~ 641 MB/s of a 500 MB/s SSD: saturated.
    # Then 10 a p B / slowdown = 500e6, so slowdown = 10 a p B / 500e6 ~ 14.3 for all.
    n, p = 10, 1 / 3
    h, v = limited(n, 0.75)
    m = MemoryModel(h, v)
    slow = m.update(np.arange(n), np.zeros(n, dtype=int), np.ones(n))
    bw = SSD.bandwidth_bytes_s
    asked = n * A * p / (1 + A * p * T_FAULT_SSD) * 8192
    assert asked > bw
    traffic = float((m.swap_in_bytes_s + m.swap_out_bytes_s).sum())
    assert traffic <= bw * (1 + 1e-9)
    assert traffic == pytest.approx(bw, rel=1e-9)
    assert slow == pytest.approx([n * A * p * 8192 / bw] * n, rel=1e-9)
    # In and out: a page in per fault and (all dirty) a page out.
    assert m.swap_in_bytes_s == pytest.approx(m.swap_out_bytes_s, rel=1e-12)

    # Two such VMs ask ~128 MB/s: the device keeps up and they get what they ask.
    h2, v2 = limited(2, 0.75)
    m2 = MemoryModel(h2, v2)
    slow2 = m2.update(np.arange(2), np.zeros(2, dtype=int), np.ones(2))
    assert slow2 == pytest.approx([1 + A * p * T_FAULT_SSD] * 2, rel=1e-12)
    traffic2 = float((m2.swap_in_bytes_s + m2.swap_out_bytes_s).sum())
    assert traffic2 == pytest.approx(2 * A * p / (1 + A * p * T_FAULT_SSD) * 8192, rel=1e-12)
    assert traffic2 < bw


def test_device_wait_zero_when_device_keeps_up_and_closed_form_when_not() -> None:
    # Host 0: two VMs that ask less than the bandwidth; host 1: n identical VMs that ask more.
    # For identical VMs n b a p B / (1 + a p (t_f + q)) = bw gives
    # q = (n b a p B / bw - 1) / (a p) - t_f.
    a, p, t_f, b_bytes, bw = A, 0.2, T_FAULT_SSD, 8192.0, 500e6
    n1 = 12
    host = np.array([0, 0] + [1] * n1)
    k = len(host)
    busy = np.array([0.5, 0.5] + [0.8] * n1)
    q = device_wait(host, 2, np.full(k, a), busy, np.full(k, p), np.zeros(k), np.full(k, t_f),
                    np.full(k, b_bytes), np.array([bw, bw]))
    assert float(q[0]) == 0.0
    q_exp = (n1 * 0.8 * a * p * b_bytes / bw - 1) / (a * p) - t_f
    assert q_exp > 0
    assert float(q[1]) == pytest.approx(q_exp, rel=1e-9)
    # Nobody faults: no wait at all.
    none = device_wait(host, 2, np.full(k, a), busy, np.zeros(k), np.zeros(k), np.full(k, t_f),
                       np.full(k, b_bytes), np.array([bw, bw]))
    assert np.all(none == 0.0)


# --- 6. shares and the idle memory tax --------------------------------------------------------


def two_big_vms(**kw: object) -> Reclaim:
    # 14 GiB host, min_free 2 GiB, no sharing, two 8 GiB VMs: free1 = -2 GiB, balloons take
    # 1.28 + 2 = 3.28 GiB (they could take 5.2 + 4 or more: soft), the VMs keep 12.72 GiB.
    return run(hosts(ram=14 * GiB, sharing="off"), vms(2, ram=8 * GiB, **kw))


def test_more_shares_keep_more_memory() -> None:
    # W = 2 GiB each, shares 2000 and 1000; u = lambda * 1000:
    # T_a = 2 + (2u - 2) / 4, T_b = 2 + (u - 2) / 4, T_a + T_b = 12.72 => u = 12.96,
    # T_a = 7.98, T_b = 4.74 GiB (both within [W, 8] and above 8 - bcap = 2.8).
    r = two_big_vms(active_frac=0.25, shares=[2000, 1000])
    assert state(r) == "soft"
    u = (4 * (12.72 - 4) + 4) / 3
    assert u == pytest.approx(12.96)
    assert r.kept == close([(2 + (2 * u - 2) / 4) * GiB, (2 + (u - 2) / 4) * GiB])
    assert r.kept == close([7.98 * GiB, 4.74 * GiB])
    assert r.balloon == close([0.02 * GiB, 3.26 * GiB])
    assert float(r.free[0]) == close(1.28 * GiB)


def test_idle_memory_tax_reclaims_the_idler_vm_first() -> None:
    # Equal shares, W_a = 2, W_b = 4 GiB: T_b - T_a = (W_b - W_a) (1 - 1/k) = 2 * 0.75 = 1.5,
    # T_a + T_b = 12.72 => T_a = 5.61, T_b = 7.11 GiB; balloons 2.39 and 0.89 GiB.
    r = two_big_vms(active_frac=[0.25, 0.5])
    assert state(r) == "soft"
    assert float(r.kept[1] - r.kept[0]) == close(0.75 * (4 - 2) * GiB)
    assert r.kept == close([5.61 * GiB, 7.11 * GiB])
    assert r.balloon == close([2.39 * GiB, 0.89 * GiB])
    # Without the tax (k = 1) equal shares keep equal memory: 6.36 GiB each.
    flat = run(hosts(ram=14 * GiB, sharing="off"), vms(2, ram=8 * GiB, active_frac=[0.25, 0.5]),
               params=MemoryParams(idle_tax=0.0))
    assert flat.kept == close([6.36 * GiB] * 2)


# --- 8. compression ---------------------------------------------------------------------------


def test_compression_swaps_less_and_accounts_for_the_freed_memory() -> None:
    # 16 GiB host, min_free 2 GiB, no sharing, 30 VMs of 1 GiB, W = 0.75 (bcap 0.25): hard,
    # x = 0.64 - (16 - 30) = 14.64 GiB, 0.488 per VM; balloon 0.25, rest 0.238. Compression
    # (ratio 2, cache <= 10 % of 1 GiB, i.e. 0.2 GiB of pages) frees 0.1 of it; 0.138 swapped.
    # Off: 0.238 swapped.
    # Misses (idle 0.25): with compression 0.25 + 0.2 + 0.138 = 0.588 evicted, 0.338 of it
    # working set, the compressed 0.2 the hottest: p_c = 0.2 / 0.75, p_s = 0.138 / 0.75.
    # Off: 0.488 evicted, p_s = 0.238 / 0.75.
    off = run(hosts(sharing="off"), vms(30))
    on = run(hosts(sharing="off", compression=True), vms(30))
    assert state(off) == state(on) == "hard"
    assert off.swapped == close([0.238 * GiB] * 30)
    assert on.compressed == close([0.2 * GiB] * 30)
    assert on.swapped == close([0.138 * GiB] * 30)
    assert float(on.swapped.sum()) < float(off.swapped.sum())
    assert on.balloon == close([0.25 * GiB] * 30)
    rest = (1 * GiB - on.kept) - on.balloon
    assert on.compressed * (1 - 1 / P.compression_ratio) + on.swapped == close(rest)
    assert float(on.free[0]) == close(0.64 * GiB) and float(off.free[0]) == close(0.64 * GiB)
    assert on.p_compressed == pytest.approx([0.2 / 0.75] * 30, rel=1e-9)
    assert on.p_swapped == pytest.approx([0.138 / 0.75] * 30, rel=1e-9)
    assert np.all(off.p_compressed == 0.0)
    assert off.p_swapped == pytest.approx([0.238 / 0.75] * 30, rel=1e-9)

    # Ratio 3: a page stored takes a third; the cache holds 3 * 0.1 = 0.3 GiB of pages, frees
    # 0.3 * 2/3 = 0.2; swapped 0.238 - 0.2 = 0.038.
    p3 = MemoryParams(compression_ratio=3.0)
    on3 = run(hosts(sharing="off", compression=True), vms(30), params=p3)
    assert on3.compressed == close([0.3 * GiB] * 30)
    assert on3.swapped == close([0.038 * GiB] * 30)
    assert on3.compressed * (2 / 3) + on3.swapped == close([0.238 * GiB] * 30)


def test_compressed_pages_cost_a_decompression() -> None:
    # One 8 GiB VM capped at 7.6 GiB, W = 6 GiB, no balloon, compression on: 0.4 GiB to free,
    # the cache (<= 0.8 GiB stored, 1.6 GiB of pages) takes 0.8 GiB of pages, nothing swapped;
    # evicted 0.8 - idle 2 < 0: nothing hot is compressed. At 7.0 GiB: 1 GiB to free, pages
    # compressed 1.6 (freeing 0.8), swapped 0.2; evicted 1.8 < 2: still no miss. At 5.5 GiB:
    # 2.5 to free: 1.6 compressed, 1.7 swapped, evicted 3.3, 1.3 hot, all of the 1.6 cache
    # first: p_c = 1.3 / 6, p_s = 0, slowdown 1 + a (1.3 / 6) t_decompress.
    h = hosts(ram=64 * GiB, sharing="off", compression=True)
    expected = {7.6: (0.8, 0.0, 0.0), 7.0: (1.6, 0.2, 0.0), 5.5: (1.6, 1.7, 1.3 / 6)}
    for limit, (comp, swapped, p_c) in expected.items():
        v = vms(1, ram=8 * GiB, active_frac=0.75, limit=limit * GiB, balloon=False)
        r = run(h, v)
        assert r.compressed == close([comp * GiB])
        assert r.swapped == close([swapped * GiB])
        assert r.p_compressed == pytest.approx([p_c], abs=1e-12)
        assert np.all(r.p_swapped == 0.0)
        m = MemoryModel(h, v)
        slow = m.update(np.arange(1), np.zeros(1, dtype=int), np.ones(1))
        assert slow == pytest.approx([1 + A * p_c * P.t_decompress_s], rel=1e-12)


# --- 9. swap space full -----------------------------------------------------------------------


def test_full_swap_leaves_a_deficit_and_the_low_state() -> None:
    # Reference sweep, n = 22, would swap 1.14 GiB; only 0.5 GiB of swap: 0.64 GiB stay and
    # the host is short of them: free = 0.64 - 0.64 = 0 < 0.16 * 2: low.
    r = run(*sweep_host(22, swap_size=0.5 * GiB))
    assert state(r) == "low"
    assert float(r.swapped.sum()) == close(0.5 * GiB)
    assert r.swapped == close([0.5 / 22 * GiB] * 22)
    assert float(r.deficit[0]) == close(0.64 * GiB)
    assert float(r.free[0]) == close(0.0)


def test_full_swap_pages_that_stay_are_kept() -> None:
    # Same set-up: the 0.64 GiB that find no swap space stay in host memory, so the VMs keep
    # them: free + sum(kept) must still be the 16 GiB of RAM, and each VM's taken memory must
    # still be its balloon plus its swapped memory (compression off).
    r = run(*sweep_host(22, swap_size=0.5 * GiB))
    assert float(r.free[0] + r.kept.sum()) == close(16 * GiB)
    assert 0.9 * GiB - r.kept == close(r.balloon + r.swapped)


def test_everything_reserved_is_low_with_deficit() -> None:
    # Two fully reserved 8 GiB VMs on 14 GiB: nothing may be taken, free = -2 GiB; the host
    # needs 0.64 + 2 = 2.64 GiB it cannot get.
    r = two_big_vms(active_frac=0.5, reservation=8 * GiB)
    assert state(r) == "low"
    assert float(r.deficit[0]) == close(2.64 * GiB)
    assert r.kept == close([8 * GiB] * 2)
    assert np.all(r.balloon == 0.0) and np.all(r.swapped == 0.0)


# --- 11. the model over a run -----------------------------------------------------------------


def test_update_twice_counts_swap_out_and_resets_departed_vms() -> None:
    # 24 VMs known, the reference host. First 22 run (hard: 1.14 / 22 GiB swapped each), then 17
    # (soft: nothing swapped). VMs 0..16 swap their pages back in; VMs 17..21 left: their
    # levels are reset and no swap-in is counted for them.
    h = hosts()
    v = vms(24, zero_frac=0.1)
    m = MemoryModel(h, v)
    per = 1.14 / 22 * GiB
    m.update(np.arange(22), np.zeros(22, dtype=int), np.ones(22))
    assert m.host_state[0] == STATE_NAMES.index("hard")
    out, into = m.take_moved()
    assert out == close([per] * 22 + [0.0] * 2)
    assert float(out.sum()) == close(1.14 * GiB)
    assert np.all(into == 0.0)
    out, into = m.take_moved()  # taken: nothing left
    assert np.all(out == 0.0) and np.all(into == 0.0)
    assert m.level["swapped"][:22] == close([per] * 22)
    assert np.all(m.where[:22] == 0) and np.all(m.where[22:] == -1)

    m.update(np.arange(17), np.zeros(17, dtype=int), np.ones(17))
    assert m.host_state[0] == STATE_NAMES.index("soft")
    assert float(m.host_free[0]) == close(1.28 * GiB)
    out, into = m.take_moved()
    assert np.all(out == 0.0)
    assert into == close([per] * 17 + [0.0] * 7)
    for key, level in m.level.items():
        assert np.all(level[17:] == 0.0), key
    assert np.all(m.level["active"][:17] == 0.75 * GiB)
    assert np.all(m.where[17:] == -1)
    assert np.all(m.slowdown[17:] == 1.0)
    assert np.all(m.swap_in_bytes_s[17:] == 0.0) and np.all(m.swap_out_bytes_s[17:] == 0.0)


def test_update_leaves_hosts_out_of_scope_alone() -> None:
    # Host 0: the reference host with 22 VMs; host 1: one 8 GiB VM capped at 4 GiB (no balloon,
    # W = 6 GiB) swapping 4 GiB. The second update covers host 0 only and lists host 0's VMs:
    # VM 22 is not listed but its host is out of scope, so its levels stay.
    h = hosts(2, ram=[16 * GiB, 64 * GiB])
    v = vms(23, ram=[1 * GiB] * 22 + [8 * GiB], zero_frac=[0.1] * 22 + [0.0],
            limit=[math.inf] * 22 + [4 * GiB], balloon=[True] * 22 + [False])
    m = MemoryModel(h, v)
    host = np.array([0] * 22 + [1])
    m.update(np.arange(23), host, np.ones(23))
    assert float(m.level["swapped"][22]) == close(4 * GiB)
    slow22 = float(m.slowdown[22])
    assert slow22 == pytest.approx(1 + A * (2 / 6) * T_FAULT_SSD, rel=1e-12)
    m.take_moved()

    scope = np.array([True, False])
    m.update(np.arange(22), np.zeros(22, dtype=int), np.ones(22), scope)
    assert float(m.level["swapped"][22]) == close(4 * GiB)
    assert m.where[22] == 1 and float(m.slowdown[22]) == slow22
    out, into = m.take_moved()
    assert out[22] == 0.0 and into[22] == 0.0
    # In scope with VM 22 absent: it leaves host 1, levels reset, no swap-in counted.
    m.update(np.arange(22), np.zeros(22, dtype=int), np.ones(22))
    assert float(m.level["swapped"][22]) == 0.0 and m.where[22] == -1
    out, into = m.take_moved()
    assert into[22] == 0.0
