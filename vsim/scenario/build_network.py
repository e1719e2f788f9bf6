"""The VMs' traffic from the scenario's ``networks:`` and each VM group's ``nics`` (and
``network``), for the links table; vNIC traffic also competes with migrations on the NICs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import Vms
from vsim.model.interfaces import RateSeries
from vsim.model.traffic import TrafficSetup
from vsim.scenario.schema import VmGroup, did_you_mean
from vsim.traces import DemandTable

if TYPE_CHECKING:
    from vsim.scenario.build import _Builder

__all__ = ["build_traffic", "trace_columns"]


def build_traffic(b: _Builder, vms: Vms) -> TrafficSetup | None:
    """Each VM's internal and external traffic, or None when the scenario declares neither
    networks nor vNICs (then no links table is kept)."""
    spec = b.spec
    if not spec.networks and not any(g.nics or g.network_trace for g in spec.vms):
        return None
    shaping = {n.name: n.shaping for n in spec.networks}
    known = list(shaping)
    internal_of: dict[str, float] = {}
    external_of: dict[str, float] = {}
    for k, g in enumerate(spec.vms):
        inside, outside = g.network, 0.0
        for j, nic in enumerate(g.nics):
            if nic.network not in shaping:
                b.fail(("vms", k, "nics", j, "network"), f"no network {nic.network!r}",
                       did_you_mean(nic.network, known) if known else
                       f"declare it under networks: [{{name: {nic.network}}}]")
                continue
            # Traffic shaping caps what one vNIC sends and receives.
            rate = min(nic.traffic, shaping[nic.network])
            if nic.external:
                outside += rate
            else:
                inside += rate
        internal_of[g.name], external_of[g.name] = inside, outside
    sent, received = [], []
    for k, g in enumerate(spec.vms):
        if g.network_trace is None:
            continue
        table = trace_columns(b, k, g, vms, g.network_trace, "network_trace", ("net_tx", "net_rx"))
        if table is not None and table.net_tx is not None and table.net_rx is not None:
            mine = np.flatnonzero(np.array(vms.group) == g.name)
            sent.append(RateSeries(mine, table.step_s, np.ascontiguousarray(table.net_tx.T)))
            received.append(RateSeries(mine, table.step_s, np.ascontiguousarray(table.net_rx.T)))
    b.raise_if_failed()
    internal = np.array([internal_of.get(g, 0.0) for g in vms.group])
    external = np.array([external_of.get(g, 0.0) for g in vms.group])
    # The migration fabric lets all of a VM's traffic compete on its host's NIC.
    b.vm_memory["net"] = internal + external
    return TrafficSetup(internal, external, b.vm_net_follows.copy(), sent, received)


def trace_columns(b: _Builder, k: int, group: VmGroup, vms: Vms, workload: str, field: str,
                  columns: tuple[str, ...]) -> DemandTable | None:
    """The series of ``workload`` that VM group ``k`` follows for ``field``, checked to have
    ``columns`` (a trace's network or disk series)."""
    loc = ("vms", k, field)
    spec = b.spec.workloads.get(workload)
    if spec is None:
        b.fail(loc, f"unknown workload {workload!r}", did_you_mean(workload, list(b.spec.workloads)))
        return None
    n = int(np.count_nonzero(np.array(vms.group) == group.name))
    table = b.trace_for(k, group, workload, n, field)
    if table is None:
        return None
    if any(getattr(table, c) is None for c in columns):
        b.fail(loc, f"workload {workload!r} ({spec.kind}) has no {' and '.join(columns)} series",
               "a Bitbrains trace has network and disk series; the other kinds have none")
        return None
    if table.n_series < n:
        b.fail(loc, f"workload {workload!r} has {table.n_series} series for {n} VMs",
               "use fewer VMs, or a trace with more")
        return None
    return table
