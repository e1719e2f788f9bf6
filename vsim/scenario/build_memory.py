"""Runtime objects of the memory model: per-host and per-VM arrays from the scenario's
``hosts[].memory`` and ``vms[].memory``, the series of active memory, and admission figures."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import Hosts, Vms
from vsim.model.interfaces import DemandSource
from vsim.model.memory import RECLAIM_PRESETS, SHARING_MODES, SWAP_DEVICES, esxi_min_free
from vsim.model.memory_run import MemoryRun
from vsim.model.reclaim import HostMemory, MemoryModel, VmMemory
from vsim.scenario.schema import ActiveFromWorkload
from vsim.units import format_quantity

if TYPE_CHECKING:
    from vsim.scenario.build import _Builder

__all__ = ["build_memory"]

_MEM_SHARES_PER_MIB = {"low": 5.0, "normal": 10.0, "high": 20.0}  # ESXi's presets


def _host_memory(b: _Builder, hosts: Hosts) -> HostMemory:
    groups = b.spec.hosts
    of = np.asarray(b.host_group_of, dtype=np.int64)
    n = len(hosts)
    out = {k: np.zeros(n) for k in (
        "min_free", "share_below", "balloon_below", "swap_below", "low_below", "overhead_bytes",
        "overhead_frac", "swap_latency_s", "swap_bandwidth", "swap_size")}
    enabled = np.zeros(n, dtype=bool)
    sharing = np.zeros(n, dtype=np.int64)
    compression = np.zeros(n, dtype=bool)
    out["swap_size"][:] = math.inf
    out["swap_bandwidth"][:] = 1.0
    for g, group in enumerate(groups):
        spec = group.memory
        if spec is None:
            continue
        mine = of == g
        preset = RECLAIM_PRESETS[spec.preset]
        enabled[mine] = True
        ram = hosts.ram_bytes[mine]
        if spec.min_free is not None:
            out["min_free"][mine] = spec.min_free
        elif preset.min_free_frac is None:
            out["min_free"][mine] = esxi_min_free(ram)
        else:
            out["min_free"][mine] = preset.min_free_frac * ram
        for key in ("share_below", "balloon_below", "swap_below", "low_below"):
            out[key][mine] = getattr(preset, key)
        sharing[mine] = SHARING_MODES.index(spec.page_sharing or preset.sharing)
        compression[mine] = preset.compression if spec.compression is None else spec.compression
        out["overhead_bytes"][mine] = spec.overhead
        out["overhead_frac"][mine] = spec.overhead_frac
        device = SWAP_DEVICES[spec.swap.device]
        out["swap_latency_s"][mine] = (device.latency_s if spec.swap.latency is None
                                       else spec.swap.latency)
        out["swap_bandwidth"][mine] = (device.bandwidth_bytes_s if spec.swap.bandwidth is None
                                       else spec.swap.bandwidth)
        out["swap_size"][mine] = spec.swap.size
    return HostMemory(enabled=enabled, ram=hosts.ram_bytes.copy(), sharing=sharing,
                      compression=compression, **out)


def build_memory(b: _Builder, hosts: Hosts, vms: Vms) -> MemoryRun | None:
    """The memory model of the run (None when no host models memory); fills in the admission
    figures of ``hosts`` and ``vms``."""
    if not any(g.memory is not None for g in b.spec.hosts):
        return None
    hm = _host_memory(b, hosts)
    groups = np.array(vms.group)
    n = len(vms)
    cols = {k: np.zeros(n) for k in ("reservation", "limit", "shares", "active", "access",
                                     "zero", "template", "common")}
    balloon = np.ones(n, dtype=bool)
    sources: list[DemandSource] = []
    for g, group in enumerate(b.spec.vms):
        mine = np.flatnonzero(groups == group.name)
        m = group.memory
        reservation = float(m.reservation)
        if reservation > group.ram:
            b.fail(("vms", g, "memory", "reservation"),
                   f"the reservation ({format_quantity(m.reservation, 'bytes')}) is above the "
                   f"VM's memory ({format_quantity(group.ram, 'bytes')})",
                   "reserve at most the VM's memory")
        cols["reservation"][mine] = min(reservation, group.ram)
        cols["limit"][mine] = m.limit
        cols["shares"][mine] = (_MEM_SHARES_PER_MIB[m.shares] * group.ram / 2.0**20
                                if isinstance(m.shares, str) else m.shares)
        cols["access"][mine] = m.access_rate
        cols["zero"][mine] = m.zero_pages
        cols["template"][mine] = m.template_shared
        cols["common"][mine] = m.common_shared
        balloon[mine] = m.balloon
        if isinstance(m.active, ActiveFromWorkload) and m.active.workload not in b.spec.workloads:
            b.fail(("vms", g, "memory", "active", "workload"),
                   f"unknown workload {m.active.workload!r}",
                   f"known: {', '.join(b.spec.workloads) or 'none; define it under workloads:'}")
        elif isinstance(m.active, ActiveFromWorkload):
            table = b.active_memory_for(g, group, m.active.workload, len(mine))
            if table is not None:
                cols["active"][mine] = table.cpu[:, 0]
                sources.append(DemandSource(mine, table.step_s, np.ascontiguousarray(
                    table.cpu.T, dtype=np.float64)))
        else:
            cols["active"][mine] = m.active
    b.raise_if_failed()
    vm_mem = VmMemory(ram=vms.ram_bytes, template=vms.template, reservation=cols["reservation"],
                      limit=cols["limit"], shares=cols["shares"], active_frac=cols["active"],
                      access_bytes_s=cols["access"], zero_frac=cols["zero"],
                      template_frac=cols["template"], common_frac=cols["common"], balloon=balloon)
    # Admission: reservations and overhead within RAM less min_free; the rest within swap.
    # A VM's overhead is taken at the largest any modelled host charges for it.
    on = hm.enabled
    overhead = (hm.overhead_bytes[on].max() + hm.overhead_frac[on].max() * vms.ram_bytes)
    vms.mem_reserved = cols["reservation"] + overhead
    vms.swap_need = vms.ram_bytes - cols["reservation"]
    hosts.mem_reservable = np.where(on, hosts.ram_bytes - hm.min_free, np.inf)
    hosts.swap_size = np.where(on, hm.swap_size, np.inf)
    for g, group in enumerate(b.spec.vms):
        mine = np.flatnonzero(groups == group.name)
        if mine.size == 0:
            continue
        allowed = (np.ones(len(hosts), dtype=bool) if group.hosts is None
                   else np.array(hosts.group) == group.hosts)
        need, swap = vms.mem_reserved[mine[0]], vms.swap_need[mine[0]]
        if allowed.any() and not ((hosts.mem_reservable >= need) & (hosts.swap_size >= swap))[allowed].any():
            b.fail(("vms", g, "memory"),
                   f"VM group {group.name!r} can start on no host: it reserves "
                   f"{format_quantity(need, 'bytes')} with the hypervisor's overhead and needs "
                   f"{format_quantity(swap, 'bytes')} of swap for the rest of its memory",
                   f"the most a host can reserve is "
                   f"{format_quantity(float(hosts.mem_reservable[allowed].max()), 'bytes')} "
                   f"(RAM less min_free) with {format_quantity(float(hosts.swap_size[allowed].max()), 'bytes')} "
                   "of swap; lower the reservation or give the hosts more RAM or swap")
    b.raise_if_failed()
    return MemoryRun(MemoryModel(hm, vm_mem), sources)
