"""Readers of public trace formats (Bitbrains GWA-T-12, Azure V1, Alibaba 2018) on the samples in
workloads/samples/, their errors, and scenarios that run on them.

Every expected value is derived by hand from the sample rows quoted next to it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import vsim
from vsim.errors import ScenarioError
from vsim.traces import DemandTable, read_alibaba, read_alibaba_machines, read_azure, read_bitbrains

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "workloads" / "samples"
BITBRAINS = SAMPLES / "bitbrains" / "fastStorage"
AZURE = SAMPLES / "azure"
ALIBABA = SAMPLES / "alibaba"
KIB, GIB = 1024.0, 2.0**30


# --- the table's optional columns ------------------------------------------------------------


def test_extra_columns_default_to_none_and_follow_select():
    plain = DemandTable(step_s=300.0, cpu=np.zeros((2, 3)), names=("a", "b"), source="t")
    assert plain.memory is None and plain.vcpus is None and plain.net_tx is None
    full = DemandTable(step_s=300.0, cpu=np.zeros((2, 3)), names=("a", "b"), source="t",
                       memory=np.full((2, 3), 0.5), disk_read=np.ones((2, 3)),
                       vcpus=[2, 4], ram_bytes=[1e9, 2e9])
    picked = full.select(np.array([1]))
    assert picked.vcpus.tolist() == [4] and picked.ram_bytes.tolist() == [2e9]
    assert picked.memory.shape == (1, 3) and picked.disk_write is None
    assert "mem_util_frac" in full.to_frame().columns


@pytest.mark.parametrize("bad", [
    {"memory": np.zeros((2, 4))}, {"net_rx": np.zeros(3)}, {"vcpus": [1, 2, 3]},
    {"ram_bytes": [[1.0, 2.0]]}, {"memory": np.full((2, 3), 1.5)},
])
def test_extra_columns_of_the_wrong_shape_are_refused(bad):
    with pytest.raises(ValueError):
        DemandTable(step_s=300.0, cpu=np.zeros((2, 3)), names=("a", "b"), source="t", **bad)


# --- Bitbrains GWA-T-12 ----------------------------------------------------------------------


def test_bitbrains_sample():
    t = read_bitbrains(BITBRAINS)
    assert t.names == ("1", "2", "3") and t.step_s == 300.0
    # 2 h of readings from 1376314846; the grid starts at 1376314800 (floored to 300 s): 24 steps.
    assert t.n_samples == 24
    # 1.csv, third data row: 1376315446; 4; 11703.99824; 1755.599736; 15; 67108864; 17825792;
    #                        200; 50; 2.5; 1   -> step (1376315446 - 1376314800) // 300 = 2
    assert t.cpu[0, 2] == pytest.approx(15 / 100)
    assert t.memory[0, 2] == pytest.approx(17825792 / 67108864)
    assert t.disk_read[0, 2] == pytest.approx(200 * KIB)
    assert t.disk_write[0, 2] == pytest.approx(50 * KIB)
    assert t.net_rx[0, 2] == pytest.approx(2.5 * KIB)
    assert t.net_tx[0, 2] == pytest.approx(1 * KIB)
    # Sizes: CPU cores 4, 2, 1; Memory capacity provisioned 67108864, 8388608, 2097152 KB.
    assert t.vcpus.tolist() == [4, 2, 1]
    assert t.ram_bytes.tolist() == [64 * GIB, 8 * GIB, 2 * GIB]
    # 2.csv: no reading at 1376316400 (step 5): the step holds step 4's 40 % (row 1376316100).
    assert t.cpu[1, 4] == pytest.approx(40 / 100) and t.cpu[1, 5] == pytest.approx(40 / 100)
    # 2.csv row 1376317000 (step 7) says 104.2 %: clipped to 1.
    assert t.cpu[1, 7] == 1.0
    # 3.csv: readings 1376319046 (56 %) and 1376319166 (90 %) share step 14: their mean.
    assert t.cpu[2, 14] == pytest.approx((56 + 90) / 2 / 100)
    # Arrivals: 1.csv and 2.csv in step 0; 3.csv at 1376318446, step 12, 3600 s.
    assert t.start_s.tolist() == [0.0, 0.0, 3600.0]
    assert t.cpu[2, :12].tolist() == [0.0] * 12
    # 2.csv's last reading 1376320000 is in step 17: it leaves at 18 x 300 = 5400 s; the others
    # have a reading in the last step and stay.
    assert t.lifetime_s.tolist() == [np.inf, 18 * 300.0, np.inf]


def test_bitbrains_list_of_files_and_a_coarser_grid():
    t = read_bitbrains([BITBRAINS / "1.csv"], step_s=600.0)
    assert t.names == ("1",) and t.n_samples == 12
    # 1.csv rows 1376314846 (10 %) and 1376315146 (12.5 %) share the first 600 s step.
    assert t.cpu[0, 0] == pytest.approx((10 + 12.5) / 2 / 100)


# --- Azure V1 --------------------------------------------------------------------------------


def test_azure_sample():
    t = read_azure(AZURE)
    assert t.n_series == 4 and t.step_s == 300.0
    assert t.names[0].startswith("evNlasH3")  # vmtable.csv order
    # Readings from 0 to 10500 s: 10500 / 300 + 1 = 36 steps.
    assert t.n_samples == 36
    # vm_cpu_readings-file-1-of-2.csv: "300,evNlasH3...,6,16,11" -> avgcpu 11 at step 1.
    assert t.cpu[0, 1] == pytest.approx(11 / 100)
    # file 2: "5400,evNlasH3...,23,33,28" -> step 18.
    assert t.cpu[0, 18] == pytest.approx(28 / 100)
    # The second VM has no reading at 3000 s (step 10): it holds 2700 s's 50 %.
    assert t.cpu[1, 9] == pytest.approx(50 / 100) and t.cpu[1, 10] == pytest.approx(50 / 100)
    # vmtable: VM 3 created 3600, deleted 7200; the others 0 and 10500.
    assert t.start_s.tolist() == [0.0, 0.0, 3600.0, 0.0]
    assert t.lifetime_s.tolist() == [10500.0, 10500.0, 7200.0 - 3600.0, 10500.0]
    assert t.cpu[2, 11] == 0.0 and t.cpu[2, 12] == pytest.approx(80.5 / 100)
    # vmcorecount 2, 4, 1, >24 (next power of two: 32); vmmemory 4, 8, 1.75, >64 (128) GB.
    assert t.vcpus.tolist() == [2, 4, 1, 32]
    assert t.ram_bytes.tolist() == [4 * GIB, 8 * GIB, 1.75 * GIB, 128 * GIB]
    assert t.memory is None


def test_azure_max_vms_reads_the_first_vms_only():
    t = read_azure(AZURE, max_vms=2)
    assert t.n_series == 2 and t.vcpus.tolist() == [2, 4]


# --- Alibaba 2018 ----------------------------------------------------------------------------


def test_alibaba_sample():
    t = read_alibaba(ALIBABA)
    assert t.names == ("c_1", "c_2", "c_10")  # numbers in order, not as text
    assert t.n_samples == 24  # readings up to 7185 s: 7185 // 300 + 1
    # c_1's rows in [0, 300): 0 -> 20 %, 75 -> 30 %, 150 -> 40 %, 225 -> 50 %; memory 60, 61, 60, 61.
    assert t.cpu[0, 0] == pytest.approx((20 + 30 + 40 + 50) / 4 / 100)
    assert t.memory[0, 0] == pytest.approx((60 + 61 + 60 + 61) / 4 / 100)
    # c_2's rows in [0, 300): 7 -> 10, 97 -> 11, 187 -> 12, 277 -> 13 (empty cpi etc. ignored).
    assert t.cpu[1, 0] == pytest.approx((10 + 11 + 12 + 13) / 4 / 100)
    # c_10's rows in [2100, 2400): 2130 -> 103 (clipped to 100), 2190 -> 50, 2250 -> 50,
    # 2310 -> 50, 2370 -> 50.
    assert t.cpu[2, 7] == pytest.approx((100 + 50 + 50 + 50 + 50) / 5 / 100)
    # c_10 first reads at 1830 (step 6) and last at 5370 (step 17): 1800 s, (18 - 6) x 300 s.
    assert t.start_s.tolist() == [0.0, 0.0, 1800.0]
    assert t.lifetime_s.tolist() == [np.inf, np.inf, 12 * 300.0]
    # container_meta cpu_request: c_1 400; c_2 200 then 300 (the larger); c_10 100.
    assert t.vcpus.tolist() == [4, 3, 1]
    assert t.ram_bytes is None and t.net_rx is None


def test_alibaba_first_containers_and_machines():
    t = read_alibaba(ALIBABA, step_s=600.0, vms=2)
    assert t.names == ("c_1", "c_2") and t.n_samples == 12
    m = read_alibaba_machines(ALIBABA)
    assert m.names == ("m_1", "m_2") and m.vcpus.tolist() == [96, 96]
    # m_1's rows in [300, 600): 300, 360, ..., 540, each 35 + (300 // 300) % 3 = 36 %.
    assert m.cpu[0, 1] == pytest.approx(36 / 100)
    assert m.memory[1, 0] == pytest.approx(75 / 100)


# --- bad input: one error naming the file, the line and the column ---------------------------


def _copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / src.name
    shutil.copytree(src, dest)
    return dest


def _replace_line(path: Path, number: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = new
    path.write_text("\n".join(lines) + "\n")


def test_missing_column_names_file_line_and_column(tmp_path):
    folder = _copy(BITBRAINS, tmp_path)
    # Line 4 of 1.csv loses its last two fields.
    line = (folder / "1.csv").read_text().splitlines()[3]
    _replace_line(folder / "1.csv", 4, ";\t".join(line.split(";\t")[:9]))
    with pytest.raises(ScenarioError) as err:
        read_bitbrains(folder)
    text = str(err.value)
    assert f"{folder / '1.csv'}:4:" in text
    assert "'Network received throughput [KB/s]' is missing" in text


def test_missing_column_in_the_header(tmp_path):
    folder = _copy(BITBRAINS, tmp_path)
    header = (folder / "2.csv").read_text().splitlines()[0]
    _replace_line(folder / "2.csv", 1, header.replace(";\tMemory usage [KB]", ""))
    with pytest.raises(ScenarioError, match=r"2\.csv:1: column 'Memory usage \[KB\]' is missing"):
        read_bitbrains(folder)


def test_non_numeric_value_names_its_line(tmp_path):
    folder = _copy(AZURE, tmp_path)
    readings = folder / "vm_cpu_readings-file-2-of-2.csv"
    lines = readings.read_text().splitlines()
    _replace_line(readings, 7, lines[6].rsplit(",", 1)[0] + ",high")
    with pytest.raises(ScenarioError) as err:
        read_azure(folder)
    assert f"{readings}:7: column 'avgcpu' holds 'high', not a number" in str(err.value)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_value_that_is_no_reading_names_its_line(tmp_path, value):
    # float() reads both, so only a finite number counts as a reading.
    folder = _copy(BITBRAINS, tmp_path)
    fields = (folder / "1.csv").read_text().splitlines()[2].split(";\t")
    fields[4] = value
    _replace_line(folder / "1.csv", 3, ";\t".join(fields))
    with pytest.raises(ScenarioError) as err:
        read_bitbrains(folder)
    assert f"{folder / '1.csv'}:3: column 'CPU usage [%]' holds '{value}', not a number" in str(err.value)


def test_empty_folder(tmp_path):
    for reader in (read_bitbrains, read_azure, read_alibaba):
        with pytest.raises(ScenarioError) as err:
            reader(tmp_path)
        assert str(tmp_path) in str(err.value)
    with pytest.raises(ScenarioError, match=r"holds no \.csv files"):
        read_bitbrains(tmp_path)


def test_wrong_separator(tmp_path):
    folder = _copy(ALIBABA, tmp_path)
    usage = folder / "container_usage.csv"
    usage.write_text(usage.read_text().replace(",", ";"))
    with pytest.raises(ScenarioError) as err:
        read_alibaba(folder)
    text = str(err.value)
    assert f"{usage}:1: no ',' between fields; it holds a semicolon instead" in text


def test_bitbrains_with_commas_is_refused_at_the_header(tmp_path):
    folder = _copy(BITBRAINS, tmp_path)
    path = folder / "1.csv"
    path.write_text(path.read_text().replace(";\t", ","))
    with pytest.raises(ScenarioError, match=r"1\.csv:1: the header has no ';'"):
        read_bitbrains(folder)


def test_bad_azure_size_bucket(tmp_path):
    folder = _copy(AZURE, tmp_path)
    table = folder / "vmtable.csv"
    lines = table.read_text().splitlines()
    _replace_line(table, 2, lines[1].rsplit(",", 2)[0] + ",many,8")
    with pytest.raises(ScenarioError, match=r"vmtable\.csv:2: column 'vmcorecount' holds 'many'"):
        read_azure(folder)


# --- scenarios on the samples ----------------------------------------------------------------


SCENARIO = """\
name: public-trace
duration: 2 h
period: 5 min
hosts:
  - {{name: h, count: 2, cores: 8, core_speed: 2 GHz, ram: 64 GiB}}
vms:
  - {{name: vm, vcpus: 2, ram: 4 GiB, workload: trace, count: {count}}}
workloads:
  trace: {workload}
"""
CAPACITY_HZ = 2 * 2e9  # each VM: 2 vCPUs at the hosts' 2 GHz


def _run(workload: str, count: str = "'100%'"):
    text = SCENARIO.format(workload=workload, count=count)
    result = vsim.run(vsim.parse_scenario(text, base_dir=REPO))
    vms = result.tables["vms"]
    return {int(vm): rows.set_index("time_s") for vm, rows in vms.groupby("vm")}


def test_bitbrains_scenario_follows_the_sample():
    vms = _run("{kind: bitbrains, path: workloads/samples/bitbrains/fastStorage}")
    assert sorted(vms) == [0, 1, 2]
    # 1.csv's row at step 2 (600 s) says 15 %.
    assert vms[0].loc[600.0, "cpu_demand_hz"] == pytest.approx(15 / 100 * CAPACITY_HZ)
    # 3.csv arrives at 3600 s with 60 %.
    assert vms[2].index.min() == 3600.0
    assert vms[2].loc[3600.0, "cpu_demand_hz"] == pytest.approx(60 / 100 * CAPACITY_HZ)


def test_azure_scenario_takes_a_share_of_the_vms():
    vms = _run("{kind: azure, path: workloads/samples/azure}", count="'50%'")
    assert sorted(vms) == [0, 1]  # half of four VMs
    # First VM: "1500,evNlasH3...,10,20,15" -> 15 % over [1500, 1800).
    assert vms[0].loc[1500.0, "cpu_demand_hz"] == pytest.approx(15 / 100 * CAPACITY_HZ)
    # Second VM: avgcpu 50 + (k mod 3) x 10 at step k; step 4 (1200 s) -> 60 %.
    assert vms[1].loc[1200.0, "cpu_demand_hz"] == pytest.approx(60 / 100 * CAPACITY_HZ)


def test_alibaba_scenario_with_active_memory_from_the_trace():
    text = """\
name: alibaba-memory
duration: 2 h
period: 5 min
hosts:
  - {name: h, count: 2, cores: 8, core_speed: 2 GHz, ram: 64 GiB, memory: {preset: kvm}}
vms:
  - name: vm
    vcpus: 2
    ram: 4 GiB
    workload: trace
    memory: {active: {workload: trace}}
workloads:
  trace: {kind: alibaba, path: workloads/samples/alibaba, vms: 2}
"""
    result = vsim.run(vsim.parse_scenario(text, base_dir=REPO))
    vms = {int(vm): rows.set_index("time_s") for vm, rows in result.tables["vms"].groupby("vm")}
    assert sorted(vms) == [0, 1]  # vms: 2 -> c_1 and c_2
    # c_1 over [0, 300): CPU (20 + 30 + 40 + 50) / 4 %; memory (60 + 61 + 60 + 61) / 4 % of 4 GiB.
    assert vms[0].loc[0.0, "cpu_demand_hz"] == pytest.approx(0.35 * CAPACITY_HZ)
    assert vms[0].loc[0.0, "mem_active_bytes"] == pytest.approx(0.605 * 4 * GIB)
    # c_2's memory is 30 % throughout: its own rows, not c_1's.
    assert vms[1].loc[600.0, "mem_active_bytes"] == pytest.approx(0.30 * 4 * GIB)


def test_scenario_reports_a_bad_trace_under_the_workload(tmp_path):
    folder = _copy(AZURE, tmp_path)
    table = folder / "vmtable.csv"
    _replace_line(table, 3, "only-an-id")
    text = SCENARIO.format(workload="{kind: azure, path: azure}", count="'100%'")
    with pytest.raises(ScenarioError) as err:
        vsim.run(vsim.parse_scenario(text, file="s.yaml", base_dir=tmp_path))
    message = str(err.value)
    assert "workloads.trace.path" in message
    assert f"{table}:3: no ',' between fields" in message
