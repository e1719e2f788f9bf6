"""Moves of VMs to other sites in waves, from the scenario's ``moves:``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import Hosts, Vms
from vsim.model.moves import MoveSpec
from vsim.model.storage import StorageSetup
from vsim.scenario.schema import did_you_mean

if TYPE_CHECKING:
    from vsim.scenario.build import _Builder

__all__ = ["build_moves"]


def build_moves(b: _Builder, hosts: Hosts, vms: Vms, storage: StorageSetup | None) -> list[MoveSpec]:
    """One :class:`MoveSpec` per move. A VM's disk data is what has been written to its disks
    when the run starts (with datastores), else nothing: then only its memory moves."""
    out = []
    groups = list(dict.fromkeys(vms.group))
    by_vm_group = np.array(vms.group)
    write_of = {g.name: g.write_rate for g in b.spec.vms}
    data: np.ndarray = np.zeros(len(vms))
    if storage is not None:
        # What is copied is the data written, thin or thick (unwritten blocks are skipped).
        mine = storage.disk_vm >= 0
        data = np.bincount(storage.disk_vm[mine], weights=storage.disk_used[mine],
                           minlength=len(vms))
    for k, m in enumerate(b.spec.moves):
        loc = ("moves", k)
        wanted = groups if m.vms == "all" else ([m.vms] if isinstance(m.vms, str) else m.vms)
        for g in wanted:
            if g not in groups:
                b.fail((*loc, "vms"), f"no VM group {g!r}", did_you_mean(g, groups))
        if m.to not in hosts.group_names:
            b.fail((*loc, "to"), f"no host group {m.to!r}", did_you_mean(m.to, hosts.group_names))
            continue
        target_group = hosts.group_names.index(m.to)
        target = hosts.group_id == target_group
        sites = np.unique(hosts.site[target])
        if sites.size != 1:
            b.fail((*loc, "to"), f"host group {m.to!r} spans several sites",
                   "move to a host group of one site")
            continue
        ids = np.flatnonzero(np.isin(by_vm_group, wanted))
        out.append(MoveSpec(
            name=m.name or f"move-{k}", vms=ids, target_hosts=target, target_group=target_group,
            target_site=int(sites[0]), start_s=m.start, wave_size=m.waves.size, gap_s=m.waves.gap,
            max_concurrent=math.inf if m.max_concurrent is None else m.max_concurrent,
            disk_bytes=data[ids], write_rate=np.array([write_of.get(vms.group[i], 0.0)
                                                       for i in ids]),
            cold=m.mode == "cold", boot_s=m.boot))
    b.raise_if_failed()
    return out
