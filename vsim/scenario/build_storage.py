"""Runtime storage from the scenario's ``datastores:`` and ``templates:`` and each VM group's
``disks``, ``clone``, ``snapshots``, ``boot_at_start`` and ``power``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from vsim.model.datacenter import Hosts, Vms
from vsim.model.interfaces import RateSeries
from vsim.model.storage import CLONE_FULL, CLONE_LINKED, CLONE_NONE, StorageSetup
from vsim.scenario.build_network import trace_columns
from vsim.scenario.schema import VmGroup, did_you_mean
from vsim.scenario.schema_ha import BootSpec
from vsim.scenario.schema_storage import resolve_share
from vsim.units import format_quantity

if TYPE_CHECKING:
    from vsim.scenario.build import _Builder

__all__ = ["build_storage"]

_LINKED_DELTA_BYTES = 2.0**20  # a new linked clone's delta: its descriptor and first blocks


class _Disks:
    """The disk rows as they are added: one disk spec at a time, for all the VMs that have it."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "vm", "store", "size", "thin", "used", "new_writes", "exists")}
        self.n = 0

    def add(self, vms: np.ndarray | int, store: int, size: float, thin: bool, used: float,
            new_writes: float, exists: bool) -> int:
        """Rows for ``vms`` (-1: a template's base); returns the first row's index."""
        vm = np.atleast_1d(np.asarray(vms, dtype=float))
        for k, v in (("store", store), ("size", size), ("thin", thin), ("used", min(used, size)),
                     ("new_writes", new_writes), ("exists", exists)):
            self.cols[k].append(np.full(vm.size, float(v)))
        self.cols["vm"].append(vm)
        self.n += vm.size
        return self.n - vm.size

    def array(self, key: str, dtype: type = float) -> np.ndarray:
        parts = self.cols[key]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    def store_of(self, row: int) -> int:
        return int(self.array("store", np.int64)[row])


def build_storage(b: _Builder, hosts: Hosts, vms: Vms) -> StorageSetup | None:
    """The storage of a run, or None when the scenario declares no datastore (then no VM can
    name disks, a clone or snapshots; say so rather than ignore them)."""
    spec = b.spec
    by_group = {g.name: g for g in spec.vms}
    _power_off(vms, by_group)
    uses = [(k, g) for k, g in enumerate(spec.vms)
            if g.disks or g.clone or g.snapshots or g.boot_at_start or g.datastore
            or g.write_trace]
    if not spec.datastores:
        for k, g in uses:
            b.fail(("vms", k), f"VM group {g.name!r} has disks, a clone, snapshots, boot_at_start, "
                   "a write_trace or a datastore, but the scenario declares no datastore",
                   "add datastores: [{name: ds1, capacity: '10 TiB'}]")
        if spec.templates:
            b.fail(("templates",), "templates need a datastore for their disks",
                   "add datastores:")
        return None
    names = [d.name for d in spec.datastores]
    store_of = {n: i for i, n in enumerate(names)}
    if len(store_of) < len(names):
        b.fail(("datastores",), "two datastores have the same name", "give each its own name")
    site_names = [s.name for s in spec.sites]
    for k, d in enumerate(spec.datastores):
        if d.site is not None and site_names and d.site not in site_names:
            b.fail(("datastores", k, "site"), f"no site {d.site!r}", did_you_mean(d.site, site_names))

    def store(name: str | None, loc: tuple) -> int:
        if name is None:
            return 0
        if name not in store_of:
            b.fail(loc, f"no datastore {name!r}", did_you_mean(name, names))
            return 0
        return store_of[name]

    disks = _Disks()
    tpl_names = [t.name for t in spec.templates]
    tpl_disk = [disks.add(-1, store(t.disk.datastore, ("templates", k, "disk", "datastore")),
                          t.disk.size, t.disk.thin, resolve_share(t.disk.used, t.disk.size),
                          t.disk.new_writes, True)
                for k, t in enumerate(spec.templates)]
    n = len(vms)
    clone = np.zeros(n, dtype=np.int8)
    template = np.full(n, -1, dtype=np.int64)
    vm_store = np.full(n, -1, dtype=np.int64)
    default_boot = spec.ha.boot if spec.ha is not None else BootSpec()
    boot = [default_boot] * n
    boot_at_start = np.zeros(n, dtype=bool)
    group_index = {g.name: k for k, g in enumerate(spec.vms)}
    members: dict[str, list[int]] = {}
    for i, gname in enumerate(vms.group):
        members.setdefault(gname, []).append(i)
    for gname, ids in members.items():
        k = group_index[gname]
        g = by_group[gname]
        home = store(g.datastore, ("vms", k, "datastore"))
        boot_at_start[ids] = g.boot_at_start
        for i in ids:
            boot[i] = g.boot or default_boot
        _group_disks(b, k, g, home, store, disks, tpl_names, tpl_disk, spec.templates, ids, clone,
                     template, vm_store)
    writes = []
    for k, g in enumerate(spec.vms):
        if g.write_trace is not None:
            table = trace_columns(b, k, g, vms, g.write_trace, "write_trace", ("disk_write",))
            if table is not None:
                assert table.disk_write is not None
                writes.append(RateSeries(np.array(members.get(g.name, []), dtype=np.int64),
                                         table.step_s, np.ascontiguousarray(table.disk_write.T)))
    b.raise_if_failed()
    snapshots = [(np.array(members[g.name], dtype=np.int64), g.snapshots.at,
                  math.inf if g.snapshots.every is None else g.snapshots.every, g.snapshots.keep,
                  1.0)
                 for g in spec.vms if g.snapshots is not None and g.name in members]
    cap = np.array([d.capacity * d.full_at for d in spec.datastores])
    exists, thin = disks.array("exists", bool), disks.array("thin", bool)
    taken = np.where(thin, disks.array("used"), disks.array("size")) * exists
    at_start = np.bincount(disks.array("store", np.int64), weights=taken, minlength=len(names))
    for k in np.flatnonzero(at_start > cap).tolist():
        b.fail(("datastores", k, "capacity"),
               f"datastore {names[k]!r} cannot hold what is on it at the start: "
               f"{format_quantity(at_start[k], 'bytes')} (thick disks whole, thin disks as "
               f"written) on {format_quantity(cap[k], 'bytes')}",
               "give it more capacity, make disks thin, or move some to another datastore")
    # A VM's writes spread over its disks in proportion to their sizes.
    disk_vm, size = disks.array("vm", np.int64), disks.array("size")
    mine = disk_vm >= 0
    total = np.bincount(disk_vm[mine], weights=size[mine], minlength=n)
    share = np.zeros(len(size))
    share[mine] = size[mine] / np.maximum(total[disk_vm[mine]], 1.0)
    by_name = {g.name: g.write_rate for g in spec.vms}
    return StorageSetup(
        store_names=names, store_capacity=cap,
        store_bandwidth=np.array([d.usable_bandwidth() for d in spec.datastores]),
        disk_vm=disk_vm, disk_store=disks.array("store", np.int64),
        disk_size=size, disk_thin=disks.array("thin", bool),
        disk_used=disks.array("used"), disk_new_writes=disks.array("new_writes"),
        disk_write_share=share,
        disk_exists=disks.array("exists", bool),
        vm_write_rate=np.array([by_name.get(gname, 0.0) for gname in vms.group]),
        vm_clone=clone, vm_template=template, vm_store=np.where(vm_store >= 0, vm_store, 0),
        template_names=tpl_names, template_disk=np.array(tpl_disk, dtype=np.int64),
        template_linked_s=np.array([t.linked_clone_time for t in spec.templates]),
        template_clone_rate=np.array([t.clone_rate for t in spec.templates]),
        host_storage=np.asarray(_host_storage(b, hosts), dtype=float),
        boot_at_start=boot_at_start, boot_io=np.array([x.io for x in boot]),
        boot_read_rate=np.array([x.read_rate for x in boot]),
        boot_init_s=np.array([x.init for x in boot]),
        snapshots=snapshots,
        write_series=writes,
    )


def _power_off(vms: Vms, by_group: dict[str, VmGroup]) -> None:
    """VMs of groups with ``power: off`` never start (their disks still take space)."""
    off = np.array([by_group[g].power == "off" if g in by_group else False for g in vms.group],
                   dtype=bool)
    vms.arrival_s[off] = np.inf


def _host_storage(b: _Builder, hosts: Hosts) -> list[float]:
    return [b.spec.hosts[g].storage for g in b.host_group_of]


def _group_disks(b: _Builder, k: int, g: VmGroup, home: int, store, disks: _Disks,  # type: ignore[no-untyped-def]
                 tpl_names: list[str], tpl_disk: list[int], templates: list,
                 ids: list[int], clone: np.ndarray, template: np.ndarray,
                 vm_store: np.ndarray) -> None:
    """Add the disks of the VMs ``ids`` of group ``g``: a full clone's copy of its template or
    a linked clone's delta, then the group's own disks."""
    tpl = -1
    if g.clone is not None:
        assert g.template is not None  # the schema checks it
        if g.template not in tpl_names:
            b.fail(("vms", k, "template"), f"clone: {g.clone} needs template {g.template!r} "
                   "under templates:", did_you_mean(g.template, tpl_names))
            return
        tpl = tpl_names.index(g.template)
    kind = {None: CLONE_NONE, "full": CLONE_FULL, "linked": CLONE_LINKED}[g.clone]
    vms = np.asarray(ids, dtype=np.int64)
    clone[vms] = kind
    template[vms] = tpl
    vm_store[vms] = home
    deploy = kind != CLONE_NONE  # the disks are created when the VM is deployed
    if tpl >= 0:
        t = templates[tpl]
        if kind == CLONE_LINKED:
            # The delta lives with the base; boots read the base there.
            at = disks.store_of(tpl_disk[tpl])
            disks.add(vms, at, t.disk.size, True, _LINKED_DELTA_BYTES, t.disk.new_writes, False)
            vm_store[vms] = at
        else:
            disks.add(vms, home, t.disk.size, t.disk.thin, resolve_share(t.disk.used, t.disk.size),
                      t.disk.new_writes, not deploy)
    for j, d in enumerate(g.disks):
        where = store(d.datastore, ("vms", k, "disks", j, "datastore")) if d.datastore else home
        disks.add(vms, where, d.size, d.thin, resolve_share(d.used, d.size), d.new_writes,
                  not deploy)

