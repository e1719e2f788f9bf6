"""OVF descriptors (.ovf) and OVA packages (.ova) into VM records.

The format is DMTF DSP0243, Open Virtualization Format Specification (1.x and 2.x:
https://www.dmtf.org/standards/ovf; the envelope schema is DSP8023,
http://schemas.dmtf.org/ovf/envelope/1/dsp8023_1.0.0.xsd). What is read:

- every ``VirtualSystem`` in the envelope, also those inside a ``VirtualSystemCollection``; its
  name is its ``Name`` element, else its ``ovf:id``;
- its ``VirtualHardwareSection`` items (``Item``, and OVF 2's ``StorageItem`` and
  ``EthernetPortItem``), by their CIM ``ResourceType`` (CIM_ResourceAllocationSettingData):
  3 = processor (``VirtualQuantity`` vCPUs), 4 = memory (``VirtualQuantity`` in
  ``AllocationUnits`` written as DSP0004 programmatic units, "byte * 2^20", or VMware's
  "MegaBytes"), 17 = disk drive (``HostResource`` "ovf:/disk/ID" pointing into the
  ``DiskSection``), 10 = Ethernet adapter (``Connection`` = a network of the ``NetworkSection``);
- the ``DiskSection``'s ``Disk``: ``ovf:capacity`` in ``ovf:capacityAllocationUnits`` (default
  bytes) is the size, ``ovf:populatedSize`` the bytes in use, and ``ovf:format`` (a URL such as
  VMware's ".../vmdk.html#streamOptimized") or else the extension of the ``References/File`` it
  names, the image format;
- items that apply to one deployment option only (``ovf:configuration``) count for the default
  option of the ``DeploymentOptionSection``.

An OVA is a tar archive whose first member is the descriptor (DSP0243, "OVF package"); only
that member is read, nothing is extracted.

An OVF describes a package, not a running VM: it has no power state (the VMs are taken as on)
and no thin/thick provisioning (left out). Both are said once per file in the report.
"""

from __future__ import annotations

import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

from vsim.inventory.common import (
    Disk,
    Inventory,
    Nic,
    VmRecord,
    attr,
    bad_input,
    bytes_from_units,
    local,
    parse_xml,
    read_bytes,
)

__all__ = ["read_ova", "read_ovf", "read_ovf_bytes"]

_CPU, _MEMORY, _ETHERNET, _DISK = "3", "4", "10", "17"


def read_ovf(path: Path) -> Inventory:
    return read_ovf_bytes(read_bytes(path), str(path))


def read_ova(path: Path) -> Inventory:
    """The descriptor inside an OVA, read straight from the archive."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            member = next((m for m in tar if m.isfile() and m.name.lower().endswith(".ovf")),
                          None)
            if member is None:
                raise bad_input(path, "no .ovf descriptor inside this OVA",
                                hint="an OVA is a tar archive holding NAME.ovf first; repack "
                                     "it, or import the .ovf itself")
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file always has contents
            data = handle.read()
    except (tarfile.TarError, EOFError) as exc:
        raise bad_input(path, f"not a readable OVA (tar) archive: {exc}",
                        hint="check the download, or import the .ovf descriptor instead") from None
    except OSError as exc:
        raise bad_input(path, f"cannot read the file: {exc.strerror or exc}",
                        hint="check the path and its permissions") from None
    inventory = read_ovf_bytes(data, f"{path}[{member.name}]")
    inventory.file = str(path)
    return inventory


def read_ovf_bytes(data: bytes, label: str) -> Inventory:
    root = parse_xml(data, label, "OVF descriptor")
    if local(root.tag) != "Envelope":
        raise bad_input(label, f"not an OVF descriptor: the root element is <{local(root.tag)}>, "
                               "not <Envelope>",
                        hint="give a DMTF OVF descriptor (.ovf) or an OVA")
    inventory = Inventory(label)
    files = {attr(f, "id"): attr(f, "href") or "" for f in _all(root, "File")}
    disks = {attr(d, "diskId"): d for d in _all(root, "Disk")}
    default_config = _default_configuration(root)
    systems = _all(root, "VirtualSystem")
    for system in systems:
        vm = _virtual_system(system, disks, files, default_config, inventory)
        if vm is not None:
            inventory.vms.append(vm)
    if systems:
        inventory.note("", "an OVF has no power state: VMs taken as on")
        if any(vm.disks for vm in inventory.vms):
            inventory.note("", "an OVF does not say thin or thick: disk provisioning left out")
    else:
        inventory.note("", "no VirtualSystem in the descriptor: nothing imported")
    return inventory


def _all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if local(e.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if local(c.tag) == name), None)


def _default_configuration(root: ET.Element) -> str | None:
    configs = _all(root, "Configuration")
    chosen = next((c for c in configs if (attr(c, "default") or "").lower() == "true"),
                  configs[0] if configs else None)
    return attr(chosen, "id") if chosen is not None else None


def _items(system: ET.Element, default_config: str | None) -> list[dict[str, str]]:
    """The hardware items that apply, each as {property name: text}."""
    section = next((e for e in system.iter() if local(e.tag) == "VirtualHardwareSection"), None)
    if section is None:
        return []
    items = []
    for item in section:
        if not local(item.tag).endswith("Item"):
            continue
        only_for = (attr(item, "configuration") or "").split()
        if only_for and default_config not in only_for:
            continue
        props: dict[str, str] = {}
        for prop in item:
            props.setdefault(local(prop.tag), (prop.text or "").strip())
        items.append(props)
    return items


def _quantity(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and value >= 0 else None


def _virtual_system(system: ET.Element, disks: dict, files: dict, default_config: str | None,
                    inventory: Inventory) -> VmRecord | None:
    name_el = _child(system, "Name")
    name = (name_el.text or "").strip() if name_el is not None else ""
    name = name or attr(system, "id") or f"vm{len(inventory.vms) + 1}"
    items = _items(system, default_config)
    by_type: dict[str, list[dict[str, str]]] = {}
    for item in items:
        by_type.setdefault(item.get("ResourceType", ""), []).append(item)

    cpus = by_type.get(_CPU, [])
    vcpus = _quantity(cpus[0].get("VirtualQuantity", "")) if cpus else None
    if not vcpus:
        inventory.note(name, "no processor Item (ResourceType 3) with a VirtualQuantity: "
                             "taken as 1 vCPU")
        vcpus = 1

    memory = by_type.get(_MEMORY, [])
    ram = _memory_bytes(memory[0], name, inventory) if memory else None
    if ram is None:
        inventory.note(name, "skipped: no memory Item (ResourceType 4) with a VirtualQuantity "
                             "in known AllocationUnits")
        return None

    vm_disks = []
    for number, item in enumerate(by_type.get(_DISK, []), start=1):
        vm_disks.append(_disk(item, number, disks, files, name, inventory))
    nics = []
    for number, item in enumerate(by_type.get(_ETHERNET, []), start=1):
        network = item.get("Connection") or None
        if network is None:
            inventory.note(name, f"NIC {number}: no Connection (network name)")
        nics.append(Nic(network))
    return VmRecord(name, vcpus, ram, "on", tuple(vm_disks), tuple(nics))


def _memory_bytes(item: dict[str, str], name: str, inventory: Inventory) -> int | None:
    quantity = _quantity(item.get("VirtualQuantity", ""))
    if quantity is None:
        return None
    units = item.get("AllocationUnits") or ""
    if not units:
        # DSP0243 requires the units; descriptors without them are almost always MiB.
        inventory.note(name, "memory: no AllocationUnits, taken as MiB (byte * 2^20)")
        return quantity * 2**20
    factor = bytes_from_units(units)
    if factor is None:
        inventory.note(name, f"memory: unknown AllocationUnits {units!r}")
        return None
    return quantity * factor


_FORMATS = {".vmdk": "vmdk", ".qcow2": "qcow2", ".vhdx": "vhdx", ".img": "raw", ".raw": "raw"}


def _format_of(url: str, href: str) -> str | None:
    url = url.lower()
    for key, fmt in (("vmdk", "vmdk"), ("qcow", "qcow2"), ("vhdx", "vhdx"), ("raw", "raw")):
        if key in url:
            return fmt
    if not url:
        return _FORMATS.get(Path(href).suffix.lower())
    return None


def _disk(item: dict[str, str], number: int, disks: dict, files: dict, name: str,
          inventory: Inventory) -> Disk:
    ref = item.get("HostResource", "")
    disk_id = ref.rsplit("disk/", 1)[-1] if "disk/" in ref else None
    disk = disks.get(disk_id)
    if disk is None:
        inventory.note(name, f"disk {number}: HostResource {ref!r} names no Disk of the "
                             "DiskSection: no size")
        return Disk()
    href = files.get(attr(disk, "fileRef"), "")
    url = attr(disk, "format") or ""
    fmt = _format_of(url, href)
    if fmt is None and (url or href):
        inventory.note(name, f"disk {number}: format {url or href!r} is not vmdk, qcow2, vhdx "
                             "or raw: left out")
    size = _capacity(disk, number, name, inventory)
    used = _quantity(attr(disk, "populatedSize") or "")
    return Disk(size=size, format=fmt, used=used)


def _capacity(disk: ET.Element, number: int, name: str, inventory: Inventory) -> int | None:
    text = attr(disk, "capacity") or ""
    units = attr(disk, "capacityAllocationUnits") or "byte"
    quantity = _quantity(text)
    factor = bytes_from_units(units)
    if quantity is None or factor is None:
        # e.g. "${disk.size}": a property the deployer fills in.
        what = f"capacity {text!r}" if quantity is None else f"capacity units {units!r}"
        inventory.note(name, f"disk {number}: {what} is not a size: no size")
        return None
    return quantity * factor
