"""VM inventories as CSV with RVTools' vInfo columns into VM records.

RVTools (https://www.robware.net/rvtools/, now Dell's) lists a vCenter's VMs, one per row, on its
vInfo tab; saved as CSV the header holds the tab's column titles ("VM", "Powerstate", "CPUs",
"Memory", ...), while its command-line CSV export prefixes them with the tab ("vInfoVMName",
"vInfoPowerstate", "vInfoCPUs", ...). Both spellings are read, in any order and in any letter
case, and extra columns are ignored. The delimiter (comma, semicolon or tab, as spreadsheet
locales write) is taken from the header line; the text may be UTF-8 (with or without a BOM) or
Windows-1252, as Excel saves it.

What maps:

- ``VM`` → the name; ``CPUs`` → vCPUs; ``Memory`` (MiB) → RAM. These three are required.
- ``Powerstate``: poweredOn → on, poweredOff → off; suspended → off (a suspended VM holds
  its disks but runs nothing), reported per VM.
- ``Template`` True: a template (gold image), not a VM: skipped and reported.
- ``Disks``, ``Provisioned MiB``, ``In Use MiB``: vInfo gives the VM's totals only, so the VM
  gets one disk of ``Provisioned MiB`` with ``In Use MiB`` used (reported when ``Disks`` > 1: the
  vDisk tab has each disk). The format is vmdk (these are vSphere VMs); the datastore is the
  bracketed name at the start of ``Path`` ("[datastore1] vm/vm.vmx"). vInfo does not say thin
  or thick: provisioning is left out.
- ``Network #1`` .. ``Network #4`` → one NIC each (reported when ``NICs`` counts more).

``Cluster``, ``Host`` and ``OS according to the configuration file`` have no place in a scenario's
VM group and are not mapped (said once per file).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from vsim.inventory.common import Disk, Inventory, Nic, VmRecord, bad_input, read_bytes

__all__ = ["CsvTable", "cells_of", "number", "read_csv_table", "read_vinfo"]

_MIB = 2**20

# field → the header spellings that carry it (compared in lower case, spaces collapsed).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("VM", "vInfoVMName"),
    "power": ("Powerstate", "vInfoPowerstate"),
    "template": ("Template", "vInfoTemplate"),
    "cpus": ("CPUs", "vInfoCPUs"),
    "memory": ("Memory", "vInfoMemory"),
    "nics": ("NICs", "vInfoNICs"),
    "disks": ("Disks", "vInfoNumVirtualDisks"),
    "provisioned": ("Provisioned MiB", "vInfoProvisioned"),
    "in_use": ("In Use MiB", "vInfoInUse"),
    "path": ("Path", "vInfoPath"),
    **{f"network{i}": (f"Network #{i}", f"vInfoNetwork{i}") for i in range(1, 5)},
}
_REQUIRED = ("name", "cpus", "memory")
_NOT_MAPPED = ("Cluster", "Host", "OS according to the configuration file")
_POWER = {"poweredon": "on", "poweredoff": "off", "suspended": "off"}
_TRUE = {"true", "yes", "1"}


def _key(title: str) -> str:
    return " ".join(title.split()).lower()


def _text(path: Path) -> str:
    data = read_bytes(path)
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise bad_input(path, "the file is neither UTF-8 nor Windows-1252 text",
                    hint="save the vInfo tab as CSV (UTF-8)")


@dataclass
class CsvTable:
    """A CSV file's header and its non-empty rows, each with the line it ends on."""

    file: str
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def columns(self, spec: dict[str, tuple[str, ...]]) -> dict[str, int | None]:
        """field → index of the first of its spellings in the header (None: absent)."""
        index = {_key(title): i for i, title in enumerate(self.header)}
        return {field: next((index[_key(s)] for s in spellings if _key(s) in index), None)
                for field, spellings in spec.items()}

    def has(self, title: str) -> bool:
        return any(_key(h) == _key(title) for h in self.header)

    def found(self) -> str:
        return ", ".join(h.strip() for h in self.header[:12]) + \
            (", ..." if len(self.header) > 12 else "")


def read_csv_table(path: Path) -> CsvTable:
    text = _text(path)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise bad_input(path, "empty CSV: no header line",
                            hint="export RVTools' vInfo tab as CSV, header included")
        rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise bad_input(path, f"malformed CSV: {exc}", line=reader.line_num,
                        hint="check the quoting on that line") from None
    return CsvTable(str(path), header, rows)


def cells_of(row: list[str], columns: dict[str, int | None]) -> dict[str, str]:
    return {field: (row[i].strip() if i is not None and i < len(row) else "")
            for field, i in columns.items()}


def read_vinfo(table: CsvTable) -> Inventory:
    path = table.file
    columns = table.columns(_COLUMNS)
    missing = [_COLUMNS[f][0] for f in _REQUIRED if columns[f] is None]
    if missing:
        raise bad_input(path, f"no {', '.join(missing)} column(s) in the header "
                              f"(found: {table.found()})",
                        line=1, hint="export RVTools' vInfo tab, which has the columns VM, "
                                     "CPUs and Memory (MiB)")
    inventory = Inventory(path)
    for line, row in table.rows:
        _row(cells_of(row, columns), columns, line, inventory)
    if columns["power"] is None:
        inventory.note("", "no Powerstate column: every VM taken as on")
    if inventory.vms and any(vm.disks for vm in inventory.vms):
        inventory.note("", "vInfo does not say thin or thick: disk provisioning left out")
    unmapped = [t for t in _NOT_MAPPED if table.has(t)]
    if unmapped:
        inventory.note("", f"columns not mapped (no place in a VM group): {', '.join(unmapped)}")
    return inventory


def number(cells: dict[str, str], field: str, line: int, path: str, *,
           required: bool = False, titles: dict[str, tuple[str, ...]] = _COLUMNS) -> float | None:
    """The cell of ``field`` as a number (None if empty); anything else is an error with the
    line. ``titles`` gives the column's name for the message."""
    text = cells[field].replace(" ", "").replace("\u00a0", "")
    if not text:
        if required:
            raise bad_input(path, f"{titles[field][0]} is empty for VM {cells['name']!r}",
                            line=line, hint="fill it in or remove the row")
        return None
    for candidate in (text, text.replace(",", "")):  # "4,096": a thousands separator
        try:
            value = float(candidate)
        except ValueError:
            continue
        if value >= 0:
            return value
    raise bad_input(path, f"{titles[field][0]} {cells[field]!r} of VM {cells['name']!r} is not "
                          "a number", line=line, hint="fix the cell or remove the row")


def _row(cells: dict[str, str], columns: dict, line: int, inventory: Inventory) -> None:
    name, path = cells["name"], inventory.file
    if not name:
        inventory.note("", f"line {line}: no VM name: row skipped")
        return
    if cells["template"].lower() in _TRUE:
        inventory.templates += 1
        inventory.note(f"template {name}", "skipped (a template, not a VM)")
        return
    cpus = number(cells, "cpus", line, path, required=True)
    memory = number(cells, "memory", line, path, required=True)
    assert cpus is not None and memory is not None  # required=True raises instead
    if not cpus.is_integer() or cpus < 1:
        raise bad_input(path, f"CPUs {cells['cpus']!r} of VM {name!r} is not a whole number of "
                              "vCPUs", line=line, hint="fix the cell or remove the row")

    power = "on"
    if columns["power"] is not None:
        state = cells["power"]
        power = _POWER.get(state.lower(), "on")
        if state.lower() == "suspended":
            inventory.note(name, f"Powerstate {state!r} taken as off")
        elif state.lower() not in _POWER:
            inventory.note(name, f"Powerstate {state!r} unknown: taken as on")

    disks = _disks(cells, line, name, inventory)
    networks = [cells[f"network{i}"] for i in range(1, 5) if cells[f"network{i}"]]
    nic_count = number(cells, "nics", line, path)
    if nic_count is not None and nic_count > len(networks):
        inventory.note(name, f"NICs {int(nic_count)} but {len(networks)} network(s) named in "
                             f"Network #1..#4: {len(networks)} NIC(s) written")
    nics = tuple(Nic(n) for n in networks)
    inventory.vms.append(VmRecord(name, int(cpus), round(memory * _MIB), power, disks, nics))


def _disks(cells: dict[str, str], line: int, name: str, inventory: Inventory) -> tuple[Disk, ...]:
    path = inventory.file
    count = number(cells, "disks", line, path)
    provisioned = number(cells, "provisioned", line, path)
    used = number(cells, "in_use", line, path)
    if count == 0 or (count is None and provisioned is None):
        return ()
    if provisioned is None:
        inventory.note(name, f"Disks {int(count or 0)} but no Provisioned MiB: disks left out")
        return ()
    if count is not None and count > 1:
        inventory.note(name, f"Disks {int(count)}: vInfo has only the total, written as one "
                             "disk (the vDisk tab has each disk)")
    datastore = None
    where = cells["path"]
    if where.startswith("[") and "]" in where:
        datastore = where[1:where.index("]")].strip() or None
    return (Disk(size=round(provisioned * _MIB), format="vmdk",
                 used=round(used * _MIB) if used is not None else None, datastore=datastore),)
