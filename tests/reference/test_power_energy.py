"""Power models and energy integrated over a run, against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import events_of, run_text

from vsim.model.power import POWER_TABLES, PowerCurves

# --- the models --------------------------------------------------------------------------------


@pytest.mark.parametrize("u", [0.0, 0.1, 0.25, 0.5, 0.73, 1.0])
def test_linear_model(u: float) -> None:
    # P = idle + (max - idle) * u with idle 100 W, max 250 W.
    curves = PowerCurves([[100.0, 250.0]], off_w=[0.0])
    assert curves.watts(np.array([u]))[0] == pytest.approx(100.0 + (250.0 - 100.0) * u)


def test_utilisation_outside_0_1_is_clipped() -> None:
    curves = PowerCurves([[100.0, 250.0]], off_w=[0.0])
    assert list(curves.watts(np.array([-0.5]))) == [100.0]
    assert list(curves.watts(np.array([1.5]))) == [250.0]


def test_specpower_table_interpolation() -> None:
    # HP ProLiant ML110 G4 (CloudSim's PowerModelSpecPowerHpProLiantMl110G4): watts at 0, 10, ...,
    # 100 % load. At 35 % the load lies halfway between the 30 % point (96 W) and the 40 % point
    # (99.5 W): 96 + (99.5 - 96) * (35 - 30) / 10.
    table = POWER_TABLES["hp-proliant-ml110-g4"]
    assert (table[3], table[4]) == (96.0, 99.5)
    curves = PowerCurves([table], off_w=[0.0])
    expected = 96 + (99.5 - 96) * 0.5
    assert curves.watts(np.array([0.35]))[0] == pytest.approx(expected)
    # The table's own points are hit exactly, ends included.
    points = curves.watts(np.linspace(0.0, 1.0, 11))
    assert points == pytest.approx(table)


def test_specpower_g5_at_a_table_point_and_between() -> None:
    curves = PowerCurves([POWER_TABLES["hp-proliant-ml110-g5"]], off_w=[0.0])
    # 0 % -> 93.7 W; 95 % halfway between 90 % (133 W) and 100 % (135 W): 133 + (135 - 133) / 2.
    assert curves.watts(np.array([0.0, 0.95])) == pytest.approx([93.7, 133 + (135 - 133) / 2])


def test_curves_of_different_lengths_in_one_call() -> None:
    # Host 0 linear 100-200 W, host 1 on a three-point curve (50 %: 150 W), host 2 like host 0.
    curves = PowerCurves([[100.0, 200.0], [120.0, 150.0, 300.0]], off_w=[0.0, 5.0],
                         of_host=np.array([0, 1, 0]))
    watts = curves.watts(np.array([0.5, 0.75, 0.2]))
    # host 1 at 75 %: halfway along the second segment, 150 + (300 - 150) * 0.5.
    assert watts == pytest.approx([100 + 100 * 0.5, 150 + (300 - 150) * 0.5, 100 + 100 * 0.2])
    assert curves.idle_w.tolist() == [100.0, 120.0, 100.0]
    assert curves.max_w.tolist() == [200.0, 300.0, 200.0]
    assert curves.off_w.tolist() == [0.0, 5.0, 0.0]


def test_a_curve_needs_two_points() -> None:
    with pytest.raises(ValueError, match="two points"):
        PowerCurves([[100.0]], off_w=[0.0])


# --- energy of runs ----------------------------------------------------------------------------

HALF_HOST = """
    name: energy
    duration: 1 h
    period: 15 min
    hosts:
      - {name: h, cores: 2, core_speed: 1 GHz, ram: 8 GiB, power: {idle: 100 W, max: 200 W}}
    vms:
      - {name: v, count: 1, vcpus: 1, ram: 1 GiB, workload: busy}
    workloads:
      busy: {kind: constant, level: 100%}
"""


def test_energy_of_one_hour_at_half_load() -> None:
    # One 1-vCPU VM busy on a 2-core host: utilisation 1/2, P = 100 + (200 - 100) * 0.5 W, 3600 s.
    result = run_text(HALF_HOST)
    expected = (100 + 100 * 0.5) * 3600
    assert result.summary["energy_j"] == pytest.approx(expected, rel=1e-12)
    assert result.summary["energy_kwh"] == pytest.approx(expected / 3.6e6, rel=1e-12)
    hosts = result.tables["hosts"]
    assert hosts["energy_j"].sum() == pytest.approx(expected, rel=1e-12)
    assert hosts["cpu_util_frac"].tolist() == pytest.approx([0.5] * 4)
    assert hosts["power_w"].tolist() == pytest.approx([150.0] * 4)
    # Every 15-minute period holds a quarter of it.
    assert hosts["energy_j"].tolist() == pytest.approx([(100 + 100 * 0.5) * 15 * 60] * 4)
    dc = result.tables["datacenter"]
    assert dc["energy_j"].sum() == pytest.approx(expected, rel=1e-12)
    assert dc["power_w"].tolist() == pytest.approx([150.0] * 4)


def test_energy_with_a_specpower_table() -> None:
    # The same half load on a host with the ML110 G4 table: 50 % is a table point, 102 W.
    text = HALF_HOST.replace("{idle: 100 W, max: 200 W}", "{spec: hp-proliant-ml110-g4}")
    result = run_text(text)
    assert result.summary["energy_j"] == pytest.approx(102.0 * 3600)


def test_energy_with_load_changing_mid_run() -> None:
    # The VM leaves after 15 min: 15 min at 150 W, then 45 min idle at 100 W (host stays on).
    text = HALF_HOST.replace("workload: busy}", "workload: busy, lifetime: 15 min}")
    result = run_text(text)
    expected = (15 * 60 * 150.0) + (45 * 60 * 100.0)
    assert result.summary["energy_j"] == pytest.approx(expected)
    assert result.tables["hosts"]["power_w"].tolist() == pytest.approx([150.0, 100, 100, 100])


def test_energy_of_a_partial_last_period() -> None:
    # 50 min with a 15 min period: three full periods and a 5-minute one, all at 150 W.
    result = run_text(HALF_HOST.replace("duration: 1 h", "duration: 50 min"))
    hosts = result.tables["hosts"]
    assert hosts["time_s"].tolist() == [0.0, 900.0, 1800.0, 2700.0]
    assert hosts["energy_j"].tolist() == pytest.approx([150.0 * 900] * 3 + [150.0 * 300])
    assert result.summary["energy_j"] == pytest.approx(150.0 * 50 * 60)


IDLE_OFF = """
    name: idle-off
    duration: 2 h
    period: 10 min
    hosts:
      - name: h
        cores: 2
        core_speed: 1 GHz
        ram: 8 GiB
        power: {idle: 100 W, max: 200 W}
    vms:
      - {name: v, count: 1, vcpus: 2, ram: 1 GiB, workload: half, lifetime: 1 h}
    workloads:
      half: {kind: constant, level: 50%}
    power_management: {idle_off_after: 15 min}
"""


def test_an_idle_host_switched_off_stops_drawing_power() -> None:
    # 1 h at half load (150 W), the host then empty and on for 15 min (100 W), then off (0 W).
    result = run_text(IDLE_OFF)
    expected = (60 * 60 * 150.0) + (15 * 60 * 100.0) + (45 * 60 * 0.0)
    assert result.summary["energy_j"] == pytest.approx(expected)
    assert events_of(result, "host_off") == [(3600.0 + 15 * 60, "h", "idle")]
    hosts = result.tables["hosts"]
    # Periods 0..5 on; period 6 [3600, 4200) on; period 7 [4200, 4800) on for 5 min; then off.
    assert hosts["on_frac"].tolist() == pytest.approx([1.0] * 7 + [5 / 10] + [0.0] * 4)
    assert hosts["power_w"].tolist() == pytest.approx(
        [150.0] * 6 + [100.0] + [100.0 * 5 / 10] + [0.0] * 4)
    assert result.summary["hosts_on_mean"] == pytest.approx((3600 + 900) / 7200)


def test_off_power_is_drawn_while_off() -> None:
    # The same, with 'off: 8 W' (standby): the last 45 min draw 8 W.
    text = IDLE_OFF.replace("{idle: 100 W, max: 200 W}", "{idle: 100 W, max: 200 W, 'off': 8 W}")
    result = run_text(text)
    expected = (60 * 60 * 150.0) + (15 * 60 * 100.0) + (45 * 60 * 8.0)
    assert result.summary["energy_j"] == pytest.approx(expected)


def test_a_host_empty_from_the_start_goes_off_after_the_delay() -> None:
    # First fit puts the idle VM on 'a', which stays on at idle power all hour; 'b' is empty
    # from the start and goes off after 20 min.
    text = """
        name: empty
        duration: 1 h
        hosts:
          - {name: a, cores: 2, core_speed: 1 GHz, ram: 8 GiB, power: {idle: 100 W, max: 200 W}}
          - {name: b, cores: 2, core_speed: 1 GHz, ram: 8 GiB, power: {idle: 100 W, max: 200 W}}
        vms:
          - {name: v, count: 1, ram: 1 GiB}
        power_management: {idle_off_after: 20 min}
    """
    result = run_text(text)
    assert result.summary["energy_j"] == pytest.approx((60 * 60 * 100.0) + (20 * 60 * 100.0))
    assert events_of(result, "host_off") == [(1200.0, "b", "idle")]


def test_a_datacenter_without_vms_runs() -> None:
    text = """
        name: novms
        duration: 1 h
        hosts:
          - {name: h, cores: 2, core_speed: 1 GHz, ram: 8 GiB, power: {idle: 100 W, max: 200 W}}
    """
    result = run_text(text)
    assert result.summary["energy_j"] == pytest.approx(3600 * 100.0)


def test_hosts_stay_on_without_idle_off() -> None:
    result = run_text(IDLE_OFF.replace("power_management: {idle_off_after: 15 min}", ""))
    assert result.summary["energy_j"] == pytest.approx((3600 * 150.0) + (3600 * 100.0))
    assert events_of(result, "host_off") == []


def test_booting_hosts_draw_idle_power() -> None:
    # The only host starts off; the VM arriving at 0 switches it on. It boots for 10 min at idle
    # power (100 W), then runs the VM at half load (150 W) for the remaining 50 min.
    text = """
        name: boot
        duration: 1 h
        period: 10 min
        hosts:
          - name: h
            cores: 2
            core_speed: 1 GHz
            ram: 8 GiB
            power: {idle: 100 W, max: 200 W}
            initially: off
            boot_time: 10 min
        vms:
          - {name: v, count: 1, vcpus: 1, ram: 1 GiB, workload: busy}
        workloads:
          busy: {kind: constant, level: 100%}
    """
    result = run_text(text)
    expected = (10 * 60 * 100.0) + (50 * 60 * 150.0)
    assert result.summary["energy_j"] == pytest.approx(expected)
    assert events_of(result, "host_power_on") == [(0.0, "h", "capacity needed")]
    assert events_of(result, "host_on") == [(600.0, "h", "")]
    assert events_of(result, "vm_start") == [(600.0, "v", "h")]
    hosts = result.tables["hosts"]
    # While booting a host is not 'on' (on_frac 0) but draws idle power.
    assert hosts["on_frac"].tolist() == pytest.approx([0.0] + [1.0] * 5)
    assert hosts["power_w"].tolist() == pytest.approx([100.0] + [150.0] * 5)


def test_hosts_off_all_run_draw_their_off_power() -> None:
    # 'a' holds the (idle) VM at 100 W; 'b' starts off and is never needed: 3 W all hour.
    text = """
        name: standby
        duration: 1 h
        hosts:
          - {name: a, cores: 2, core_speed: 1 GHz, ram: 8 GiB, power: {idle: 100 W, max: 200 W}}
          - {name: b, cores: 2, core_speed: 1 GHz, ram: 8 GiB, initially: off,
             power: {idle: 100 W, max: 200 W, 'off': 3 W}}
        vms:
          - {name: v, count: 1, ram: 1 GiB}
    """
    result = run_text(text)
    assert result.summary["energy_j"] == pytest.approx((3600 * 100.0) + (3600 * 3.0))
    assert result.summary["hosts_on_mean"] == pytest.approx(1.0)
    assert events_of(result, "host_power_on") == []


def test_energy_of_two_hosts_adds_up() -> None:
    # Host a: 2 cores, one busy 1-vCPU VM -> 150 W. Host b: 4 cores (120-320 W), 3 busy vCPUs
    # of 1 GHz on 4 -> u = 3/4, 120 + 200 * 0.75 W. First fit puts 'x' on a, 'y' on b.
    text = """
        name: two
        duration: 30 min
        hosts:
          - {name: a, cores: 2, core_speed: 1 GHz, ram: 4 GiB, power: {idle: 100 W, max: 200 W}}
          - {name: b, cores: 4, core_speed: 1 GHz, ram: 8 GiB, power: {idle: 120 W, max: 320 W}}
        vms:
          - {name: x, count: 1, vcpus: 1, ram: 3 GiB, workload: busy}
          - {name: y, count: 1, vcpus: 3, ram: 3 GiB, workload: busy}
        workloads:
          busy: {kind: constant, level: 100%}
    """
    result = run_text(text)
    expected = (30 * 60) * (100 + 100 * 0.5) + (30 * 60) * (120 + 200 * 0.75)
    assert result.summary["energy_j"] == pytest.approx(expected)
    per_host = result.tables["hosts"].groupby("host")["energy_j"].sum()
    assert per_host.tolist() == pytest.approx([1800 * 150.0, 1800 * 270.0])


def test_off_power_written_plainly() -> None:
    text = IDLE_OFF.replace("{idle: 100 W, max: 200 W}", "{idle: 100 W, max: 200 W, off: 8 W}")
    result = run_text(text)
    assert result.summary["energy_j"] == pytest.approx(
        (60 * 60 * 150.0) + (15 * 60 * 100.0) + (45 * 60 * 8.0))
