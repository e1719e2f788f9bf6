"""Replication to a DR site: recovery points and transfers worked out by hand, and invariants on
random configurations."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsim.model.network import Links
from vsim.model.replication import Replication

MB = 1e6
TEN_GBE = 1.25e9  # bytes/s


def two_sites(uplink: float, nics: tuple[float, ...] = (TEN_GBE, TEN_GBE)) -> Links:
    """The protected hosts at site 0, one host at the DR site 1; fabrics never limit."""
    return Links(np.array([*nics, TEN_GBE]), np.array([0] * len(nics) + [1]),
                 np.array([math.inf, math.inf]), np.array([uplink, uplink]))


def uplink_out(links: Links, site: int) -> int:
    return 2 * links.n_hosts + links.n_sites + site


def run(rep: Replication, end: float, watch: Callable[[float], None] | None = None) -> None:
    """The simulation's loop: fire every event up to ``end``."""
    while (t := rep.next_event_at()) <= end:
        rep.fire(t)
        if watch is not None:
            watch(t)


def completions(rep: Replication, vm: int, end: float) -> list[float]:
    """Run to ``end`` and return the times at which ``vm`` completed a cycle."""
    seen: list[float] = []
    last = [int(rep.cycles[vm])]

    def watch(t: float) -> None:
        if rep.cycles[vm] > last[0]:
            seen.append(t)
            last[0] = int(rep.cycles[vm])

    run(rep, end, watch)
    return seen


def test_to_site_paths() -> None:
    links = two_sites(125 * MB)  # H = 3, S = 2: fabrics 6, 7; uplinks out 8, 9; in 10, 11
    rows = links.to_site(np.array([1, 1]), np.array([1, 0]))
    assert rows.tolist() == [[1, 6, 8, 11, 7, -1], [1, 6, -1, -1, -1, -1]]


def test_idle_link_ships_each_cycle_in_size_over_bandwidth() -> None:
    # w = 1 MB/s, T = 300 s: each cycle ships 300 MB over a 1 Gbit/s (125 MB/s) uplink, in
    # 300e6 / 125e6 = 2.4 s. Cycle k starts at 300k and completes at 300k + 2.4.
    links = two_sites(125 * MB)
    rep = Replication(links, np.array([1]), np.array([300.0]), np.array([1 * MB]))
    rep.start(np.array([0]), np.array([0]), 0.0)
    assert rep.recovery_point(np.array([0]), 0.0)[0] == 0.0  # seeded
    assert completions(rep, 0, 1000.0) == pytest.approx([302.4, 602.4, 902.4])
    vm = np.array([0])
    # Right after a completion the copy is as of the snapshot 2.4 s before.
    assert rep.data_loss_s(vm, 902.4)[0] == pytest.approx(2.4)
    # Just before one, it is as of the previous snapshot: T + 2.4 s (the first: 302.4 - 0).
    assert rep.worst_data_loss_s(vm, 1000.0)[0] == pytest.approx(302.4)
    assert rep.recovery_point(vm, 1000.0)[0] == pytest.approx(900.0)
    assert rep.cycles[0] == 3
    assert rep.bytes_sent[0] == pytest.approx(900 * MB)
    # The window rises from 0 to 302.4 over the first 302.4 s, then from 2.4 to 302.4 over each
    # of the next two 300 s stretches: trapezoids.
    area = 302.4**2 / 2 + 2 * 300 * (2.4 + 302.4) / 2
    assert rep.mean_data_loss_s(vm, 902.4)[0] == pytest.approx(area / 902.4)


def test_saturated_link_makes_the_window_grow_without_bound() -> None:
    # Two VMs writing 10 MB/s each (20 MB/s) with T = 60 s over a 15 MB/s uplink: 7.5 MB/s each.
    # Cycle 1 at 60 s ships 600 MB each: 80 s, done at 140. The cycle due at 120 starts at 140
    # with 10 * 80 = 800 MB: 800 / 7.5 = 106.67 s, done at 246.67. Each transfer carries what was
    # written during the previous one, so lasts 10 / 7.5 = 4/3 times as long:
    # c_n = 60 + 80 * (1 + 4/3 + ... + (4/3)^(n-1)) = 60 + 240 * ((4/3)^n - 1).
    links = two_sites(15 * MB)
    rep = Replication(links, np.array([1, 1]), np.array([60.0, 60.0]), np.array([10 * MB] * 2))
    rep.start(np.array([0, 1]), np.array([0, 1]), 0.0)
    done = completions(rep, 0, 3600.0)
    expect = [60 + 240 * ((4 / 3) ** n - 1) for n in range(1, 10)]
    assert expect[:3] == pytest.approx([140.0, 246.667, 388.889], abs=1e-3)
    assert done == pytest.approx(expect)
    assert rep.cycles.tolist() == [9, 9]
    assert rep.link_bytes_s()[uplink_out(links, 0)] == pytest.approx(15 * MB)
    # Cycle n snapshots at c_(n-1), when cycle n-1 completes (c_0 = 60). At 1 h the 9th has
    # completed (c_9 = 3016.4) and the 10th is running, so the copy is as of c_8: the window is
    # 3600 - c_8 = 1382.7 s. The worst was just before c_9, with the copy as of c_7.
    vms = np.array([0, 1])
    assert rep.recovery_point(vms, 3600.0) == pytest.approx([expect[7]] * 2)
    assert rep.data_loss_s(vms, 3600.0) == pytest.approx([3600.0 - expect[7]] * 2)
    worst = rep.worst_data_loss_s(vms, 3600.0)
    assert worst == pytest.approx([expect[8] - expect[6]] * 2)
    assert np.all(worst > 20 * 60)


def test_two_transfers_share_the_uplink_max_min() -> None:
    # Uplink 10 MB/s, w = 1 MB/s, T = 100 s; VM 0 on the grid 0, 100, ..., VM 1 offset by 5 s.
    # At 100, VM 0 ships 100 MB alone at 10 MB/s (50 MB by 105). At 105 VM 1 starts 100 MB and
    # each gets 5 MB/s: VM 0's last 50 MB take 10 s, done at 115 instead of 110. VM 1 has 50 MB
    # by then and finishes the rest alone at 10 MB/s: 120 instead of 115.
    links = two_sites(10 * MB)
    both = Replication(links, np.array([1, 1]), np.array([100.0, 100.0]),
                       np.array([1 * MB, 1 * MB]), offset_s=np.array([0.0, 5.0]))
    both.start(np.array([0, 1]), np.array([0, 1]), 0.0)
    run(both, 99.0)  # VM 1's first cycle at 5 s (5 MB) is over by 5.5 s
    assert both.rate_bytes_s[0] == 0.0
    assert completions(both, 0, 119.0) == pytest.approx([115.0])
    assert completions(both, 1, 150.0) == pytest.approx([120.0])
    alone = Replication(links, np.array([1, -1]), np.array([100.0, 100.0]),
                        np.array([1 * MB, 1 * MB]))
    alone.start(np.array([0, 1]), np.array([0, 1]), 0.0)
    assert completions(alone, 0, 150.0) == pytest.approx([110.0])
    assert np.isnan(alone.recovery_point(np.array([1]), 150.0)[0])  # never protected


def test_background_load_leaves_the_rest_of_the_uplink() -> None:
    # The idle-link VM with 25 MB/s of other traffic on the uplink: 300 MB at 100 MB/s = 3 s.
    links = two_sites(125 * MB)
    rep = Replication(links, np.array([1]), np.array([300.0]), np.array([1 * MB]))
    rep.start(np.array([0]), np.array([0]), 0.0)
    bg = np.zeros(len(links.capacity))
    bg[uplink_out(links, 0)] = 25 * MB
    rep.set_background(bg, 0.0)
    assert completions(rep, 0, 400.0) == pytest.approx([303.0])
    # Cycle 2 at 600; at 601 the background rises to 62.5 MB/s: 100 MB went in the first second,
    # the other 200 MB take 200 / 62.5 = 3.2 s, done at 604.2.
    run(rep, 601.0)
    bg[uplink_out(links, 0)] = 62.5 * MB
    rep.set_background(bg, 601.0)
    assert completions(rep, 0, 700.0) == pytest.approx([604.2])
    # Background over the capacity leaves nothing, never less: cycle 3 stalls, until it is gone.
    run(rep, 900.0)
    bg[uplink_out(links, 0)] = 200 * MB
    rep.set_background(bg, 900.0)
    assert rep.next_event_at() == math.inf
    assert rep.link_bytes_s()[uplink_out(links, 0)] == 0.0
    rep.set_background(np.zeros(len(links.capacity)), 1000.0)
    assert completions(rep, 0, 1100.0) == pytest.approx([1002.4])


def test_synchronous_replication_loses_nothing_and_reports_the_shortfall() -> None:
    # Two synchronous VMs writing 50 and 100 MB/s over a 125 MB/s uplink: max-min gives the first
    # its 50 (below the fair 62.5) and the second the remaining 75, 25 MB/s short.
    links = two_sites(125 * MB)
    rep = Replication(links, np.array([1, 1, 1]), np.array([0.0, 0.0, 60.0]),
                      np.array([50 * MB, 100 * MB, 1 * MB]))
    vms = np.array([0, 1])
    rep.start(vms, np.array([0, 1]), 0.0)
    assert rep.rate_bytes_s[:2] == pytest.approx([50 * MB, 75 * MB])
    assert rep.shortfall_bytes_s[:2] == pytest.approx([0.0, 25 * MB])
    run(rep, 10.0)
    rep.set_write_rate(np.array([1]), np.array([60 * MB]), 10.0)  # now both fit: 50 + 60
    assert rep.shortfall_bytes_s.tolist() == [0.0, 0.0, 0.0]
    assert rep.bytes_sent[:2] == pytest.approx([500 * MB, 750 * MB])
    assert rep.shortfall_bytes[1] == pytest.approx(250 * MB)
    for now in (10.0, 20.0, 59.0):
        assert rep.data_loss_s(vms, now).tolist() == [0.0, 0.0]
        assert rep.recovery_point(vms, now).tolist() == [now, now]
    # An async VM seeded at 10 ships 60 MB at 70 and competes as an equal: the fair share
    # 125 / 3 = 41.67 MB/s is below both synchronous caps, so all three get it (60 MB take
    # 1.44 s) and the synchronous VMs fall 8.33 and 18.33 MB/s short meanwhile.
    rep.start(np.array([2]), np.array([0]), 10.0)
    run(rep, 70.0)
    assert rep.rate_bytes_s == pytest.approx([125 * MB / 3] * 3)
    assert rep.shortfall_bytes_s == pytest.approx([50 * MB - 125 * MB / 3,
                                                   60 * MB - 125 * MB / 3, 0.0])
    assert completions(rep, 2, 75.0) == pytest.approx([70.0 + 60 / (125 / 3)])
    assert rep.shortfall_bytes_s.tolist() == [0.0, 0.0, 0.0]
    assert rep.worst_data_loss_s(vms, 75.0).tolist() == [0.0, 0.0]
    assert rep.mean_data_loss_s(vms, 75.0).tolist() == [0.0, 0.0]
    rep.stop(np.array([0]), 80.0)
    assert rep.recovery_point(np.array([0]), 200.0)[0] == 80.0


def test_stop_drops_the_transfer_and_freezes_the_recovery_point() -> None:
    # Uplink 10 MB/s, two VMs with w = 1 MB/s, T = 50 s. At 50 both ship 50 MB at 5 MB/s: done at
    # 60 (recovery point 50). At 100 again; at 104 VM 1's host fails with 20 MB each sent. VM 0
    # then has 30 MB left alone at 10 MB/s: done at 107 instead of 110.
    links = two_sites(10 * MB)
    rep = Replication(links, np.array([1, 1]), np.array([50.0, 50.0]), np.array([1 * MB] * 2))
    rep.start(np.array([0, 1]), np.array([0, 1]), 0.0)
    run(rep, 104.0)
    rep.stop(np.array([1]), 104.0)
    assert completions(rep, 0, 108.0) == pytest.approx([107.0])
    assert rep.recovery_point(np.array([1]), 140.0)[0] == pytest.approx(50.0)
    assert rep.data_loss_s(np.array([1]), 140.0)[0] == pytest.approx(54.0)  # frozen at the stop
    assert rep.cycles.tolist() == [2, 1]
    assert rep.bytes_sent[1] == pytest.approx(70 * MB)  # 50 + 20 that went over and are lost


def test_restart_resumes_with_everything_written_since_the_recovery_point() -> None:
    # As above, but VM 1 comes back at 200 exactly, with VM 0's 50 MB cycle: 5 MB/s each, VM 0
    # done at 210 with 50 MB; VM 1 has 4 of its 54 MB left, alone at 10 MB/s: done at 210.4.
    links = two_sites(10 * MB)
    rep = Replication(links, np.array([1, 1]), np.array([50.0, 50.0]), np.array([1 * MB] * 2))
    rep.start(np.array([0, 1]), np.array([0, 1]), 0.0)
    run(rep, 104.0)
    rep.stop(np.array([1]), 104.0)
    run(rep, 199.9)
    rep.start(np.array([1]), np.array([1]), 200.0)
    assert completions(rep, 1, 249.0) == pytest.approx([210.4])
    assert rep.recovery_point(np.array([1]), 249.0)[0] == pytest.approx(200.0)


def test_move_to_another_host_changes_the_limiting_nic() -> None:
    # Host 0 has a 10 MB/s NIC, host 1 a 10 GbE one, the uplink 125 MB/s. The 300 MB cycle at
    # 300 runs at 10 MB/s; at 310 (100 MB sent) the VM moves to host 1: 200 MB at 125 MB/s take
    # 1.6 s, done at 311.6 instead of 330.
    links = two_sites(125 * MB, nics=(10 * MB, TEN_GBE))
    rep = Replication(links, np.array([1]), np.array([300.0]), np.array([1 * MB]))
    rep.start(np.array([0]), np.array([0]), 0.0)
    run(rep, 310.0)
    assert rep.link_bytes_s()[0] == pytest.approx(10 * MB)
    rep.move(np.array([0]), np.array([1]), 310.0)
    load = rep.link_bytes_s()
    assert load[0] == 0.0
    assert load[1] == pytest.approx(125 * MB)
    assert completions(rep, 0, 400.0) == pytest.approx([311.6])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_recovery_points_are_sane_on_random_configurations(data: st.DataObject) -> None:
    rate = st.floats(1 * MB, 100 * MB)
    n_hosts = data.draw(st.integers(1, 3))
    links = Links(np.array(data.draw(st.lists(rate, min_size=n_hosts, max_size=n_hosts))),
                  np.array(data.draw(st.lists(st.integers(0, 1), min_size=n_hosts,
                                              max_size=n_hosts))),
                  np.array(data.draw(st.lists(st.one_of(st.just(math.inf), rate), min_size=2,
                                              max_size=2))),
                  np.array(data.draw(st.lists(rate, min_size=2, max_size=2))))
    n = data.draw(st.integers(1, 5))

    def per_vm(strategy: st.SearchStrategy[float]) -> np.ndarray:
        return np.array(data.draw(st.lists(strategy, min_size=n, max_size=n)))

    rep = Replication(links, per_vm(st.sampled_from([-1, 0, 1])),
                      per_vm(st.one_of(st.just(0.0), st.floats(20.0, 200.0))),
                      per_vm(st.floats(0.0, 50 * MB)),
                      max_rate=per_vm(st.one_of(st.just(math.inf), rate)),
                      offset_s=per_vm(st.floats(0.0, 100.0)))
    everyone = np.arange(n)
    host = st.integers(0, n_hosts - 1)
    rep.start(everyone, per_vm(host), 0.0)
    background = np.zeros(len(links.capacity))
    last = np.full(n, -math.inf)

    def check(now: float) -> None:
        rp = rep.recovery_point(everyone, now)
        known = ~np.isnan(rp)
        assert np.all(rp[known] <= now + 1e-9)
        assert np.all(rp[known] >= last[known] - 1e-9), "a recovery point went backwards"
        last[known] = rp[known]
        loss = rep.data_loss_s(everyone, now)
        assert np.all(loss[known] >= -1e-9)
        assert np.all(rep.worst_data_loss_s(everyone, now)[known] >= loss[known] - 1e-9)
        assert np.all(rep.mean_data_loss_s(everyone, now)[known] >= -1e-9)
        room = np.maximum(links.capacity - background, 0.0)
        assert np.all(rep.link_bytes_s() <= room * (1 + 1e-9) + 1e-6)

    now = 0.0
    for _ in range(data.draw(st.integers(1, 8))):
        now += data.draw(st.floats(0.0, 200.0))
        run(rep, now, check)
        check(now)
        vm = np.array([data.draw(st.integers(0, n - 1))])
        op = data.draw(st.sampled_from(["move", "stop", "start", "write", "background"]))
        if op == "move":
            rep.move(vm, np.array([data.draw(host)]), now)
        elif op == "stop":
            rep.stop(vm, now)
        elif op == "start" and not rep.running[vm[0]]:
            rep.start(vm, np.array([data.draw(host)]), now)
        elif op == "write":
            rep.set_write_rate(vm, np.array([data.draw(st.floats(0.0, 50 * MB))]), now)
        elif op == "background":
            background = np.array(data.draw(st.lists(st.floats(0.0, 150 * MB),
                                                     min_size=len(background),
                                                     max_size=len(background))))
            rep.set_background(background, now)
        check(now)
