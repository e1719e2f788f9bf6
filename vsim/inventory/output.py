"""Imported VMs into a scenario's ``vms:`` list: grouping, exact sizes, YAML with comments.

VMs that are identical in everything the scenario models (vCPUs, RAM, power state, every disk and
every NIC) become one VM group with a ``count``, named after its first VM. The schema has no place
for the members' names, so they go in a YAML comment above the group; what the readers could not
map goes in comments at the top of the file.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vsim.inventory.common import Disk, Inventory, VmRecord

__all__ = ["VmGroupDraft", "exact_size", "group_vms", "report_lines", "scenario_text",
           "vms_text", "write_atomic"]


@dataclass
class VmGroupDraft:
    name: str
    members: list[VmRecord]

    def as_yaml_data(self) -> dict[str, Any]:
        first = self.members[0]
        data: dict[str, Any] = {"name": self.name, "count": len(self.members),
                                "vcpus": first.vcpus, "ram": exact_size(first.ram),
                                "power": first.power}
        if first.disks:
            data["disks"] = [_disk_data(d) for d in first.disks]
        if first.nics:
            data["nics"] = [{"network": n.network} if n.network is not None else {}
                            for n in first.nics]
        return data


def _disk_data(disk: Disk) -> dict[str, Any]:
    # Only what the source stated: a missing size is left for the loader to ask for by its field
    # path, rather than filled with an invented number.
    data: dict[str, Any] = {}
    if disk.size is not None:
        data["size"] = exact_size(disk.size)
    if disk.provisioning is not None:
        data["provisioning"] = disk.provisioning
    if disk.format is not None:
        data["format"] = disk.format
    if disk.used is not None:
        data["used"] = exact_size(disk.used)
    if disk.datastore is not None:
        data["datastore"] = disk.datastore
    return data


_UNITS = [("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)]


def exact_size(n_bytes: int) -> str:
    """``n_bytes`` in the largest binary unit that writes it exactly with at most two decimals.

    4294967296 → "4 GiB", 1610612736 → "1.5 GiB", 12345 MiB → "12345 MiB". Unlike
    :func:`vsim.units.format_quantity` (three significant digits, for display) this never rounds:
    an imported disk must keep its size to the byte.
    """
    for unit, factor in _UNITS:
        if n_bytes >= factor and (n_bytes * 100) % factor == 0:
            hundredths = n_bytes * 100 // factor
            whole, frac = divmod(hundredths, 100)
            text = str(whole) if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")
            return f"{text} {unit}"
    return f"{n_bytes} B"


_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _group_name(vm_name: str, taken: set[str]) -> str:
    # `--set vms.NAME.count=...` addresses groups by name in a dotted path, so dots, spaces and
    # the like become '-'.
    base = _NOT_NAME.sub("-", vm_name).strip("-_") or "vm"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def group_vms(vms: list[VmRecord]) -> list[VmGroupDraft]:
    """Identical VMs into groups, in the order their first members were read."""
    by_identity: dict[tuple, list[VmRecord]] = {}
    for vm in vms:
        by_identity.setdefault(vm.identity(), []).append(vm)
    taken: set[str] = set()
    return [VmGroupDraft(_group_name(members[0].name, taken), members)
            for members in by_identity.values()]


def report_lines(inventories: list[Inventory], groups: list[VmGroupDraft]) -> list[str]:
    """What was read and what could not be mapped: the stderr report and the YAML's header."""
    lines = []
    for inv in inventories:
        if inv.disks_by_vm:
            n_disks = sum(len(d) for d in inv.disks_by_vm.values())
            lines.append(f"{inv.file}: {n_disks} disk(s) of {len(inv.disks_by_vm)} VM(s)")
            continue
        skipped = f", {inv.templates} template(s) skipped" if inv.templates else ""
        lines.append(f"{inv.file}: {len(inv.vms)} VM(s){skipped}")
    total = sum(len(inv.vms) for inv in inventories)
    lines.append(f"{total} VM(s) in {len(groups)} group(s)")
    notes = [(inv.file, n) for inv in inventories for n in inv.notes]
    if notes:
        lines.append("not mapped, or assumed:")
        lines += [f"  {file}: {note.render()}" for file, note in notes]
    return lines


class _Dumper(yaml.SafeDumper):
    """Safe YAML with nested lists indented under their key, as scenario files are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=10_000)


def _groups_block(groups: list[VmGroupDraft]) -> str:
    """The ``vms:`` list, each group preceded by a comment naming its members."""
    if not groups:
        return "vms: []\n"
    out = ["vms:"]
    for group in groups:
        names = ", ".join(vm.name for vm in group.members)
        out.append(f"  # {len(group.members)} VM(s): {_one_line(names)}")
        item = _dump([group.as_yaml_data()])
        out += ["  " + line for line in item.rstrip("\n").splitlines()]
    return "\n".join(out) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comment(lines: list[str]) -> str:
    return "".join(f"# {_one_line(line)}\n" if line.strip() else "#\n" for line in lines)


def vms_text(inventories: list[Inventory], groups: list[VmGroupDraft]) -> str:
    """A YAML document holding only the ``vms:`` list, the report as its header."""
    header = ["VM groups imported by `vsim import`", *report_lines(inventories, groups)]
    return _comment(header) + _groups_block(groups)


def scenario_text(base: dict[str, Any], base_name: str, inventories: list[Inventory],
                  groups: list[VmGroupDraft]) -> str:
    """``base`` (a scenario's data) with its ``vms`` replaced by ``groups``, keys in their order.

    The base file's own comments are not kept (it is read with ``yaml.safe_load``).
    """
    base = dict(base)
    added = _complete(base, groups)
    header = [f"{base_name} with its vms replaced by the VM groups imported by `vsim import`",
              *report_lines(inventories, groups), *added]
    parts = [_comment(header)]
    keys = list(base) if "vms" in base else [*base, "vms"]
    for key in keys:
        if key == "vms":
            parts.append(_groups_block(groups))
        else:
            parts.append(_dump({key: base[key]}))
    return "".join(parts)


def _complete(base: dict[str, Any], groups: list[VmGroupDraft]) -> list[str]:
    """Add to ``base`` the networks and datastores the imported VMs name and it lacks, so that
    the scenario runs as written; returns what was added, for the header. An inventory does not
    give a datastore's capacity: it is set to what the imported disks on it provision (thick
    disks whole), to be edited."""
    notes: list[str] = []
    nets = list(base.get("networks") or [])
    have = {n.get("name") for n in nets if isinstance(n, dict)}
    for group in groups:
        for nic in group.members[0].nics:
            if nic.network is not None and nic.network not in have:
                have.add(nic.network)
                nets.append({"name": nic.network})
                notes.append(f"network {nic.network!r} added (it carries no traffic until its "
                             "vNICs are given some)")
    if nets:
        base["networks"] = nets
    stores = list(base.get("datastores") or [])
    known = {str(d["name"]) for d in stores if isinstance(d, dict) and d.get("name")}
    provisioned: dict[str, int] = {}
    for group in groups:
        for disk in group.members[0].disks:
            name = disk.datastore or (next(iter(known)) if known else "imported")
            if name not in known and disk.size is not None:
                provisioned[name] = provisioned.get(name, 0) + disk.size * len(group.members)
    for name, total in provisioned.items():
        capacity = -(-total // 2**30) * 2**30  # whole GiB, rounded up
        stores.append({"name": name, "capacity": exact_size(capacity)})
        notes.append(f"datastore {name!r} added with the capacity its imported disks provision "
                     f"({exact_size(capacity)}): the inventory does not say; set the real one")
    if stores:
        base["datastores"] = stores
    return notes


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once: a temporary file beside it, then a rename, so an
    interrupted or failed write never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file private; the output is an ordinary file, readable as usual.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
