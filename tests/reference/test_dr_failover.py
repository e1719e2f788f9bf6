"""A site loss with a DR plan in whole runs: recovery order and times, the data each VM loses,
and failback, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import events_of, run_text

# Site a (two hosts) runs two databases and four application servers, replicated to site b
# every 15 minutes over 1 Gbit/s uplinks (125 MB/s). Site a is lost at 2 h and back 2 h later.
PLAN = """
name: dr
duration: 6 h
period: 10 min
sites:
  - {{name: a, uplink: 1 Gbit/s}}
  - {{name: b, uplink: 1 Gbit/s}}
hosts:
  - {{name: pa, count: 2, site: a, cores: 16, core_speed: 2 GHz, ram: 128 GiB}}
  - {{name: pb, count: 2, site: b, cores: 16, core_speed: 2 GHz, ram: 128 GiB}}
vms:
  - {{name: db, count: 2, vcpus: 4, ram: 16 GiB, hosts: pa, write_rate: {write}, workload: w}}
  - {{name: app, count: 4, vcpus: 2, ram: 8 GiB, hosts: pa, write_rate: {write}, workload: w}}
workloads:
  w: {{kind: constant, level: 30%}}
failures:
  - {{site: a, at: 2 h, repair: 2 h}}
ha:
  boot: {{io: 0 B, init: 60 s}}
dr:
  - name: plan
    site: a
    to: b
    replication: {{rpo: 15 min}}
    detection: 5 min
    decision: 10 min
    groups:
      - {{name: first, vms: [db]}}
      - {{name: second, vms: [app]}}
    failback: 30 min
"""


def test_the_plan_recovers_group_after_group_at_the_recovery_site() -> None:
    r = run_text(PLAN.format(write="1 MB/s"))
    out = r.tables["outages"].set_index("name")
    assert (out["how"] == "dr").all() and (out["new_site"] == "b").all()
    # Declared lost after 5 min, the plan starts 10 min later; a boot here is 60 s of init.
    first = 300.0 + 600.0 + 60.0
    assert out.loc[["db-0", "db-1"], "downtime_s"].tolist() == pytest.approx([first] * 2)
    # The second group starts once the first is up.
    assert out.loc[[f"app-{i}" for i in range(4)], "downtime_s"].tolist() == pytest.approx(
        [first + 60.0] * 4)
    kinds = [k for k in r.tables["events"]["kind"] if k.startswith("dr_")]
    assert kinds[:6] == ["dr_site_declared_lost", "dr_plan_start", "dr_group_start",
                         "dr_group_done", "dr_group_start", "dr_group_done"]


def test_an_idle_link_loses_at_most_one_interval_of_writes() -> None:
    r = run_text(PLAN.format(write="1 MB/s"))
    loss = r.tables["outages"]["data_loss_s"].to_numpy()
    # Each VM's copy is as of its last completed cycle: less than 15 min before the loss, plus
    # the transfer under way. A cycle ships 1 MB/s x 900 s = 900 MB: 7.2 s alone at 125 MB/s,
    # at most 6 x 7.2 = 43.2 s if all six overlapped.
    assert np.all(loss > 0.0)
    assert np.all(loss <= 900.0 + 6 * 900 / 125)
    # The cycles start at different offsets, so the windows differ from VM to VM.
    assert np.unique(loss).size == loss.size


def test_a_saturated_link_falls_behind_and_loses_more() -> None:
    r = run_text(PLAN.format(write="30 MB/s"))
    # Six VMs write 180 MB/s into a 125 MB/s link: each cycle starts later than the one before
    # ends, so by the loss at 2 h every copy is older than one interval.
    loss = r.tables["outages"]["data_loss_s"].to_numpy()
    assert np.all(loss > 900.0)
    assert r.summary["availability"]["data_loss_s"]["max"] > 2 * 900.0


def test_failback_moves_the_vms_home_once_the_site_is_back() -> None:
    r = run_text(PLAN.format(write="1 MB/s"))
    back = [t for t, _, _ in events_of(r, "dr_site_back")]
    # Repaired at 4 h, its hosts on 2 minutes later (boot_time's default).
    assert back == pytest.approx([4 * 3600.0 + 120.0])
    m = r.tables["migrations"]
    assert len(m) == 6 and (m["reason"] == "failback").all() and (m["outcome"] == "completed").all()
    assert m["time_s"].tolist() == pytest.approx([back[0] + 1800.0] * 6)
    assert set(m["from_host"]) <= {2, 3} and set(m["to_host"]) <= {0, 1}
    # At the end every VM runs at home again.
    vms = r.tables["vms"]
    last = vms[vms["time_s"] == vms["time_s"].max()]
    assert set(last["host"]) <= {0, 1}


def test_without_a_plan_a_lost_site_waits_for_its_repair() -> None:
    text = PLAN.format(write="1 MB/s")
    text = text[:text.index("dr:")]
    r = run_text(text)
    out = r.tables["outages"]
    # HA restarts within the site, which has no host left: the VMs restart when it is back.
    assert (out["how"] == "ha").all() and (out["new_site"] == "a").all()
    assert (out["up_s"] >= 4 * 3600.0 + 120.0).all()
    assert (out["data_loss_s"] == 0.0).all()
