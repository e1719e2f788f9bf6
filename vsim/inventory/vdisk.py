"""RVTools' vDisk tab (CSV): each VM's disks, to replace the one total disk vInfo gives.

vInfo has one row per VM with its disks' totals; the vDisk tab has one row per virtual disk:
``VM``, ``Disk`` ("Hard disk 1"), ``Capacity MiB``, ``Thin`` (True/False) and ``Path``
("[datastore1] vm/vm.vmdk"), with the same header conventions as vInfo (see
:mod:`vsim.inventory.rvtools`; the command-line export's ``vDiskVMName``, ``vDiskName`` and
``vDiskCapacityMiB`` are read too). Given with a vInfo CSV in one import, it gives every VM of
the same name its disks one by one: the size, thin or thick, the datastore, format vmdk. Bytes
in use are per VM in vInfo, not per disk, so they stay only on a VM with a single disk.
"""

from __future__ import annotations

from dataclasses import replace

from vsim.inventory.common import Disk, Inventory, bad_input
from vsim.inventory.rvtools import CsvTable, cells_of, number

__all__ = ["apply_vdisk", "is_vdisk", "read_vdisk"]

_MIB = 2**20
_COLUMNS = {
    "name": ("VM", "vDiskVMName"),
    "disk": ("Disk", "vDiskName"),
    "capacity": ("Capacity MiB", "vDiskCapacityMiB"),
    "thin": ("Thin",),
    "path": ("Path",),
    "template": ("Template", "vDiskTemplate"),
}
_TRUE = {"true", "yes", "1"}


def is_vdisk(table: CsvTable) -> bool:
    """A vDisk tab: disk capacities and no CPUs column (vInfo has CPUs)."""
    columns = table.columns(_COLUMNS)
    return (columns["capacity"] is not None and columns["disk"] is not None
            and not table.has("CPUs") and not table.has("vInfoCPUs"))


def read_vdisk(table: CsvTable) -> Inventory:
    columns = table.columns(_COLUMNS)
    if columns["name"] is None:
        raise bad_input(table.file, f"no VM column in the vDisk header (found: {table.found()})",
                        line=1, hint="export RVTools' vDisk tab, which has VM, Disk and "
                                     "Capacity MiB")
    inventory = Inventory(table.file)
    for line, row in table.rows:
        cells = cells_of(row, columns)
        name = cells["name"]
        if not name or cells["template"].lower() in _TRUE:
            continue  # templates are skipped with their vInfo row
        size = number(cells, "capacity", line, table.file, required=True, titles=_COLUMNS)
        assert size is not None
        datastore = None
        if cells["path"].startswith("[") and "]" in cells["path"]:
            datastore = cells["path"][1:cells["path"].index("]")].strip() or None
        provisioning = None
        if columns["thin"] is not None and cells["thin"]:
            provisioning = "thin" if cells["thin"].lower() in _TRUE else "thick"
        disk = Disk(size=round(size * _MIB), provisioning=provisioning, format="vmdk",
                    datastore=datastore)
        inventory.disks_by_vm[name] = (*inventory.disks_by_vm.get(name, ()), disk)
    if columns["thin"] is None:
        inventory.note("", "no Thin column: disk provisioning left out")
    return inventory


def apply_vdisk(inventories: list[Inventory]) -> None:
    """Give the VMs read from the other files the disks the vDisk tables list for their names."""
    tables = [inv for inv in inventories if inv.disks_by_vm]
    if not tables:
        return
    by_name = {name: disks for inv in tables for name, disks in inv.disks_by_vm.items()}
    matched: set[str] = set()
    for inv in inventories:
        for i, vm in enumerate(inv.vms):
            disks = by_name.get(vm.name)
            if disks is None:
                continue
            matched.add(vm.name)
            used = vm.disks[0].used if len(vm.disks) == 1 and len(disks) == 1 else None
            if used is not None:
                disks = (replace(disks[0], used=used),)
            elif any(d.used is not None for d in vm.disks):
                inv.note(vm.name, f"{len(disks)} disks from the vDisk tab: In Use MiB is the "
                                  "VM's total, so used is left out")
            inv.vms[i] = replace(vm, disks=disks)
            # vInfo's note that it wrote the total as one disk no longer holds.
            inv.notes = [n for n in inv.notes
                         if not (n.subject == vm.name and n.text.startswith("Disks "))]
        if all(d.provisioning is not None for vm in inv.vms for d in vm.disks):
            inv.notes = [n for n in inv.notes
                         if n.subject or "provisioning left out" not in n.text]
    for inv in tables:
        for name in inv.disks_by_vm:
            if name not in matched:
                inv.note(name, "in the vDisk tab but in no other file read: its disks are "
                               "not used")
