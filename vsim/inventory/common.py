"""The neutral VM record every inventory reader produces, and the errors they raise.

Each reader (OVF/OVA, libvirt domain XML, RVTools vInfo or vDisk CSV) turns one file into an
:class:`Inventory`: the VMs it describes, in SI units (bytes), plus :class:`Note` s saying what it
could not map and what it assumed. Nothing here knows about YAML or the scenario schema; grouping
and writing live in :mod:`vsim.inventory.output`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from vsim.errors import Problem, ScenarioError

__all__ = [
    "Disk",
    "Inventory",
    "Nic",
    "Note",
    "VmRecord",
    "attr",
    "bad_input",
    "bytes_from_units",
    "local",
    "parse_xml",
    "read_bytes",
]


@dataclass(frozen=True)
class Disk:
    """One virtual disk. ``None`` means the source does not say (and the YAML leaves it out)."""

    size: int | None = None  # bytes
    provisioning: str | None = None  # "thin" | "thick"
    format: str | None = None  # "vmdk" | "qcow2" | "vhdx" | "raw"
    used: int | None = None  # bytes written
    datastore: str | None = None


@dataclass(frozen=True)
class Nic:
    network: str | None = None


@dataclass(frozen=True)
class VmRecord:
    name: str
    vcpus: int
    ram: int  # bytes
    power: str = "on"  # "on" | "off"
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()

    def identity(self) -> tuple:
        """What makes two VMs the same VM group (everything but the name)."""
        return (self.vcpus, self.ram, self.power, self.disks, self.nics)


@dataclass(frozen=True)
class Note:
    """Something the reader could not map, or an assumption it made, about one subject.

    ``subject`` is a VM's name, "template NAME", or "" for the file as a whole.
    """

    subject: str
    text: str

    def render(self) -> str:
        return f"{self.subject}: {self.text}" if self.subject else self.text


@dataclass
class Inventory:
    """What one input file held."""

    file: str
    vms: list[VmRecord] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    templates: int = 0  # templates seen and skipped
    # A table of disks only (RVTools' vDisk tab): VM name → its disks, for VMs of other files.
    disks_by_vm: dict[str, tuple[Disk, ...]] = field(default_factory=dict)

    def note(self, subject: str, text: str) -> None:
        self.notes.append(Note(subject, text))


def bad_input(file: str | Path, message: str, *, line: int | None = None,
              hint: str = "") -> ScenarioError:
    """The one error a reader raises: the file (and line), what is wrong, what to do."""
    return ScenarioError([Problem(message, line=line, hint=hint)], file=str(file))


# Allocation units as OVF writes them (DSP0243 after DSP0004 programmatic units: "byte * 2^20"),
# as older VMware descriptors write them ("MegaBytes"), and as libvirt writes them (KiB, M, GB...).
_POWER = re.compile(r"^\s*byte\s*(?:\*\s*(\d+)\s*\^\s*(\d+))?\s*$", re.IGNORECASE)
_NAMED_UNITS = {
    "b": 1, "byte": 1, "bytes": 1,
    "k": 2**10, "kib": 2**10, "kilobytes": 2**10, "kb": 10**3,
    "m": 2**20, "mib": 2**20, "megabytes": 2**20, "mb": 10**6,
    "g": 2**30, "gib": 2**30, "gigabytes": 2**30, "gb": 10**9,
    "t": 2**40, "tib": 2**40, "terabytes": 2**40, "tb": 10**12,
}
# OVF's "MegaBytes" and friends mean binary multiples (VMware writes 1024 MegaBytes for 1 GiB),
# whereas libvirt's "MB" is decimal; the table above keeps both readings apart by spelling.


def bytes_from_units(units: str) -> int | None:
    """Bytes per unit of ``units`` ("byte * 2^20" → 1048576, "KiB" → 1024), or None if unknown."""
    match = _POWER.match(units)
    if match:
        base, exponent = match.groups()
        return int(base) ** int(exponent) if base else 1
    return _NAMED_UNITS.get(units.strip().lower())


def parse_xml(data: bytes, label: str, what: str) -> ET.Element:
    """The root element of ``data``; malformed XML is one error with its line and column.

    Python's expat-based parser does not fetch external entities, so an inventory cannot make
    the import read other files or the network.
    """
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        raise bad_input(label, f"malformed XML at column {column + 1}: {reason}", line=line,
                        hint=f"fix the file, or export the {what} again") from None


def local(tag: str) -> str:
    """An element's or attribute's name without its namespace: '{ns}Item' → 'Item'."""
    return tag.rsplit("}", 1)[-1]


def attr(element: ET.Element, name: str) -> str | None:
    """The attribute ``name`` whatever its namespace (OVF writes ovf:capacity, some tools plain
    capacity)."""
    for key, value in element.attrib.items():
        if local(key) == name:
            return value
    return None


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise bad_input(path, f"cannot read the file: {exc.strerror or exc}",
                        hint="check the path and its permissions") from None
