"""The scenario format for storage, templates and networks (part of :mod:`vsim.scenario.schema`).

Datastores hold the VMs' virtual disks and the templates' base disks. A disk is thick (its whole
size taken when it is created) or thin (space taken as data is written); a snapshot is a delta
that takes every write until it is consolidated. VMs deployed from a template are full clones
(the template's data copied at the datastores' bandwidth) or linked clones (a delta on the
template's disk, created in seconds). vNICs attach VMs to named networks; their traffic shares the
host's uplinks with migrations and replication.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vsim.scenario.quantities import (
    BandwidthLimit,
    BytesOrShare,
    Fraction,
    Interval,
    RamSize,
    Rate,
    Time,
    check_within,
)
from vsim.units import parse_quantity

__all__ = ["DISK_FORMATS", "BytesOrShare", "DatastoreSpec", "DiskSpec", "NetworkSpec", "NicSpec",
           "SnapshotSpec", "TemplateSpec", "check_vm_storage", "resolve_share"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# What each format's tools create unless told otherwise: qemu-img makes sparse qcow2 files; vSphere
# creates VMDKs thick (lazy zeroed) by default; Hyper-V's VHDX default is dynamically expanding;
# a raw image is a preallocated file. (qemu-img(1); vSphere "Virtual Disk Provisioning Policies";
# Hyper-V New-VHD -Dynamic default in Hyper-V Manager.)
DISK_FORMATS: dict[str, str] = {"qcow2": "thin", "vmdk": "thick", "vhdx": "thin", "raw": "thick"}


def resolve_share(value: str | float, whole: float) -> float:
    """Bytes from a :data:`BytesOrShare` value and the size it is a share of."""
    if isinstance(value, str):
        return parse_quantity(value, "fraction") * whole
    return float(value)


class DatastoreSpec(_Strict):
    """A datastore (a LUN, an NFS export, a vSAN or Ceph pool): its space and how fast it moves
    data. ``iops`` with ``io_size`` caps the bandwidth too (small I/O runs out of operations before
    bytes)."""

    name: str
    site: str | None = Field(None, description="default: the first site")
    capacity: RamSize = Field(description="usable space, e.g. '10 TiB'")
    bandwidth: BandwidthLimit = Field(math.inf, description="bytes per second it reads and "
                                      "writes in all: clones, consolidations and boots share it")
    iops: float | None = Field(None, gt=0, description="operations per second")
    io_size: RamSize = Field(64 * 2.0**10, description="bytes per operation, with iops")
    full_at: Fraction = Field(1.0, description="fill at which thin disks can no longer grow "
                              "(some arrays stop writes before 100 %)")

    def usable_bandwidth(self) -> float:
        if self.iops is None:
            return self.bandwidth
        return min(self.bandwidth, self.iops * self.io_size)


class DiskSpec(_Strict):
    """A virtual disk of each VM of a group (or a template's base disk)."""

    size: RamSize = Field(description="the disk's virtual size, e.g. '40 GiB'")
    format: Literal["vmdk", "qcow2", "vhdx", "raw"] = Field(
        "vmdk", description="metadata; sets the default provisioning (qcow2 and vhdx thin, "
        "vmdk and raw thick)")
    provisioning: Literal["thin", "thick"] | None = Field(
        None, description="thick: the whole size is taken at creation; thin: space grows with "
        "the data written; default: the format's")
    used: BytesOrShare = Field("25%", description="data written when the run starts (for a "
                               "template: what a full clone copies)")
    datastore: str | None = Field(None, description="default: the group's, else the first")
    new_writes: Fraction = Field(0.1, description="share of the writes that land on blocks never "
                                 "written before: what makes a thin disk (or a linked clone) grow")

    @property
    def thin(self) -> bool:
        return (self.provisioning or DISK_FORMATS[self.format]) == "thin"

    @model_validator(mode="after")
    def _used_fits(self) -> DiskSpec:
        check_within(self.used, self.size, "used", "the disk's size")
        return self


class SnapshotSpec(_Strict):
    """Snapshots taken of every VM of the group (a backup's, say): from ``at``, every ``every``,
    each consolidated ``keep`` after it was taken. Until then every write goes to its delta."""

    at: Time = Field(description="the first snapshot")
    every: Interval | None = Field(None, description="and again at this interval; none: once")
    keep: Interval = Field(description="consolidated (deleted) this long after it was taken")


class TemplateSpec(_Strict):
    """A template (gold image): a base disk on a datastore that VMs are cloned from."""

    name: str
    disk: DiskSpec
    linked_clone_time: Time = Field(2.0, description="time to create a linked clone (its delta "
                                    "and configuration)")
    clone_rate: BandwidthLimit = Field(math.inf, description="the most one full clone copies "
                                       "per second (the array's copy offload or the host's)")


class NetworkSpec(_Strict):
    """A virtual network (a port group on a virtual switch)."""

    name: str
    vlan: int | None = Field(None, ge=0, le=4094, description="metadata")
    shaping: BandwidthLimit = Field(math.inf, description="traffic shaping: the most one vNIC "
                                    "sends or receives")


class NicSpec(_Strict):
    """A vNIC of each VM of a group."""

    network: str
    traffic: Rate = Field(0.0, description="the vNIC's traffic each way, e.g. '20 Mbit/s'")
    external: bool = Field(False, description="the traffic leaves the site over its uplink "
                           "(to users, the internet); otherwise it stays in the site's fabric")


def check_vm_storage(data: Any) -> Any:
    """``clone`` needs a ``template``; a bare ``power: off`` is read by YAML 1.1 as false."""
    if isinstance(data, dict):
        if isinstance(data.get("power"), bool):
            data = {**data, "power": "on" if data["power"] else "off"}
        if data.get("clone") is not None and data.get("template") is None:
            raise ValueError("clone needs a template to clone from; add template: NAME")
    return data
