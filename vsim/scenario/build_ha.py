"""Runtime objects for failures, HA and DR from the scenario's ``failures:``, ``ha:`` and ``dr:``
(and each VM group's ``ha``, ``boot`` and ``write_rate``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vsim.model.boot import Boots
from vsim.model.datacenter import Hosts, Vms
from vsim.model.failures import FailureProcess, Lifetimes, failure_schedule
from vsim.model.interfaces import AvailabilitySetup, DrPlan, HaSettings, RecoveryGroup
from vsim.model.network import Links
from vsim.model.replication import Replication
from vsim.policies.admission import make_admission
from vsim.scenario.schema import did_you_mean
from vsim.scenario.schema_ha import BootSpec, DurationDistribution, FailureSpec
from vsim.units import parse_quantity

if TYPE_CHECKING:
    from vsim.scenario.build import _Builder

__all__ = ["build_availability"]

_OVERHEAD_BYTES, _OVERHEAD_FRAC = 32 * 2.0**20, 0.01  # a VM's memory overhead when not modelled


def _lifetimes(value: float | DurationDistribution, default: str) -> Lifetimes:
    if isinstance(value, DurationDistribution):
        return Lifetimes(value.distribution, value.mean, value.shape)
    return Lifetimes(default, value)


def _host_ids(b: _Builder, hosts: Hosts, value: str | list[str], loc: tuple) -> np.ndarray | None:
    """Host ids of ``all``, a host group, or a list of host names (errors reported on ``loc``)."""
    if isinstance(value, str):
        if value == "all":
            return np.arange(len(hosts), dtype=np.int64)
        ids = np.flatnonzero(np.array(hosts.group) == value)
        if ids.size == 0:
            b.fail(loc, f"no host group {value!r}", did_you_mean(value, hosts.group_names))
            return None
        return ids
    index = {n: i for i, n in enumerate(hosts.name)}
    unknown = [n for n in value if n not in index]
    for n in unknown:
        b.fail(loc, f"no host {n!r}", did_you_mean(n, hosts.name))
    return None if unknown else np.array([index[n] for n in value], dtype=np.int64)


def _trace(b: _Builder, k: int, spec: FailureSpec, hosts: Hosts) -> tuple:
    """Outages (start, duration, hosts) from a CSV trace with columns host, start, duration."""
    assert spec.trace is not None
    loc = ("failures", k, "trace")
    path = Path(spec.trace)
    if not path.is_absolute() and b.loaded.file:
        path = Path(b.loaded.file).parent / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        b.fail(loc, f"cannot read the failure trace {path}: {e.strerror}",
               "give a CSV file with columns host, start, duration")
        return ()
    rows = csv.DictReader(text.splitlines())
    missing = {"host", "start", "duration"} - set(rows.fieldnames or [])
    if missing:
        b.fail(loc, f"{path}: missing column(s) {', '.join(sorted(missing))}",
               "the header must name host, start and duration")
        return ()
    out = []
    index = {n: i for i, n in enumerate(hosts.name)}
    groups = np.array(hosts.group)
    for line, row in enumerate(rows, start=2):
        where = f"{path}: line {line}"
        name = (row["host"] or "").strip()
        ids = np.array([index[name]]) if name in index else np.flatnonzero(groups == name)
        if ids.size == 0:
            b.fail(loc, f"{where}: no host or host group {name!r}",
                   did_you_mean(name, hosts.name + hosts.group_names))
            continue
        try:
            start = parse_quantity(row["start"], "time")
            length = parse_quantity(row["duration"], "time")
        except (ValueError, TypeError) as e:
            b.fail(loc, f"{where}: {e}", "start and duration are times such as 3600 or '2 h'")
            continue
        out.append((start, length, ids))
    return tuple(out)


def _processes(b: _Builder, hosts: Hosts, sites: list[str]) -> list[FailureProcess]:
    out = []
    for k, f in enumerate(b.spec.failures):
        name = f.name or f"failures-{k}"
        kind, together = "host", f.together
        ids: np.ndarray | None = np.zeros(0, dtype=np.int64)
        if f.site is not None:
            if f.site not in sites:
                b.fail(("failures", k, "site"), f"unknown site {f.site!r}",
                       did_you_mean(f.site, sites))
                continue
            ids = np.flatnonzero(hosts.site == sites.index(f.site))
            kind, together = "site", True
        elif f.hosts is not None:
            ids = _host_ids(b, hosts, f.hosts, ("failures", k, "hosts"))
            kind = "domain" if together else "host"
        if ids is None:
            continue
        at = () if f.at is None else tuple(f.at if isinstance(f.at, list) else [f.at])
        out.append(FailureProcess(
            name, ids, together,
            None if f.time_to_failure is None else _lifetimes(f.time_to_failure, "exponential"),
            at, None if isinstance(f.repair, float) and math.isinf(f.repair)
            else _lifetimes(f.repair, "fixed"), kind,
            _trace(b, k, f, hosts) if f.trace is not None else (),
            None if f.between is None else (float(f.between[0]), float(f.between[1]))))
    return out


def _boots(b: _Builder, hosts: Hosts, vms: Vms) -> Boots:
    spec = b.spec
    default = spec.ha.boot if spec.ha is not None else BootSpec()
    of_vm = {g.name: (g.boot or default) for g in spec.vms}
    boot = [of_vm.get(name, default) for name in vms.group]
    storage = np.array([spec.hosts[g].storage for g in b.host_group_of], dtype=float)
    site_storage = np.array([s.storage for s in spec.sites] or [math.inf], dtype=float)
    return Boots(storage, site_storage, hosts.site, np.array([x.io for x in boot]),
                 np.array([x.read_rate for x in boot]), np.array([x.init for x in boot]))


def _plans(b: _Builder, vms: Vms, sites: list[str]) -> list[DrPlan]:
    plans = []
    group_of_vm = np.array(vms.group)
    known = [g.name for g in b.spec.vms]
    taken: dict[str, str] = {}
    for p, d in enumerate(b.spec.dr):
        for key in ("site", "to"):
            if getattr(d, key) not in sites:
                b.fail(("dr", p, key), f"unknown site {getattr(d, key)!r}",
                       did_you_mean(getattr(d, key), sites))
        groups = []
        names = [g.name for g in d.groups]
        for g, grp in enumerate(d.groups):
            for vg in grp.vms:
                if vg not in known:
                    b.fail(("dr", p, "groups", g, "vms"), f"no VM group {vg!r}",
                           did_you_mean(vg, known))
                elif vg in taken:
                    b.fail(("dr", p, "groups", g, "vms"), f"VM group {vg!r} is already in "
                           f"plan {taken[vg]!r}", "each VM group belongs to one plan at most")
                taken.setdefault(vg, d.name)
            after = (tuple(names.index(a) for a in grp.after) if grp.after is not None
                     else ((g - 1,) if g > 0 else ()))
            groups.append(RecoveryGroup(grp.name, np.flatnonzero(np.isin(group_of_vm, grp.vms)),
                                        after, grp.delay))
        if d.site in sites and d.to in sites:
            plans.append(DrPlan(d.name, sites.index(d.site), sites.index(d.to), tuple(groups),
                                d.detection, d.decision, d.failback))
    return plans


def _replication(b: _Builder, hosts: Hosts, vms: Vms, plans: list[DrPlan],
                 links: Links) -> Replication | None:
    if not plans:
        return None
    n = len(vms)
    target = np.full(n, -1, dtype=np.int64)
    interval = np.full(n, math.inf)
    cap = np.full(n, math.inf)
    for d, plan in zip(b.spec.dr, plans, strict=True):
        for grp in plan.groups:
            target[grp.vms] = plan.target
            interval[grp.vms] = 0.0 if d.replication.mode == "sync" else d.replication.rpo
            cap[grp.vms] = d.replication.max_rate
    writes = {g.name: g.write_rate for g in b.spec.vms}
    rate = np.array([writes.get(name, 0.0) for name in vms.group])
    # Each VM's cycles start at its own offset within the interval, as replication schedulers
    # spread them (all at once would make every transfer share the link at the same time).
    offset = b.streams.generator("replication").uniform(0.0, 1.0, n) * np.where(
        np.isfinite(interval), interval, 0.0)
    rep = Replication(links, target, np.where(target >= 0, interval, 0.0), rate, max_rate=cap,
                      offset_s=offset)
    background = np.zeros(len(links.capacity))
    sites = b.spec.sites
    h, s = links.n_hosts, links.n_sites
    for k, site in enumerate(sites):
        background[2 * h + s + k] = background[2 * h + 2 * s + k] = site.uplink_traffic
    if background.any():
        rep.set_background(background, 0.0)
    return rep


def build_availability(b: _Builder, hosts: Hosts, vms: Vms, sites: list[str],
                       links: Links, duration_s: float) -> AvailabilitySetup | None:
    """What the run needs about failures and recovery, or None when the scenario has none."""
    spec = b.spec
    if not spec.failures and spec.ha is None and not spec.dr:
        return None
    processes = _processes(b, hosts, sites)
    plans = _plans(b, vms, sites)
    ha = None
    admission = None
    failover = np.zeros(len(hosts), dtype=bool)
    if spec.ha is not None:
        h = spec.ha
        ha = HaSettings(h.detection, tuple(h.retry_delays), h.wait_for, h.tier_delay)
        a = h.admission
        if a.policy == "failover-hosts":
            assert a.hosts is not None
            ids = _host_ids(b, hosts, a.hosts, ("ha", "admission", "hosts"))
            if ids is not None:
                failover[ids] = True
        elif a.policy == "slots":
            admission = make_admission(
                "slots", host_failures=a.host_failures or 1,
                max_slot_cpu_hz=math.inf if a.slot_cpu is None else a.slot_cpu,
                max_slot_mem_bytes=math.inf if a.slot_memory is None else a.slot_memory)
        elif a.policy == "percentage":
            params = ({"host_failures": a.host_failures} if a.host_failures is not None else
                      {"cpu_frac": 0.25 if a.cpu is None else a.cpu,
                       "mem_frac": 0.25 if a.memory is None else a.memory})
            admission = make_admission("percentage", **params)
    b.raise_if_failed()
    # Admission control counts memory reservations with their overhead: the memory model's
    # figure where it runs, else the reservation plus ESXi-like overhead.
    res_of = {g.name: g.memory.reservation for g in spec.vms}
    reservation = np.array([res_of.get(name, 0.0) for name in vms.group])
    overhead = _OVERHEAD_BYTES + _OVERHEAD_FRAC * vms.ram_bytes
    assert vms.mem_reserved is not None  # Vms fills in the default
    mem_res = np.where(vms.mem_reserved > 0, vms.mem_reserved, reservation + overhead)
    protected = {g.name: g.ha for g in spec.vms}
    return AvailabilitySetup(
        failures=failure_schedule(processes, duration_s, b.streams.generator("failures")),
        boots=_boots(b, hosts, vms), ha=ha, admission=admission,
        ha_vms=np.array([protected.get(name, True) for name in vms.group], dtype=bool),
        failover_hosts=failover, vm_mem_res=mem_res, plans=plans,
        replication=_replication(b, hosts, vms, plans, links))
