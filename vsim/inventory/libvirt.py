"""libvirt domain XML (what ``virsh dumpxml NAME`` prints) into a VM record.

The format is libvirt's "Domain XML format" (https://libvirt.org/formatdomain.html). What is read:

- ``<name>``;
- ``<vcpu>``: its ``current`` attribute (the vCPUs online) when given, else its text (the
  maximum);
- ``<memory unit=...>``: the maximum allocation, in ``unit`` (default KiB; libvirt spells
  b/bytes, KB, k/KiB, MB, M/MiB, GB, G/GiB, TB, T/TiB; the spellings without "i" are decimal);
- every ``<devices><disk device="disk">`` (CD-ROMs, floppies and LUNs are not disks here): the
  image format from ``<driver type=...>`` (qcow2, raw, vmdk, vhdx; libvirt's "vpc" is the older
  VHD and is not mapped), the datastore left out. A file-backed qcow2/vmdk/vhdx image grows as it
  is written, so it is thin; a raw file or a block device is taken as thick;
- every ``<devices><interface>``: the network of ``<source network=...>`` (type network), the
  bridge of ``<source bridge=...>`` (type bridge), else the device of ``<source dev=...>``.

A domain's XML does not hold its disks' sizes (those live in the image files, which
``virsh vol-info`` or ``qemu-img info`` would read): the report says so per VM and disk, and
:func:`vsim.inventory.read_inventories` gives them ``--disk-size-default`` or leaves them out. ``dumpxml`` does not include the domain's state (it is ``virsh
domstate``'s): the VM is taken as on.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vsim.inventory.common import (
    Disk,
    Inventory,
    Nic,
    VmRecord,
    bad_input,
    bytes_from_units,
    parse_xml,
    read_bytes,
)

__all__ = ["read_domain", "read_domain_bytes"]

_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vhdx": "vhdx"}
_GROWS_AS_WRITTEN = {"qcow2", "vmdk", "vhdx"}


def read_domain(path: Path) -> Inventory:
    return read_domain_bytes(read_bytes(path), str(path))


def read_domain_bytes(data: bytes, label: str) -> Inventory:
    root = parse_xml(data, label, "domain with `virsh dumpxml`")
    if root.tag != "domain":
        raise bad_input(label, f"not a libvirt domain: the root element is <{root.tag}>, "
                               "not <domain>",
                        hint="give the output of `virsh dumpxml NAME`, an OVF, or a CSV")
    inventory = Inventory(label)
    name = (root.findtext("name") or "").strip()
    if not name:
        raise bad_input(label, "<domain> has no <name>", hint="add <name>...</name>")
    vcpus = _vcpus(root, label)
    ram = _memory(root, label)
    # CD-ROMs, floppies and LUNs are not virtual disks; device= defaults to "disk".
    elements = [d for d in root.findall("devices/disk") if d.get("device", "disk") == "disk"]
    disks = [_disk(element, number, name, inventory)
             for number, element in enumerate(elements, start=1)]
    nics = [_nic(element, number, name, inventory)
            for number, element in enumerate(root.findall("devices/interface"), start=1)]
    inventory.vms.append(VmRecord(name, vcpus, ram, "on", tuple(disks), tuple(nics)))
    inventory.note(name, "power state not in the domain XML: taken as on")
    return inventory


def _vcpus(root: ET.Element, label: str) -> int:
    element = root.find("vcpu")
    if element is None:
        return 1  # libvirt's default: one vCPU
    text = element.get("current") or (element.text or "").strip()
    if not text.isdigit() or int(text) < 1:
        raise bad_input(label, f"<vcpu> {text!r} is not a number of vCPUs",
                        hint="write e.g. <vcpu>2</vcpu>")
    return int(text)


def _memory(root: ET.Element, label: str) -> int:
    element = root.find("memory")
    if element is None:
        raise bad_input(label, "<domain> has no <memory>",
                        hint="add e.g. <memory unit='GiB'>4</memory>")
    unit = element.get("unit", "KiB")
    factor = bytes_from_units(unit)
    text = (element.text or "").strip()
    if factor is None or not text.isdigit():
        raise bad_input(label, f"<memory unit={unit!r}>{text}</memory> is not a size",
                        hint="libvirt units are b, KiB, MiB, GiB, TiB (or KB, MB, ... decimal)")
    return int(text) * factor


def _disk(element: ET.Element, number: int, name: str, inventory: Inventory) -> Disk:
    driver = element.find("driver")
    kind = driver.get("type") if driver is not None else None
    fmt = _FORMATS.get(kind or "")
    if kind is None:
        inventory.note(name, f"disk {number}: no <driver type=...>: format left out")
    elif fmt is None:
        inventory.note(name, f"disk {number}: format {kind!r} is not vmdk, qcow2, vhdx or raw: "
                             "left out")
    if element.get("type") == "file" and fmt in _GROWS_AS_WRITTEN:
        provisioning = "thin"
    else:
        provisioning = "thick"
        if element.get("type") == "file" and fmt == "raw":
            inventory.note(name, f"disk {number}: raw image file taken as thick (a sparse file "
                                 "would be thin)")
    inventory.note(name, f"disk {number}: no size in the domain XML")
    return Disk(provisioning=provisioning, format=fmt)


def _nic(element: ET.Element, number: int, name: str, inventory: Inventory) -> Nic:
    source = element.find("source")
    network = None
    if source is not None:
        network = source.get("network") or source.get("bridge") or source.get("dev")
    if network is None:
        inventory.note(name, f"NIC {number}: interface type {element.get('type')!r} names no "
                             "network: left out")
    return Nic(network)
