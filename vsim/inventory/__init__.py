"""Inventories of VMs that run today (OVF/OVA, libvirt domain XML, RVTools vInfo and vDisk CSV)
into a scenario's ``vms:`` list.

One module per format turns a file into an :class:`Inventory` of neutral :class:`VmRecord` s and
notes on what it could not map; :mod:`vsim.inventory.output` groups identical VMs and writes the
YAML. This package reads files and writes text: it knows nothing of the CLI or of runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vsim.inventory.common import (
    Disk,
    Inventory,
    Nic,
    Note,
    VmRecord,
    bad_input,
    local,
    parse_xml,
    read_bytes,
)
from vsim.inventory.libvirt import read_domain_bytes
from vsim.inventory.output import (
    VmGroupDraft,
    exact_size,
    group_vms,
    report_lines,
    scenario_text,
    vms_text,
    write_atomic,
)
from vsim.inventory.ovf import read_ova, read_ovf, read_ovf_bytes
from vsim.inventory.rvtools import read_csv_table, read_vinfo
from vsim.inventory.vdisk import apply_vdisk, is_vdisk, read_vdisk
from vsim.inventory.workbook import read_workbook

__all__ = [
    "Disk",
    "Inventory",
    "Nic",
    "Note",
    "VmGroupDraft",
    "VmRecord",
    "exact_size",
    "fill_disk_sizes",
    "group_vms",
    "read_inventories",
    "read_inventory",
    "report_lines",
    "scenario_text",
    "vms_text",
    "write_atomic",
]

_KNOWN = ".ovf (OVF descriptor), .ova (OVF package), .xml (libvirt domain from `virsh dumpxml`, " \
         "or an OVF), .xlsx (an RVTools workbook) or .csv (RVTools vInfo or vDisk)"


def read_inventory(path: str | Path) -> Inventory:
    """The VMs in one inventory file, its kind taken from its extension (and, for .xml, from its
    root element)."""
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise bad_input(path, what, hint="check the path")
    suffix = path.suffix.lower()
    if suffix == ".ovf":
        return read_ovf(path)
    if suffix == ".ova":
        return read_ova(path)
    if suffix == ".csv":
        table = read_csv_table(path)
        return read_vdisk(table) if is_vdisk(table) else read_vinfo(table)
    if suffix == ".xml":
        return _read_xml(read_bytes(path), path)
    if suffix == ".xlsx":
        return read_workbook(path)
    if suffix == ".xls":
        raise bad_input(path, "an Excel 97-2003 workbook, which vsim does not read",
                        hint="save it as .xlsx, or save the vInfo tab as CSV")
    raise bad_input(path, f"unknown inventory file type {suffix or '(no extension)'!r}",
                    hint=f"give {_KNOWN}")


def read_inventories(paths: list[str | Path] | tuple[Path, ...],
                     disk_size_default: int | None = None) -> list[Inventory]:
    """Every file read, then RVTools vDisk tables (if any) give the VMs of the others their
    disks one by one."""
    inventories = [read_inventory(p) for p in paths]
    apply_vdisk(inventories)
    for inv in inventories:
        fill_disk_sizes(inv, disk_size_default)
    return inventories


def fill_disk_sizes(inventory: Inventory, default: int | None) -> None:
    """Disks the file gives no size for get ``default``; without one they stay without a size,
    so that loading the scenario asks for it by its field path instead of simulating an
    invented one. One note per file says which (the readers note each disk and why)."""
    missing = sum(d.size is None for vm in inventory.vms for d in vm.disks)
    if not missing:
        return
    if default is None:
        inventory.note("", f"{missing} disk(s) without a size: size left out (fill it in, or "
                           "give --disk-size-default)")
        return
    inventory.vms = [replace(vm, disks=tuple(d if d.size is not None else replace(d, size=default)
                                             for d in vm.disks))
                     for vm in inventory.vms]
    inventory.note("", f"{missing} disk(s) without a size: --disk-size-default "
                       f"{exact_size(default)} taken")


def _read_xml(data: bytes, path: Path) -> Inventory:
    root = parse_xml(data, str(path), "inventory")
    if local(root.tag) == "Envelope":
        return read_ovf_bytes(data, str(path))
    if root.tag == "domain":
        return read_domain_bytes(data, str(path))
    raise bad_input(path, f"unknown XML inventory: the root element is <{local(root.tag)}>",
                    hint="give a libvirt <domain> (`virsh dumpxml NAME`) or an OVF <Envelope>")
