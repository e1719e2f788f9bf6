"""The VMs' traffic from the scenario's ``networks:`` and each VM group's ``nics`` (and
``network``), for the links table; vNIC traffic also competes with migrations on the NICs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import Vms
from vsim.model.traffic import TrafficSetup
from vsim.scenario.schema import did_you_mean

if TYPE_CHECKING:
    from vsim.scenario.build import _Builder

__all__ = ["build_traffic"]


def build_traffic(b: _Builder, vms: Vms) -> TrafficSetup | None:
    """Each VM's internal and external traffic, or None when the scenario declares neither
    networks nor vNICs (then no links table is kept)."""
    spec = b.spec
    if not spec.networks and not any(g.nics for g in spec.vms):
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
    b.raise_if_failed()
    internal = np.array([internal_of.get(g, 0.0) for g in vms.group])
    external = np.array([external_of.get(g, 0.0) for g in vms.group])
    # The migration fabric lets all of a VM's traffic compete on its host's NIC.
    b.vm_memory["net"] = internal + external
    return TrafficSetup(internal, external, b.vm_net_follows.copy())
