"""Failure schedules: distributions by their means, renewals, correlated domains, fixed and random
instants, traces (and their errors), and the same schedule for the same seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import run_text

import vsim
from vsim.model.failures import FailureProcess, Lifetimes, failure_schedule

YEAR = 365 * 86400.0


@pytest.mark.parametrize(("distribution", "shape"), [
    ("exponential", 1.0), ("weibull", 0.7), ("weibull", 2.0), ("lognormal", 1.0), ("fixed", 1.0)])
def test_a_distribution_has_the_mean_it_is_given(distribution: str, shape: float) -> None:
    x = Lifetimes(distribution, 3600.0, shape).sample(np.random.default_rng(1), 200_000)
    # The standard error of a mean of 200,000 draws is below 1 % for these shapes.
    assert x.mean() == pytest.approx(3600.0, rel=0.02)
    assert np.all(x > 0)


def test_weibull_shape_below_one_has_more_short_lives_than_the_exponential() -> None:
    rng = np.random.default_rng(2)
    weibull = Lifetimes("weibull", 1.0, 0.5).sample(rng, 100_000)
    exponential = Lifetimes("exponential", 1.0).sample(rng, 100_000)
    # Infant mortality: more of the mass near zero for the same mean.
    assert np.mean(weibull < 0.1) > np.mean(exponential < 0.1) * 1.5


def test_renewals_count_failures_per_mean_cycle() -> None:
    # Each of 200 hosts alternates 10 d up (exponential) and 1 d down (fixed) for a year: about
    # 365 / 11 = 33.2 failures each (a renewal process), 6,636 in all.
    p = FailureProcess("hw", np.arange(200), time_to_failure=Lifetimes("exponential", 10 * 86400.0),
                       repair=Lifetimes("fixed", 86400.0))
    events = failure_schedule([p], YEAR, np.random.default_rng(3))
    assert len(events) == pytest.approx(200 * 365 / 11, rel=0.03)
    # A host never fails again before its repair.
    for host in range(200):
        times = [e.time_s for e in events if e.hosts[0] == host]
        assert np.all(np.diff(times) >= 86400.0)
    assert [e.time_s for e in events] == sorted(e.time_s for e in events)


def test_a_correlated_domain_fails_all_at_once() -> None:
    p = FailureProcess("rack", np.array([2, 3, 4]), together=True,
                       time_to_failure=Lifetimes("exponential", 30 * 86400.0), kind="domain")
    events = failure_schedule([p], YEAR, np.random.default_rng(4))
    assert events and all(e.hosts.tolist() == [2, 3, 4] and e.kind == "domain" for e in events)
    # Never repaired: one failure only.
    assert len(events) == 1 and math.isinf(events[0].repair_s)


def test_fixed_and_random_instants() -> None:
    at = FailureProcess("at", np.array([0, 1]), at=(100.0, 5000.0))
    between = FailureProcess("site", np.array([0, 1]), together=True, between=(3600.0, 7200.0),
                             kind="site")
    events = failure_schedule([at, between], 4000.0, np.random.default_rng(5))
    # Each host on its own at 100 s; 5000 s is past the end.
    assert [(e.time_s, e.hosts.tolist()) for e in events if e.process == "at"] == [
        (100.0, [0]), (100.0, [1])]
    # The site loss: one instant, uniform in [1 h, 2 h) — over many seeds its mean is 1.5 h and
    # about a ninth of them fall before this run's end at 4000 s, (4000 - 3600) / 3600.
    times = []
    for seed in range(2000):
        site = failure_schedule([between], 8000.0, np.random.default_rng(seed))
        assert len(site) == 1 and site[0].hosts.tolist() == [0, 1] and site[0].kind == "site"
        times.append(site[0].time_s)
    times = np.array(times)
    assert np.all((times >= 3600.0) & (times < 7200.0))
    assert times.mean() == pytest.approx(5400.0, rel=0.02)
    assert np.mean(times < 4000.0) == pytest.approx(400 / 3600, abs=0.03)


HA = """
name: schedule
duration: 30 d
period: 1 d
hosts:
  - {name: h, count: 6, cores: 8, core_speed: 2 GHz, ram: 32 GiB}
vms:
  - {name: v, count: 12, vcpus: 2, ram: 4 GiB}
failures:
  - {hosts: h, time_to_failure: 20 d, repair: {distribution: lognormal, mean: 8 h}}
ha: {}
"""


def test_the_same_seed_gives_the_same_failures_and_outages() -> None:
    a, b, c = run_text(HA, seed=1), run_text(HA, seed=1), run_text(HA, seed=2)
    assert a.tables["host_failures"].equals(b.tables["host_failures"])
    assert a.tables["outages"].equals(b.tables["outages"])
    assert not a.tables["host_failures"].equals(c.tables["host_failures"])


def test_replications_draw_their_own_seeds_and_the_first_is_the_plain_run() -> None:
    one = run_text(HA, seed=1)
    many = run_text(HA.replace("period: 1 d", "period: 1 d\nreplications: 4"), seed=1)
    reps = many.tables["replications"]
    assert reps["replication"].tolist() == [0, 1, 2, 3]
    assert reps["seed"].iloc[0] == 1 and reps["seed"].nunique() == 4
    first = many.tables["outages"]
    assert first[first["replication"] == 0].reset_index(drop=True).equals(
        one.tables["outages"])
    across = many.summary["availability"]["replications"]
    lost = reps["vm_hours_lost"].to_numpy()
    assert across["n"] == 4
    assert across["vm_hours_lost"]["mean"] == pytest.approx(lost.mean())
    assert across["vm_hours_lost"]["ci_low"] <= lost.mean() <= across["vm_hours_lost"]["ci_high"]


def test_a_failure_trace_is_read_from_csv(tmp_path) -> None:
    (tmp_path / "outages.csv").write_text("host,start,duration\nh-1,2 h,30 min\nh,1 d,1 h\n")
    text = HA.replace("{hosts: h, time_to_failure: 20 d, repair: {distribution: lognormal, "
                      "mean: 8 h}}", "{trace: outages.csv}")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    r = vsim.run(path)
    f = r.tables["host_failures"]
    # h-1 at 2 h for 30 min; the whole group h at 1 d: all six, h-1 long back by then.
    assert f["failed_s"].tolist() == [7200.0] + [86400.0] * 6
    assert f["down_s"].iloc[0] == pytest.approx(1800.0 + 120.0)  # repair, then boot


def test_spread_over_replications_is_a_student_t_interval() -> None:
    from vsim.metrics.availability import over_replications

    def run(hours: float, outages: int) -> dict:
        return {"vm_hours_lost": hours, "vm_outages": outages, "not_restarted": 0,
                "rto_s": {"p95": None, "max": None}, "admission": {"refused": 0}}

    spread = over_replications([run(1.0, 4), run(2.0, 4), run(3.0, 4)])
    # mean 2, sd 1, t(0.975, 2 df) = 4.302653 (tables): 2 +- 4.302653 / sqrt(3) = 2 +- 2.484138.
    hours = spread["vm_hours_lost"]
    assert (hours["n"], hours["mean"], hours["sd"]) == (3, 2.0, 1.0)
    assert hours["ci_low"] == pytest.approx(2 - 2.484138, abs=1e-6)
    assert hours["ci_high"] == pytest.approx(2 + 2.484138, abs=1e-6)
    assert spread["vm_outages"]["ci_low"] == spread["vm_outages"]["ci_high"] == 4.0  # no spread
    assert "rto_p95_s" not in spread  # undefined in every replication: left out
    ninety = over_replications([run(1.0, 4), run(2.0, 4), run(3.0, 4)], confidence=0.90)
    # t(0.95, 2 df) = 2.919986: 2 +- 2.919986 / sqrt(3) = 2 +- 1.685854.
    assert ninety["vm_hours_lost"]["ci_high"] == pytest.approx(2 + 1.685854, abs=1e-6)
