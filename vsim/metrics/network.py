"""Network results: the ``links`` table (a row per limited link and period: what it carried of VM
traffic, migrations and replication), the ``vm_traffic`` table (a row per VM with traffic: what
it wanted to send and receive, and what went through) and the ``network`` section of
``summary.json``."""

from __future__ import annotations

from typing import Any

import numpy as np

from vsim.metrics.columns import Categories, Columns
from vsim.model.datacenter import Datacenter

__all__ = ["link_tables", "move_tables", "moves_summary", "network_summary"]


def link_tables(records: dict[str, Any], dc: Datacenter) -> dict[str, Columns]:
    rows = dict(records["links"])
    rows["link"] = Categories(np.asarray(rows["link"], dtype=np.int32),
                              tuple(records["link_names"]))
    demand, sent = records["vm_demand_bytes"], records["vm_sent_bytes"]
    vm = np.flatnonzero(demand > 0)
    unserved = np.divide(demand[vm] - sent[vm], demand[vm], out=np.zeros(vm.size),
                         where=demand[vm] > 0)
    traffic: Columns = {
        "vm": vm.astype(np.int32),
        "name": [dc.vms.name[i] for i in vm],
        "demand_bytes": demand[vm],
        "delivered_bytes": sent[vm],
        "unserved_frac": np.clip(unserved, 0.0, 1.0),
    }
    return {"links": rows, "vm_traffic": traffic}


def network_summary(records: dict[str, Any], tables: dict[str, Columns]) -> dict[str, Any]:
    """The busiest links (peak instantaneous utilisation, and their busiest period), and the
    VMs' traffic served."""
    names = records["link_names"]
    peak = records["peak_utilisation"]
    limited = records["limited"]
    order = np.argsort(-peak, kind="stable")[:5]
    rows = tables["links"]
    codes = rows["link"].codes  # type: ignore[union-attr]
    util = np.asarray(rows["utilisation"])
    busiest = [{"link": names[limited[i]], "peak_utilisation": float(peak[i]),
                "busiest_period_utilisation": float(np.max(util[codes == limited[i]], initial=0.0))}
               for i in order]
    demand, sent = records["vm_demand_bytes"], records["vm_sent_bytes"]
    total = float(demand.sum())
    return {
        "busiest_links": busiest,
        "vm_traffic_demand_bytes": total,
        "vm_traffic_delivered_bytes": float(sent.sum()),
        "vm_traffic_unserved_frac": float((demand.sum() - sent.sum()) / total) if total > 0 else 0.0,
    }


_PHASES = ("waiting", "copying disks", "waiting for a host", "migrating", "moved", "skipped")


def move_tables(records: dict[str, Any], dc: Datacenter) -> dict[str, Columns]:
    """The ``moves`` table: a row per VM of a move, its wave and when each step ended."""
    vm = np.asarray(records["vm"], dtype=np.int64)
    return {"moves": {
        "move": Categories(np.asarray(records["move"], dtype=np.int32), tuple(records["names"])),
        "wave": (np.asarray(records["wave"]) + 1).astype(np.int32),
        "vm": vm.astype(np.int32),
        "name": [dc.vms.name[i] for i in vm],
        "disk_bytes": records["disk_bytes"],
        "sent_bytes": records["sent_bytes"],
        "wave_start_s": records["wave_start_s"],
        "copy_start_s": records["copy_start_s"],
        "copy_end_s": records["copy_end_s"],
        "moved_s": records["done_s"],
        # Cold moves: from the shutdown to running at the destination (live: see migrations).
        "down_s": np.where(records["cold"], records["done_s"] - records["off_s"], np.nan),
        "status": Categories(np.asarray(records["phase"], dtype=np.int32), _PHASES),
    }}


def moves_summary(records: dict[str, Any]) -> dict[str, Any]:
    """Per move: VMs moved, waves, when it began and ended, and each wave's duration."""
    out = {}
    move, wave = np.asarray(records["move"]), np.asarray(records["wave"])
    start, done = records["wave_start_s"], records["done_s"]
    for k, name in enumerate(records["names"]):
        mine = move == k
        waves = []
        for w in np.unique(wave[mine]).tolist():
            rows = mine & (wave == w)
            began = start[rows]
            ended = done[rows]
            waves.append(None if np.isnan(began).all() or np.isnan(ended).all()
                         else float(np.nanmax(ended) - np.nanmin(began)))
        moved = int(np.count_nonzero(mine & ~np.isnan(done)))
        out[name] = {
            "vms": int(mine.sum()), "moved": moved, "waves": len(waves),
            "began_s": float(np.nanmin(start[mine])) if moved else None,
            "ended_s": float(np.nanmax(done[mine])) if moved else None,
            "wave_s": waves,
            "disk_bytes_sent": float(np.asarray(records["sent_bytes"])[mine].sum()),
        }
    return out
