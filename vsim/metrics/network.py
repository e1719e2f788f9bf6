"""Network results: the ``links`` table (a row per limited link and period: what it carried of VM
traffic, migrations and replication), the ``vm_traffic`` table (a row per VM with traffic: what
it wanted to send and receive, and what went through) and the ``network`` section of
``summary.json``."""

from __future__ import annotations

from typing import Any

import numpy as np

from vsim.metrics.columns import Categories, Columns
from vsim.model.datacenter import Datacenter

__all__ = ["link_tables", "network_summary"]


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
