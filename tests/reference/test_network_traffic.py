"""The links table and the VMs' traffic, against rates computed by hand: vNIC traffic shaped
per port group, external traffic over the site's uplink, and VM traffic sharing a NIC max-min
fairly with migrations."""

from __future__ import annotations

import pytest
from conftest import run_text, scenario

import vsim

MB = 1e6

WEB = """
name: net
duration: 1 h
period: 10 min
sites:
  - {name: dc1, uplink: 1 Gbit/s}
hosts:
  - {name: h, count: 2, cores: 16, core_speed: 2 GHz, ram: 256 GiB, network: 10 Gbit/s}
networks:
  - {name: web, vlan: 10, shaping: 200 Mbit/s}
  - {name: backend}
vms:
  - name: web
    count: 10
    ram: 4 GiB
    nics: [{network: web, traffic: 300 Mbit/s, external: true},
           {network: backend, traffic: 100 Mbit/s}]
"""


def test_shaped_external_traffic_shares_the_uplink_and_the_rest_is_unserved() -> None:
    r = run_text(WEB)
    links = r.tables["links"]
    first = links[links["time_s"] == 0].set_index("link")["carried_bytes_s"]
    # Each VM: 300 Mbit/s shaped to 200 Mbit/s = 25 MB/s out of the site, 12.5 MB/s inside it.
    # All ten on h-0 (first-fit): 10 x 25 MB/s = 250 MB/s want the 125 MB/s uplink, 12.5 MB/s
    # each; the NIC carries 10 x (12.5 + 12.5) MB/s each way.
    assert first["dc1/uplink-out"] == pytest.approx(125 * MB)
    assert first["dc1/uplink-in"] == pytest.approx(125 * MB)
    assert first["h-0/nic-out"] == pytest.approx(250 * MB)
    assert first["h-1/nic-out"] == 0.0
    assert "dc1/fabric" not in set(links["link"])  # an unlimited fabric limits nothing
    t = r.tables["vm_traffic"]
    # Wanted both ways 2 x (25 + 12.5) MB/s for an hour; got 2 x (12.5 + 12.5) MB/s.
    assert t["demand_bytes"].to_numpy() == pytest.approx(2 * 37.5 * MB * 3600)
    assert t["delivered_bytes"].to_numpy() == pytest.approx(2 * 25 * MB * 3600)
    assert r.summary["network"]["vm_traffic_unserved_frac"] == pytest.approx(12.5 / 37.5)
    assert r.summary["network"]["busiest_links"][0]["peak_utilisation"] == pytest.approx(1.0)


DRAIN = """
name: drain
duration: 1 h
period: 10 min
hosts:
  - {name: h, count: 2, cores: 16, core_speed: 2 GHz, ram: 256 GiB, network: 1 Gbit/s}
networks: [{name: lan}]
vms:
  - {name: app, count: 2, ram: 4 GiB, dirty_rate: 0, nics: [{network: lan, traffic: 50 MB/s}]}
migration: {max_bandwidth: unlimited}
maintenance:
  - {hosts: [h-0], start: 10 min}
"""


def test_vm_traffic_and_migrations_share_a_nic_max_min() -> None:
    r = run_text(DRAIN)
    m = r.tables["migrations"]
    assert len(m) == 2 and (m["outcome"] == "completed").all()
    # On h-0's 125 MB/s out: two migrations and the two VMs' 50 MB/s, four flows at 31.25 MB/s
    # each (the VMs want more than that). So while a migration sends its bytes at 31.25 MB/s,
    # its VM's outgoing traffic misses 50 - 31.25 = 18.75 MB/s (the incoming side is not shared).
    flowing_s = m["bytes"].to_numpy() / (31.25 * MB)
    t = r.tables["vm_traffic"].set_index("vm")
    unserved = t["demand_bytes"] - t["delivered_bytes"]
    assert unserved.to_numpy() == pytest.approx(18.75 * MB * flowing_s, rel=1e-6)
    links = r.tables["links"]
    assert (links["carried_bytes_s"] <= links["capacity_bytes_s"] * (1 + 1e-9)).all()
    during = links[(links["time_s"] == 600) & (links["link"] == "h-0/nic-out")].iloc[0]
    assert during["migration_bytes_s"] == pytest.approx(m["bytes"].sum() / 600)


def test_an_unknown_network_is_one_clear_error() -> None:
    text = WEB.replace("network: backend,", "network: backnd,")
    with pytest.raises(vsim.ScenarioError, match=r"vms.0.nics.1.network: no network 'backnd'.*"
                       "did you mean 'backend'"):
        vsim.run(scenario(text))


TRACE = """
name: trace-io
duration: 2 h
period: 10 min
hosts:
  - {{name: h, count: 2, cores: 16, core_speed: 2 GHz, ram: 256 GiB}}
datastores:
  - {{name: ds, capacity: 1 TiB}}
workloads:
  bank: {{kind: bitbrains, path: {path}}}
vms:
  - name: app
    vcpus: 4
    ram: 8 GiB
    workload: bank
    network_trace: bank
    write_trace: bank
    disks: [{{size: 10 GiB, format: qcow2, used: 0, new_writes: 100%}}]
"""


def test_traffic_and_writes_follow_a_bitbrains_trace() -> None:
    from conftest import REPO

    r = run_text(TRACE.format(path=REPO / "workloads/samples/bitbrains/fastStorage"))
    t = r.tables["vm_traffic"].set_index("vm")
    # The sample's VMs (KiB/s in the files, x 1024): VM 0 sends 1 and receives 2.5 KiB/s for the
    # two hours; VM 1 sends 20 and receives 30 KiB/s until it leaves at 1 h 30; VM 2 arrives at
    # 1 h and sends 0.5 KiB/s from then.
    assert t.loc[0, "demand_bytes"] == pytest.approx((1024 + 2560) * 7200)
    assert t.loc[1, "demand_bytes"] == pytest.approx((20480 + 30720) * 5400)
    assert t.loc[2, "demand_bytes"] == pytest.approx(512 * 3600)
    assert (t["delivered_bytes"] == t["demand_bytes"]).all()  # 1 Gbit/s NICs: all served
    # Their thin disks grow with the trace's writes (every write a new block here): VM 0 at
    # 50 KiB/s for 2 h, VM 2 at 4 KiB/s for its hour; VM 1's disk went with it.
    used = r.summary["storage"]["datastores"]["ds"]["used_bytes"]
    assert used == pytest.approx(51200 * 7200 + 4096 * 3600)


def test_a_trace_without_network_series_is_one_clear_error() -> None:
    from conftest import REPO

    text = (TRACE.format(path=REPO / "workloads/samples/azure")
            .replace("kind: bitbrains", "kind: azure").replace("    write_trace: bank\n", ""))
    with pytest.raises(vsim.ScenarioError, match=r"vms.0.network_trace: workload 'bank' \(azure\) "
                       r"has no net_tx and net_rx series"):
        vsim.run(scenario(text))
