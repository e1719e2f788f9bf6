"""The live migration model against closed forms (Clark et al., NSDI 2005; Akoush et al., MASCOTS
2010) and first principles. Each test drives the migration fabric by itself (``run_alone``)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from vsim.model.migration import IS_PAUSED, MigrationFabric, MigrationParams, Phase
from vsim.model.network import Links, max_min_rates

GIB = 2.0**30
MIB = 2.0**20
GBIT = 125e6  # 1 Gbit/s in bytes/s

# No fixed costs, no page headers, no caps: the pure pre-copy model of the literature.
# The textbook model (Clark et al.; Xen): the downtime test is made once a round is sent.
PURE = MigrationParams(setup_s=0.0, resume_s=0.0, device_state_bytes=0.0, page_overhead_bytes=0.0,
                       max_rounds=None, dirty_follows_cpu=False, max_bandwidth_bytes_s=math.inf,
                       switchover_check="round-end")


def fabric(params: MigrationParams, ram: list[float], dirty: list[float], *, n_hosts: int = 2,
           nic: float = GBIT, wws: list[float] | None = None, net: list[float] | None = None,
           sites: list[int] | None = None, uplink: float = math.inf) -> MigrationFabric:
    n = len(ram)
    site = np.array(sites if sites is not None else [0] * n_hosts)
    n_sites = int(site.max()) + 1
    links = Links(np.full(n_hosts, nic), site, np.full(n_sites, math.inf), np.full(n_sites, uplink))
    return MigrationFabric(params, links, np.array(ram), np.array(dirty),
                           np.array(wws if wws is not None else [math.inf] * n),
                           np.array(net if net is not None else [0.0] * n),
                           np.zeros(n, dtype=np.int32))


def test_precopy_with_a_constant_dirty_rate_follows_the_closed_form() -> None:
    # M = 1 GiB over B = 1 Gbit/s while the VM dirties D = 40 MiB/s: rho = D / B. Round i sends
    # V_i = M rho^i. After round n the next would send V_(n+1); it stops when that fits in the
    # 300 ms limit (V_(n+1) <= 0.3 B), and sends it with the VM paused.
    m, b, d = GIB, GBIT, 40 * MIB
    rho = d / b
    n = next(i for i in range(100) if m * rho ** (i + 1) <= 0.3 * b)
    precopy_s = (m / b) * (1 - rho ** (n + 1)) / (1 - rho)
    stop_s = m * rho ** (n + 1) / b
    f = fabric(PURE, [m], [d])
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    # rho = 0.3355: rounds of 1074, 360, 121 and 40.6 MB; then 13.6 MB fits in 0.3 s x 125 MB/s.
    assert n == 3
    assert done.rounds == n + 1
    assert done.ended_s == pytest.approx(precopy_s + stop_s)
    assert done.downtime_s == pytest.approx(stop_s)
    assert done.bytes == pytest.approx(m * (1 - rho ** (n + 2)) / (1 - rho))
    assert done.outcome == "completed"


def test_the_writable_working_set_bounds_what_a_round_finds_dirty() -> None:
    # Round 0 takes M / B = 8.59 s, during which D = 100 MiB/s would dirty 859 MiB; the working
    # set W = 64 MiB caps it. Round 1 sends W in W / B = 0.537 s, dirtying min(53.7 MiB, W) =
    # 53.7 MiB; that is above 0.3 B = 37.5 MB, so round 2 sends it, dirtying 100 MiB/s x 0.45 s
    # = 45.0 MiB... the rounds shrink by rho = D / B = 0.839 until one fits in 300 ms.
    m, b, d, w = GIB, GBIT, 100 * MIB, 64 * MIB
    rho = d / b
    v = [m, w]
    while v[-1] * rho > 0.3 * b:
        v.append(v[-1] * rho)
    stop = v[-1] * rho
    f = fabric(PURE, [m], [d], wws=[w])
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    assert done.rounds == len(v)
    assert done.ended_s == pytest.approx((sum(v) + stop) / b)
    assert done.downtime_s == pytest.approx(stop / b)


def test_a_vm_that_dirties_faster_than_the_link_never_converges() -> None:
    # D >= B: every round finds at least as much dirty as it sent (up to the working set), so
    # the remainder never fits in 300 ms. The round cap (30) then forces stop-and-copy: the VM
    # is paused while its whole working set goes over, W / B.
    m, b, w = GIB, GBIT, 512 * MIB
    params = replace(PURE, max_rounds=30)
    f = fabric(params, [m], [200 * MIB], wws=[w])
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    assert done.outcome == "forced"
    assert done.rounds == 30
    assert done.downtime_s == pytest.approx(w / b)
    assert done.ended_s == pytest.approx((m + 29 * w) / b + w / b)

    aborted = fabric(replace(params, on_no_convergence="abort"), [m], [200 * MIB], wws=[w])
    aborted.request(0, 0, 1, 0.0, "test")
    (gave_up,) = aborted.run_alone()
    assert gave_up.outcome == "aborted" and gave_up.downtime_s == 0.0
    assert gave_up.ended_s == pytest.approx((m + 29 * w) / b)


@pytest.mark.parametrize("working_set", [512 * MIB, math.inf])
def test_without_a_cap_a_migration_that_never_converges_is_never_due(working_set: float) -> None:
    # No round cap, no byte cap, no throttle: with D = 200 MiB/s > B every round after round 0
    # dirties at least what it sent (W, or D / B times more without a working set), so no round
    # ever fits in 300 ms and QEMU would copy for ever. The model says so at once instead of
    # rolling rounds without end: its next visible transition is never.
    f = fabric(PURE, [GIB], [200 * MIB], wws=[working_set])
    f.request(0, 0, 1, 0.0, "test")
    f.admit(0.0)
    f.update(0.0, np.ones(1), np.ones(1))
    f.fire(f.next_event_at())  # the setup (0 s here) is over: round 0 begins
    f.update(0.0, np.ones(1), np.ones(1))
    assert f.phase[0] == Phase.PRECOPY
    assert f.next_event_at() == math.inf
    with pytest.raises(RuntimeError, match="never converges"):
        f.run_alone()
    # With a round cap the same migration is forced after 30 rounds, as above.
    capped = fabric(replace(PURE, max_rounds=30), [GIB], [200 * MIB], wws=[working_set])
    capped.request(0, 0, 1, 0.0, "test")
    (done,) = capped.run_alone()
    assert done.outcome == "forced" and done.rounds == 30

def test_auto_converge_throttles_from_20_percent_in_10_percent_steps() -> None:
    # D = 150 MiB/s > B = 119.2 MiB/s. Each round dirties more than half of what it sent, so
    # after every second round the throttle steps: 20 %, 30 %, 40 %, ... The dirty rate is
    # D x (1 - throttle); rounds shrink once D (1 - t) < B, and it converges when a round's dirt
    # fits in 300 ms: V_(i+1) = D (1 - t) V_i / B <= 0.3 B.
    m, b, d, w = GIB, GBIT, 150 * MIB, 1024 * MIB
    params = replace(PURE, on_no_convergence="auto-converge")
    f = fabric(params, [m], [d], wws=[w])
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    # Replay the rule by hand.
    v, t, high, rounds, elapsed = m, 0.0, 0, 0, 0.0
    while True:
        took = v / b
        elapsed += took
        rounds += 1
        nxt = min(d * (1 - t) * took, w)
        if nxt <= 0.3 * b:
            break
        high = high + 1 if nxt > 0.5 * v else 0
        if high >= 2:
            t = 0.2 if t == 0 else min(t + 0.1, 0.99)
            high = 0
        v = nxt
    assert done.outcome == "completed"
    assert done.throttle == pytest.approx(t) and t >= 0.2
    assert done.rounds == rounds
    assert done.ended_s == pytest.approx(elapsed + nxt / b)


def test_two_equal_migrations_on_one_link_take_twice_as_long_as_one() -> None:
    one = fabric(PURE, [GIB], [0.0])
    one.request(0, 0, 1, 0.0, "test")
    (alone,) = one.run_alone()
    two = fabric(PURE, [GIB, GIB], [0.0, 0.0])
    two.request(0, 0, 1, 0.0, "test")
    two.request(1, 0, 1, 0.0, "test")
    shared = two.run_alone()
    assert alone.ended_s == pytest.approx(GIB / GBIT)
    assert [r.ended_s for r in shared] == pytest.approx([2 * GIB / GBIT] * 2)


def test_when_one_migration_ends_the_other_speeds_up() -> None:
    # 1 GiB and 3 GiB share a NIC: each gets B / 2 until the first ends at 2 GiB / B; the other
    # has 2 GiB left then, at B: it ends at 4 GiB / B (as if the link had carried 4 GiB alone).
    f = fabric(PURE, [GIB, 3 * GIB], [0.0, 0.0])
    f.request(0, 0, 1, 0.0, "test")
    f.request(1, 0, 1, 0.0, "test")
    ends = sorted(r.ended_s for r in f.run_alone())
    assert ends == pytest.approx([2 * GIB / GBIT, 4 * GIB / GBIT])


def test_a_vms_own_traffic_takes_its_max_min_share_of_the_nic() -> None:
    # VM 1 (not migrating) sends 50 MB/s each way on host 0's NIC; the migration of VM 0 gets
    # the rest of the 125 MB/s: the VM's flow is below the fair share (62.5 MB/s), so it keeps
    # all of it and the migration takes 75 MB/s.
    f = fabric(PURE, [GIB, GIB], [0.0, 0.0], net=[0.0, 50e6])
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    assert done.ended_s == pytest.approx(GIB / 75e6)


def test_max_bandwidth_and_the_inter_site_uplink_cap_a_migration() -> None:
    capped = fabric(replace(PURE, max_bandwidth_bytes_s=32 * MIB), [GIB], [0.0])
    capped.request(0, 0, 1, 0.0, "test")
    assert capped.run_alone()[0].ended_s == pytest.approx(GIB / (32 * MIB))
    # Hosts 0 and 1 in different sites joined by 100 Mbit/s uplinks.
    wan = fabric(PURE, [GIB], [0.0], sites=[0, 1], uplink=12.5e6)
    wan.request(0, 0, 1, 0.0, "test")
    assert wan.run_alone()[0].ended_s == pytest.approx(GIB / 12.5e6)


def test_postcopy_downtime_does_not_depend_on_ram() -> None:
    # Post-copy pauses the VM only for its device state and the resume; the pages follow.
    params = replace(PURE, model="postcopy", device_state_bytes=MIB, resume_s=0.02)
    downtimes = []
    for ram in (GIB, 16 * GIB):
        f = fabric(params, [ram], [50 * MIB])
        f.request(0, 0, 1, 0.0, "test")
        (done,) = f.run_alone()
        assert done.postcopy and done.rounds == 0
        assert done.ended_s == pytest.approx((MIB + ram) / GBIT + 0.02)
        downtimes.append(done.downtime_s)
    assert downtimes == pytest.approx([MIB / GBIT + 0.02] * 2)


def test_qemus_continuous_downtime_test_stops_within_a_round() -> None:
    # The closed form above with QEMU's test: at any moment of round i, the pending bytes are what
    # is left of it plus what was dirtied since it began, V_i - (B - D) u after u seconds. They
    # fit in the limit at u_i = (V_i - 0.3 B) / (B - D); the first round where that comes before
    # the round's own end V_i / B is cut there, and the stop-and-copy sends exactly 0.3 B.
    m, b, d = GIB, GBIT, 40 * MIB
    rho = d / b
    v = [m * rho**i for i in range(10)]
    cut = next(i for i in range(10) if (v[i] - 0.3 * b) / (b - d) < v[i] / b)
    u = (v[cut] - 0.3 * b) / (b - d)
    expected = sum(v[:cut]) / b + u + 0.3 * b / b
    f = fabric(replace(PURE, switchover_check="continuous"), [m], [d])
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    # Rounds of 1074, 360 and 121 MB; round 3 (40.6 MB) is cut after 37 ms: 3.0 MB sent, 1.5 MB
    # dirtied, and 37.5 MB = 0.3 s x 125 MB/s left for the stop-and-copy.
    assert cut == 3
    assert done.ended_s == pytest.approx(expected)
    assert done.downtime_s == pytest.approx(0.3)
    assert done.bytes == pytest.approx(sum(v[:cut]) + b * u + 0.3 * b)


def test_the_continuous_test_does_not_cut_round_0() -> None:
    # An idle VM: QEMU's estimate in round 0 counts the pages not yet scanned, so the VM pauses
    # only after all of its RAM is sent, for its device state alone (1 MiB) and the resume.
    m, b = GIB, GBIT
    params = replace(PURE, switchover_check="continuous", device_state_bytes=MIB, resume_s=0.02)
    f = fabric(params, [m], [0.0])
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    assert done.ended_s == pytest.approx((m + MIB) / b + 0.02)
    assert done.downtime_s == pytest.approx(MIB / b + 0.02)


# A guest whose 1000 MB are half zero pages, with a 40 MB tail of non-zero memory scanned after
# them; 100 MB/s of max-bandwidth, 1 GB/s of NIC for the stop-and-copy, 1 MB/s dirtied.
TAIL = replace(PURE, switchover_check="continuous", max_bandwidth_bytes_s=100e6,
               zero_page_frac=0.5, round0_tail_bytes=40e6, fresh_page_bytes_s=500e6)


def test_qemu_switches_over_inside_round_0_at_a_window_end_in_the_tail() -> None:
    # Round 0 sends 500 MB at 100 MB/s. Until the scan is past the zero pages QEMU's estimate
    # counts them, so the test cannot pass before the tail begins at 460 MB, at 4.6 s; there the
    # pending bytes are 40 MB left + 4.6 MB dirtied > 0.3 s x 100 MB/s = 30 MB. They fit once
    # 500 - 100 t + t <= 30, at t = 470 / 99 = 4.7475 s, and the test is made at the next end of
    # a 100 ms window, 4.8 s: 20 MB of round 0 are left, 4.8 MB were dirtied.
    m, nic, d = 1000e6, 1e9, 1e6
    f = fabric(TAIL, [m], [d], nic=nic)
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    first, dirtied = 500e6 - 4.8 * 100e6, 4.8 * d
    pause = (first + dirtied) / nic + first / 500e6  # 24.8 ms on the link, 40 ms for new pages
    assert done.rounds == 1
    assert done.bytes == pytest.approx(500e6 + dirtied)
    assert done.downtime_s == pytest.approx(pause)
    assert done.ended_s == pytest.approx(4.8 + pause)


def test_without_windows_the_pause_sends_exactly_the_limit() -> None:
    # The same guest tested at (almost) every moment: it pauses at t = 470 / 99 s, when the
    # pending bytes are exactly 30 MB, of which 500 - 100 t are the rest of round 0.
    m, nic, d = 1000e6, 1e9, 1e6
    t = 470 / 99
    f = fabric(replace(TAIL, rate_window_s=1e-9), [m], [d], nic=nic)
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    first = 500e6 - 100e6 * t
    assert done.downtime_s == pytest.approx(30e6 / nic + first / 500e6, rel=1e-6)
    assert done.ended_s == pytest.approx(t + done.downtime_s, rel=1e-6)


def test_without_a_tail_round_0_is_sent_whole() -> None:
    # round0_tail 0 (the default): the zero pages keep the estimate high to the end of round 0
    # (5 s); then the 5 MB dirtied fit, and the pause sends them and nothing new.
    m, nic, d = 1000e6, 1e9, 1e6
    f = fabric(replace(TAIL, round0_tail_bytes=0.0), [m], [d], nic=nic)
    f.request(0, 0, 1, 0.0, "test")
    (done,) = f.run_alone()
    assert done.downtime_s == pytest.approx(5 * d / nic)
    assert done.ended_s == pytest.approx(5.0 + 5 * d / nic)


def test_the_per_host_limit_queues_migrations() -> None:
    f = fabric(replace(PURE, max_per_host=1), [GIB, GIB], [0.0, 0.0])
    f.request(0, 0, 1, 0.0, "test")
    f.request(1, 0, 1, 0.0, "test")
    first, second = f.run_alone()
    assert first.ended_s == pytest.approx(GIB / GBIT)
    assert second.began_s == pytest.approx(GIB / GBIT)
    assert second.ended_s == pytest.approx(2 * GIB / GBIT)


@pytest.mark.parametrize("seed", range(5))
def test_at_every_step_the_rates_are_max_min_over_the_flows_then(seed: int) -> None:
    # The fabric recomputes rates only when a flow starts or ends (and leaves out links without
    # a limit); at every step its rates must equal max-min over all flows of that moment.
    rng = np.random.default_rng(seed)
    n, hosts = 40, 12
    f = fabric(replace(PURE, max_rounds=5, max_bandwidth_bytes_s=80e6), list(rng.uniform(0.2, 2, n) * GIB),
               list(rng.uniform(0, 60, n) * MIB), n_hosts=hosts, sites=[0] * 6 + [1] * 6, uplink=40e6)
    f.links.capacity[:hosts] = rng.uniform(20e6, 150e6, hosts)  # unequal NICs, out
    for vm in range(n):
        s, d = rng.choice(hosts, 2, replace=False)
        f.request(vm, int(s), int(d), 0.0, "test")
    now, steps = 0.0, 0
    f.admit(now)
    while len(f.active):
        f.update(now, np.ones(n), np.ones(n))
        flowing = f.flowing()
        if flowing.size:
            # Pre-copy under max-bandwidth; the paused copy under nothing but the links (QEMU's).
            caps = np.where(IS_PAUSED[f.phase[flowing]], np.inf, 80e6)
            full = max_min_rates(f._paths(flowing), caps, f.links.capacity)
            np.testing.assert_allclose(f.rate[flowing], full, rtol=1e-12)
        now = f.next_event_at()
        f.fire(now)
        f.admit(now)
        steps += 1
    assert steps > 2 * n


def test_a_pause_reprices_the_flows_only_when_a_cap_held_the_paused_copy(monkeypatch) -> None:
    # Two copies out of one 1 Gbit/s NIC get 62.5 MB/s each, under their 80 MB/s max-bandwidth:
    # the NIC holds them. When one pauses, its copy loses the cap (QEMU's), but the NIC still
    # holds it at the same share, so no rate can change and none is computed again. With a
    # 50 MB/s max-bandwidth the caps hold them, and the pause does change the rates.
    assign = MigrationFabric._new_rates
    priced: list[float] = []
    monkeypatch.setattr(MigrationFabric, "_new_rates",
                        lambda self: (priced.append(now), assign(self))[1])
    for cap, repriced in ((80e6, False), (50e6, True)):
        priced.clear()
        f = fabric(replace(PURE, max_bandwidth_bytes_s=cap, switchover_check="round-end"),
                   [GIB, 2 * GIB], [0.0, 0.0], n_hosts=3)
        f.request(0, 0, 1, 0.0, "test")
        f.request(1, 0, 2, 0.0, "test")
        now = 0.0
        f.admit(now)
        while f.phase[0] != Phase.STOPCOPY:
            f.update(now, np.ones(2), np.ones(2))
            now = f.next_event_at()
            f.fire(now)
        pause = now
        f.update(now, np.ones(2), np.ones(2))
        assert (pause in priced) == repriced
        share = min(cap, GBIT / 2)
        # The paused copy: the NIC's share, or with both caps gone for it, what the other leaves.
        assert f.rate[1] == pytest.approx(share)
        assert f.rate[0] == pytest.approx(share if not repriced else GBIT - share)
