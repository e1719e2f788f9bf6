"""The scenario format: a pydantic schema with units parsed at load and unknown fields refused.

Quantities are written with their unit ("16 GiB", "2.6 GHz", "5 min") or as plain numbers in the
base unit; the schema turns them into floats in SI base units. ``vsim schema`` prints the JSON
Schema of this model for editor completion.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from vsim.model.memory import SWAP_DEVICES
from vsim.model.power import POWER_TABLES
from vsim.model.timeslice.profiles import HYPERVISORS, Hypervisor
from vsim.policies import PLACEMENT_POLICIES
from vsim.policies.overload import OVERLOAD_DETECTORS, make_overload_detector
from vsim.policies.selection import VM_SELECTION_POLICIES
from vsim.scenario.quantities import (
    Bandwidth,
    BandwidthLimit,
    Bytes,
    BytesLimit,
    Delay,
    Duration,
    Fraction,
    Frequency,
    Interval,
    Lifetime,
    Limit,
    Power,
    RamSize,
    Rate,
    Speed,
    Time,
    Work,
    WorkingSet,
    check_within,
)
from vsim.scenario.schema_ha import BootSpec, DrSpec, FailureSpec, HaSpec
from vsim.scenario.schema_storage import (
    DatastoreSpec,
    DiskSpec,
    NetworkSpec,
    NicSpec,
    SnapshotSpec,
    TemplateSpec,
    check_vm_storage,
)
from vsim.units import parse_quantity

__all__ = ["Scenario", "unknown_name"]


def did_you_mean(name: str, known: list[str]) -> str:
    """The hint for a name that is not among ``known``: the closest one, or the known ones."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known: {', '.join(known)}" if known else "define it first"


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """'unknown X 'name'; did you mean 'Y'? known: ...' for names chosen from a registry."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(known)})"



class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(Strict):
    name: str
    fabric: BandwidthLimit = Field(math.inf, description="switching capacity shared by all "
                                   "migrations within the site (unlimited: non-blocking)")
    uplink: BandwidthLimit = Field(math.inf, description="link to the other sites, each way; "
                                   "migrations between sites share it")
    uplink_traffic: Rate = Field(0.0, description="other traffic on the uplink, each way: "
                                 "what replication cannot use")
    storage: BandwidthLimit = Field(math.inf, description="the datastore's bandwidth, shared by "
                                    "every VM booting in the site (boot storms)")


class PowerSpec(Strict):
    """Linear (idle and max), a named SPECpower table, or a table of watts at even load steps."""

    idle: Power | None = None
    max: Power | None = None
    spec: str | None = Field(None, description=f"one of: {', '.join(POWER_TABLES)}")
    table: list[Power] | None = Field(None, description="watts at 0%, ..., 100% load, evenly spaced")
    off: Power = 0.0

    @model_validator(mode="before")
    @classmethod
    def _yaml_off_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `off:` key as the boolean false.
        if isinstance(data, dict) and False in data:
            data = {("off" if k is False else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> PowerSpec:
        kinds = [self.idle is not None or self.max is not None, self.spec is not None,
                 self.table is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of: idle and max (linear), spec (a named "
                             "SPECpower table), or table (watts at evenly spaced loads)")
        if kinds[0] and (self.idle is None or self.max is None):
            raise ValueError("a linear power model needs both idle and max")
        if kinds[0] and self.max < self.idle:  # type: ignore[operator]
            raise ValueError("max power is below idle power")
        if self.spec is not None and self.spec not in POWER_TABLES:
            raise ValueError(f"unknown SPECpower table {self.spec!r}; known: {', '.join(POWER_TABLES)}")
        if self.table is not None and len(self.table) < 2:
            raise ValueError("a power table needs at least two points (0% and 100% load)")
        return self

    def curve(self) -> list[float]:
        if self.spec is not None:
            return list(POWER_TABLES[self.spec])
        if self.table is not None:
            return list(self.table)
        return [self.idle, self.max]  # type: ignore[list-item]


class HypervisorSpec(Strict):
    """How the hosts share their CPUs among vCPUs, and what time-slicing costs.

    ``scheduler: fluid`` (the default) gives each VM its long-run proportional share, less the
    fluid costs ``switch_loss`` and ``interference`` (`vsim calibrate` fits both to real guests).
    ``scheduler: timeslice`` simulates these hosts timeslice by timeslice under a hypervisor
    preset (its policy and costs, each overridable): CPU ready, co-stop and wake-up latency."""

    scheduler: Literal["fluid", "timeslice"] = Field(
        "fluid", description="fluid: long-run shares (datacenter scale); timeslice: simulate "
        "the run queues (host-level fidelity: ready, co-stop, wake-up latency)")
    switch_loss: Fraction = Field(0.0, description="fluid: share of a core lost once vCPUs queue "
                                  "on it (switch time over slice length)")
    interference: Fraction = Field(0.0, description="share of a core's speed lost per extra vCPU "
                                   "taking turns on it (cache and TLB refills)")
    preset: str = Field("kvm", description=f"timeslice: one of {', '.join(HYPERVISORS)} (the "
                        "policy and costs of that hypervisor)")
    policy: Literal["credit", "fair"] | None = Field(
        None, description="timeslice: credit (Xen credit1) or fair (Linux CFS under KVM); "
        "default: the preset's")
    switch_cost: Time | None = Field(None, description="timeslice: time to switch a CPU from one "
                                     "vCPU to another, e.g. '4 us'; default: the preset's")
    host_os: Fraction | None = Field(None, description="timeslice: share of each CPU a hosted "
                                     "(type 2) hypervisor's host OS takes; default: the preset's")
    coschedule: Literal["none", "relaxed"] | None = Field(
        None, description="timeslice: co-scheduling of SMP VMs; relaxed: ESXi's skew limit")
    skew_limit: Interval | None = Field(None, description="timeslice, relaxed co-scheduling: how "
                                        "far a VM's vCPUs may drift apart, e.g. '3 ms'")
    tick: Interval | None = Field(None, description="timeslice: the scheduler tick (credit: 10 ms, "
                                  "fair: 4 ms at HZ=250); default: the policy's")
    window: Interval = Field(10.0, description="timeslice: simulated time per change of demand "
                             "(its shares and latencies hold until the next change)")
    warmup: Time = Field(1.0, description="timeslice: simulated before each window, not counted")

    @model_validator(mode="after")
    def _consistent(self) -> HypervisorSpec:
        if self.preset not in HYPERVISORS:
            raise ValueError(unknown_name("hypervisor preset", self.preset, HYPERVISORS))
        if self.scheduler == "fluid":
            given = [k for k in ("policy", "switch_cost", "host_os", "coschedule", "skew_limit",
                                 "tick")
                     if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} apply to scheduler: timeslice only; "
                                 "add scheduler: timeslice or remove them")
        return self

    def hypervisor(self) -> Hypervisor:
        """The preset with this spec's overrides."""
        base = HYPERVISORS[self.preset]
        costs = {k: v for k, v in (("switch_s", self.switch_cost), ("host_os", self.host_os),
                                   ("coschedule", self.coschedule),
                                   ("skew_limit_s", self.skew_limit)) if v is not None}
        if self.interference:
            costs["interference"] = self.interference
        out = base.with_costs(**costs)
        if self.policy is not None and self.policy != base.policy:
            out = replace(out, policy=self.policy, policy_params={})
        if self.tick is not None:
            out = replace(out, policy_params={**out.policy_params, "tick_s": self.tick})
        return out


class SwapSpec(Strict):
    """The device a host swaps to."""

    device: Literal["hdd", "ssd", "nvme"] = Field(
        "ssd", description="preset latency and bandwidth: " + ", ".join(
            f"{k} {v.latency_s * 1e6:g} us, {v.bandwidth_bytes_s / 1e6:g} MB/s"
            for k, v in SWAP_DEVICES.items()))
    size: BytesLimit = Field(math.inf, description="swap space; a VM starts only where the "
                             "memory it does not reserve fits (unlimited: no check)")
    latency: Time | None = Field(None, description="time to start one page read; default: "
                                 "the device's")
    bandwidth: Bandwidth | None = Field(None, description="default: the device's")


class HostMemorySpec(Strict):
    """Memory overcommit on these hosts: the reclamation chain (page sharing, ballooning,
    compression, swapping) and the slowdown of VMs whose working set is not resident."""

    preset: Literal["esxi", "kvm"] = Field(
        "esxi", description="esxi: minFree states (sharing <100 %, balloon <64 %, swap <32 %), "
        "zero-page sharing, compression; kvm: KSM and balloon below 20 % free, swap near the "
        "kernel's watermarks, no compression")
    min_free: Bytes | None = Field(None, description="free memory the hypervisor keeps; "
                                   "default: ESXi's sliding scale, or 20 % of RAM for kvm")
    page_sharing: Literal["off", "zero", "template", "all"] | None = Field(
        None, description="zero: zero pages; template: also pages identical in VMs of one "
        "template; all: also between any VMs (KSM); default: the preset's")
    compression: bool | None = Field(None, description="compress pages before swapping "
                                     "them; default: the preset's")
    overhead: Bytes = Field(32 * 2.0**20, description="hypervisor memory per VM")
    overhead_frac: Fraction = Field(0.01, description="and per byte of the VM's memory (page "
                                    "tables, device state)")
    swap: SwapSpec = SwapSpec()

    @model_validator(mode="before")
    @classmethod
    def _swap_shorthand(cls, data: Any) -> Any:
        # `swap: nvme` for a device with its preset figures; YAML 1.1 reads a bare off as false.
        if isinstance(data, dict) and isinstance(data.get("swap"), str):
            data = {**data, "swap": {"device": data["swap"]}}
        if isinstance(data, dict) and data.get("page_sharing") is False:
            data = {**data, "page_sharing": "off"}
        return data


class HostGroup(Strict):
    name: str
    count: int = Field(1, ge=1)
    site: str | None = None
    cores: int = Field(ge=1)
    core_speed: Speed
    ram: RamSize
    power: PowerSpec = PowerSpec(idle=100.0, max=250.0)
    boot_time: Time = 120.0
    network: Bandwidth = Field(125e6, description="NIC bandwidth each way; migrations and the "
                               "VMs' own traffic share it max-min fairly")
    initially: Literal["on", "off"] = "on"
    storage: BandwidthLimit = Field(math.inf, description="the host's path to its datastore: "
                                    "VMs booting on it share it")
    hypervisor: HypervisorSpec = HypervisorSpec()
    memory: HostMemorySpec | None = Field(None, description="model memory overcommit on these "
                                          "hosts (none: a VM's memory is simply committed)")

    @model_validator(mode="before")
    @classmethod
    def _yaml_booleans(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare on/off as a boolean.
        if isinstance(data, dict) and isinstance(data.get("initially"), bool):
            data = {**data, "initially": "on" if data["initially"] else "off"}
        return data


def _check_shares(value: Any) -> Any:
    # One clear message instead of one per member of the union.
    if isinstance(value, str) and value in _SHARE_PRESETS:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError(f"shares are low, normal, high or a positive number, got {value!r}")


_SHARE_PRESETS = ("low", "normal", "high")
Shares = Annotated[
    float | Literal["low", "normal", "high"],
    BeforeValidator(_check_shares),
    Field(description="ESXi-style per-vCPU shares: low=500, normal=1000, high=2000 per vCPU, or a number"),
]


def _trace_share(value: Any) -> Any:
    if isinstance(value, str):
        share = parse_quantity(value, "fraction")
        if not 0 < share <= 1:
            raise ValueError(f"a share of the trace is more than 0% and at most 100%, got {value!r}")
        return value
    raise ValueError("a VM count is a whole number, or a share of a trace such as '25%'")


def _vm_count(value: Any) -> Any:
    # One message for the whole union, not one per member.
    if value is None or isinstance(value, str):
        return value if value is None else _trace_share(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"a VM count is a whole number of at least 1, or a share of a trace such "
                     f"as '25%', got {value!r}")


VmCount = Annotated[int | str | None, BeforeValidator(_vm_count)]


class ActiveFromWorkload(Strict):
    workload: str = Field(description="a workload whose series (0..100 %) give the active "
                          "share of each VM's memory over time: its memory column where the "
                          "trace has one (Bitbrains, Alibaba), else its CPU series")


class VmMemorySpec(Strict):
    """A VM's memory settings where its host models memory overcommit."""

    reservation: Bytes = Field(0.0, description="guaranteed host memory: never reclaimed; the "
                               "VM starts only where it can be met")
    limit: BytesLimit = Field(math.inf, description="most host memory the VM may use, "
                              "whatever the pressure")
    shares: Annotated[float | Literal["low", "normal", "high"],
                      BeforeValidator(_check_shares)] = Field(
        "normal", description="low, normal, high (5, 10, 20 per MiB of memory, as ESXi) or a "
        "number: who loses memory first under pressure")
    active: Fraction | ActiveFromWorkload = Field(
        0.25, description="the active working set: a share of the VM's memory such as '40%', "
        "or {workload: NAME} to follow a workload's series over time")
    access_rate: Rate = Field(40 * 2.0**20, description="working-set bytes the VM touches per "
                              "second at 100 % CPU (a page not resident costs a fault)")
    zero_pages: Fraction = Field(0.05, description="share of the memory that is zero pages")
    template_shared: Fraction = Field(0.15, description="share of the other pages identical in "
                                      "VMs cloned from the same template")
    common_shared: Fraction = Field(0.03, description="share of the other pages identical in "
                                    "any VM (same OS libraries)")
    balloon: bool = Field(True, description="a balloon driver runs in the guest")

    @model_validator(mode="after")
    def _consistent(self) -> VmMemorySpec:
        if self.reservation > self.limit:
            raise ValueError("the reservation is above the limit")
        if self.template_shared + self.common_shared > 1.0:
            raise ValueError("template_shared and common_shared add up to more than 100%")
        return self


class VmGroup(Strict):
    name: str
    count: VmCount = Field(
        None, description="a number; or, for a trace workload, a share of its series such as "
        "'25%' (rounded up, as CloudSim splits traces among VM types); default: every series")
    vcpus: int = Field(1, ge=1)
    ram: RamSize
    vcpu_speed: Speed | None = Field(None, description="default: the fastest host core")
    shares: Shares = "normal"
    reservation: Frequency = 0.0
    limit: Limit = math.inf
    template: str | None = None
    priority: int = Field(0, description="queued VMs are placed in priority order, highest first")
    workload: str | None = Field(None, description="a name under workloads; none: idle")
    lifetime: Lifetime | None = Field(None, description="overrides the workload's lifetimes")
    start: Time | None = Field(None, description="when the VMs arrive (default: at once, or "
                               "when their trace's series begin)")
    start_over: Time = Field(0.0, description="spread the arrivals evenly over this long from "
                             "start (a morning login ramp)")
    dirty_rate: Rate = Field(10 * 2.0**20, description="memory written per second at 100% CPU "
                             "(scaled by utilisation unless migration.dirty_follows_cpu is false)")
    working_set: WorkingSet = Field("25%", description="writable working set: the most memory "
                                    "one pre-copy round can find dirty; bytes or a share of RAM")
    network: Rate = Field(0.0, description="the VM's own traffic each way over its host's NIC")
    network_follows_cpu: bool = Field(False, description="scale the traffic by the VM's CPU "
                                      "demand (as its trace gives it): network at 100%")
    cpu_burst: Interval = Field(0.01, description="on time-sliced hosts: mean CPU time a vCPU "
                                "runs per wake-up ('0.5 ms' for a latency-sensitive server, tens "
                                "of ms for batch); at 100% demand a vCPU never sleeps")
    hosts: str | None = Field(None, description="a host group: the VMs run only on its hosts "
                              "(a VM-host rule)")
    memory: VmMemorySpec = VmMemorySpec()
    ha: bool = Field(True, description="with ha: set, HA restarts these VMs after a host "
                     "failure; otherwise they wait for their host's repair")
    boot: BootSpec | None = Field(None, description="their boot after a restart; default: ha's")
    write_rate: Rate = Field(2.0**20, description="bytes written to disk per second: what DR "
                             "replication ships, and what grows thin disks and snapshots")
    power: Literal["on", "off"] = Field("on", description="off: the VMs exist (their disks take "
                                        "space) but are never started")
    datastore: str | None = Field(None, description="where the VMs' disks and clones go; "
                                  "default: the first datastore")
    disks: list[DiskSpec] = Field(default_factory=list, description="virtual disks of each VM "
                                  "(besides a full clone's copy of its template)")
    clone: Literal["full", "linked"] | None = Field(
        None, description="deploy each VM from its template when it arrives: full (copy the "
        "template's data) or linked (a delta on the template's disk); none: already deployed")
    boot_at_start: bool = Field(False, description="the VMs boot when they first start, reading "
                                "boot.io from their datastore (a boot storm when many start)")
    snapshots: SnapshotSpec | None = None
    nics: list[NicSpec] = Field(default_factory=list, description="vNICs: their traffic adds to "
                                "network")
    network_trace: str | None = Field(None, description="a trace workload with network series "
                                      "(Bitbrains): each VM's traffic received and sent follows "
                                      "its series, besides network and nics")
    write_trace: str | None = Field(None, description="a trace workload with disk series "
                                    "(Bitbrains): each VM's write rate follows its series "
                                    "instead of write_rate")

    @model_validator(mode="before")
    @classmethod
    def _storage_fields(cls, data: Any) -> Any:
        return check_vm_storage(data)

    @model_validator(mode="after")
    def _working_set_fits(self) -> VmGroup:
        check_within(self.working_set, self.ram, "working_set", "the VM's RAM")
        return self


class Diurnal(Strict):
    amplitude: float = Field(0.0, ge=0.0, description="relative swing around the mean")
    peak: Time = 14 * 3600.0


class Noise(Strict):
    sd: Fraction = 0.0
    correlation: float = Field(0.0, ge=0.0, lt=1.0, description="AR(1) coefficient per sample")


class Bursts(Strict):
    every: Interval = Field(description="mean time between bursts of one VM")
    height: Fraction
    duration: Interval


class Arrivals(Strict):
    mean_interarrival: Interval


class LifetimeSpec(Strict):
    mean: Interval
    distribution: Literal["exponential", "lognormal", "fixed"] = "exponential"
    sigma: float = Field(1.0, gt=0.0)


class SyntheticWorkload(Strict):
    kind: Literal["synthetic"]
    step: Interval = 300.0
    mean: Fraction = 0.3
    mean_spread: float = Field(0.0, ge=0.0, le=1.0)
    diurnal: Diurnal = Diurnal()
    noise: Noise = Noise()
    bursts: Bursts | None = None
    arrivals: Arrivals | None = None
    lifetime: LifetimeSpec | None = None


class PlanetLabWorkload(Strict):
    kind: Literal["planetlab"]
    day: str = Field(description="a day such as 20110303, or all: every day's traces")
    path: str | None = Field(None, description="compact .npz or raw folder; default: the shipped data")
    tile_days: int | None = Field(
        None, ge=1, description="give each VM this many days, each a trace drawn at random "
        "(seeded) from the day(s): long runs from one-day traces")

    @model_validator(mode="before")
    @classmethod
    def _day_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("day"), int):
            data = {**data, "day": str(data["day"])}
        return data


class BitbrainsWorkload(Strict):
    """Bitbrains GWA-T-12: a folder of per-VM CSV files (fastStorage, or a month of Rnd)."""

    kind: Literal["bitbrains"]
    path: str = Field(description="the folder of per-VM CSV files, relative to the scenario")
    step: Interval = Field(300.0, description="the grid the readings are averaged onto")
    vms: int | None = Field(None, ge=1, description="only the first N VMs (files by name)")


class AzureWorkload(Strict):
    """Azure Public Dataset V1: vmtable.csv and vm_cpu_readings-file-*-of-*.csv in a folder."""

    kind: Literal["azure"]
    path: str = Field(description="the folder holding vmtable.csv and the readings files, "
                      "relative to the scenario")
    max_vms: int | None = Field(None, ge=1, description="read only the first N VMs of "
                                "vmtable.csv (the readings of the others are skipped)")
    vms: int | None = Field(None, ge=1, description="only the first N VMs")


class AlibabaWorkload(Strict):
    """Alibaba cluster-trace-v2018: containers (container_usage.csv, container_meta.csv)."""

    kind: Literal["alibaba"]
    path: str = Field(description="the folder holding container_usage.csv and "
                      "container_meta.csv, relative to the scenario")
    step: Interval = Field(300.0, description="the grid the readings are averaged onto")
    vms: int | None = Field(None, ge=1, description="only the first N containers (by id)")


PublicTraceWorkload = BitbrainsWorkload | AzureWorkload | AlibabaWorkload
TRACE_WORKLOADS = (PlanetLabWorkload, BitbrainsWorkload, AzureWorkload, AlibabaWorkload)


class ConstantWorkload(Strict):
    kind: Literal["constant"]
    level: Fraction


Workload = Annotated[
    SyntheticWorkload | PlanetLabWorkload | ConstantWorkload | BitbrainsWorkload | AzureWorkload
    | AlibabaWorkload, Field(discriminator="kind")
]


class JobGroup(Strict):
    vms: str = Field("all", description="a VM group name, or all")
    count: int = Field(ge=1)
    threads: int = Field(1, ge=1)
    length: Work = Field(description="work per thread, e.g. '10000 MI' (one instruction per cycle)")
    submit: Time = 0.0


def _registered(what: str, known: Iterable[str]) -> Any:
    """A name that must be one of ``known`` (a registry of policies), refused with a suggestion."""
    names = list(known)

    def check(name: str) -> str:
        if name not in names:
            raise ValueError(unknown_name(what, name, names))
        return name

    return Annotated[str, AfterValidator(check), Field(description=f"one of: {', '.join(names)}")]


class Placement(Strict):
    policy: _registered("placement policy", PLACEMENT_POLICIES) = "first-fit"  # type: ignore[valid-type]
    cpu_overcommit: float = Field(1.0, gt=0.0, description="vCPUs per physical core")
    ram_overcommit: float = Field(1.0, gt=0.0, description="VM memory per byte of host RAM")


class OverloadSpec(Strict):
    detector: str = Field("thr", description=f"one of: {', '.join(OVERLOAD_DETECTORS)}")
    threshold: float | None = Field(None, description="thr: utilisation above which a host is overloaded")
    safety: float | None = Field(None, description="iqr, mad, lr, lrr: the safety parameter")

    @model_validator(mode="after")
    def _known(self) -> OverloadSpec:
        if self.detector not in OVERLOAD_DETECTORS:
            raise ValueError(unknown_name("overload detector", self.detector, OVERLOAD_DETECTORS))
        make_overload_detector(self.detector, **self.params())  # raises on a wrong parameter
        return self

    def params(self) -> dict[str, float]:
        return {k: v for k, v in (("threshold", self.threshold), ("safety", self.safety))
                if v is not None}


class ConsolidationSpec(Strict):
    """Dynamic consolidation (Beloglazov & Buyya, CCPE 2012) at every interval."""

    interval: Interval = 300.0
    overload: OverloadSpec = OverloadSpec()
    selection: _registered("VM selection policy", VM_SELECTION_POLICIES) = "mmt"  # type: ignore[valid-type]
    underload: bool = Field(True, description="empty the least-used hosts when their VMs fit elsewhere")
    history: int = Field(30, ge=1, description="utilisation values kept per host for the detectors")


class AutoConverge(Strict):
    """QEMU's auto-converge: throttle the vCPUs of a VM whose migration does not converge."""

    initial: Fraction = 0.2
    increment: Fraction = 0.1
    max: Fraction = 0.99
    trigger: Fraction = Field(0.5, description="a round counts as dirtying fast when the pages it "
                              "dirtied exceed this share of what it sent; two in a row step up")


class MigrationSpec(Strict):
    """Live migration (semantics: vsim). Defaults are QEMU's where QEMU has one."""

    model: Literal["precopy", "postcopy", "ram-over-bandwidth"] = Field(
        "precopy", description="precopy: iterative pre-copy; postcopy: switch over at once and "
        "pull pages after; ram-over-bandwidth: RAM / NIC bandwidth, nothing shared (the peers')")
    max_bandwidth: BandwidthLimit = Field(128 * 2.0**20, description="per migration")
    downtime_limit: Interval = Field(0.3, description="stop and copy once the rest fits in this")
    switchover_bandwidth: BandwidthLimit = Field(
        math.inf, description="cap on the copy while the VM is paused (QEMU: none, only the links)")
    switchover_check: Literal["continuous", "round-end"] = Field(
        "continuous", description="when the downtime test is made: continuous (QEMU's: at any "
        "moment after round 0, on what is left plus what was dirtied since the round began) or "
        "round-end (Xen's: once each round is sent)")
    max_rounds: int | None = Field(30, ge=1, description="pre-copy rounds before giving up on "
                                   "convergence (none: no cap)")
    max_sent: float | None = Field(None, gt=0, description="bytes sent over RAM before giving "
                                   "up on convergence (Xen: 3)")
    on_no_convergence: Literal["force", "abort", "auto-converge", "postcopy"] = Field(
        "force", description="force: stop and copy anyway; abort: the VM stays; auto-converge: "
        "throttle its vCPUs (caps then force); postcopy: switch over and pull the rest")
    auto_converge: AutoConverge = AutoConverge()
    zero_pages: Fraction = Field(0.0, description="share of RAM never written: not sent")
    round0_tail: Bytes = Field(
        0.0, description="non-zero memory scanned after the zero pages (a fresh guest's initrd and "
        "early kernel allocations at the top of its RAM): once round 0 reaches it, QEMU's "
        "switch-over test applies; 0: the VM pauses only after round 0")
    rate_window: Interval = Field(0.1, description="QEMU's rate-limit window: the switch-over "
                                  "test inside round 0 is made at the end of each")
    fresh_page_bandwidth: BandwidthLimit = Field(
        math.inf, description="destination's speed for pages it receives for the first time "
        "while the VM is paused (it allocates memory for each); unlimited: no extra time")
    page_size: RamSize = 4096.0
    page_overhead: Bytes = Field(8.0, description="header bytes per page on the wire")
    setup: Time = 0.05
    resume: Time = 0.02
    device_state: Bytes = Field(2.0**20, description="sent while the VM is paused")
    cpu_cost: float = Field(1.0, ge=0.0, description="CPU cycles per byte sent, on each of the "
                            "two hosts")
    postcopy_slowdown: Fraction = Field(0.5, description="share of a VM's CPU lost to remote "
                                        "page faults until post-copy has pulled every page")
    dirty_follows_cpu: bool = True
    max_per_host: int = Field(8, ge=1, description="concurrent migrations in or out of a host")
    max_total: int | None = Field(None, ge=1, description="concurrent migrations in all")


class MaintenanceSpec(Strict):
    """Drain hosts by live migration, switch them off, and (with until) bring them back."""

    name: str | None = None
    hosts: str | list[str] = Field(description="a host group, or a list of host names")
    start: Time
    until: Time | None = Field(None, description="when the hosts come back; none: never")
    max_concurrent: int | None = Field(None, ge=1, description="migrations of this drain at a time")


class MoveWaves(Strict):
    size: int = Field(10, ge=1, description="VMs per wave")
    gap: Time = Field(0.0, description="pause between the end of a wave and the next")


class MoveSpec(Strict):
    """Move the VMs of some groups to a host group at another site, wave after wave: each VM's
    disks copied while it runs, then its memory live-migrated over the WAN."""

    name: str | None = None
    vms: str | list[str] = Field(description="all, a VM group, or a list of VM groups")
    to: str = Field(description="the host group that receives them")
    start: Time = 0.0
    waves: MoveWaves = MoveWaves()
    max_concurrent: int | None = Field(None, ge=1, description="disk copies at a time "
                                       "(default: a whole wave)")
    mode: Literal["live", "cold"] = Field(
        "live", description="live: copy the disks while the VM runs, then live-migrate it; "
        "cold: shut it down, copy its disks, boot it at the destination")
    boot: Time = Field(120.0, description="cold: from power-on at the destination to running")


class PowerManagementSpec(Strict):
    power_on_when_needed: bool = True
    idle_off_after: Delay = Field(math.inf, description="switch empty hosts off after this; never: keep on")


class Output(Strict):
    vms_table: bool = Field(True, description="per-VM rows every period (large for big runs)")
    hosts_table: bool = True
    report: bool = True


class Scenario(Strict):
    """A datacenter, its VMs and workloads, the policies, and how long to run."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = Field(0, ge=0)
    calibration: str | None = Field(None, description="a file written by `vsim calibrate`: its "
                                    "fitted migration and hypervisor values fill in what the "
                                    "scenario leaves unset")
    duration: Duration = Field(description="e.g. '2 d', or jobs-done: until every job has finished")
    semantics: Literal["vsim", "cloudsim"] = Field(
        "vsim", description="vsim: a real datacenter; cloudsim: CloudSim 3.0.3's power-aware "
        "datacenter rule for rule, bugs included, to compare with its published figures")
    period: Interval = Field(300.0, description="reporting period of the tables")
    sites: list[Site] = Field(default_factory=list)
    hosts: list[HostGroup] = Field(min_length=1)
    host_order: Literal["grouped", "interleaved"] = Field(
        "grouped", description="host ids group by group, or round-robin over the groups (host i "
        "of CloudSim's examples has type i mod 2); ids decide ties in placement")
    vms: list[VmGroup] = Field(default_factory=list)
    workloads: dict[str, Workload] = Field(default_factory=dict)
    jobs: list[JobGroup] = Field(default_factory=list)
    placement: Placement = Placement()
    consolidation: ConsolidationSpec | None = None
    migration: MigrationSpec = MigrationSpec()
    maintenance: list[MaintenanceSpec] = Field(default_factory=list)
    moves: list[MoveSpec] = Field(default_factory=list, description="VMs moved to another "
                                  "site in waves (a lift-and-shift)")
    failures: list[FailureSpec] = Field(default_factory=list)
    ha: HaSpec | None = Field(None, description="restart the VMs of failed hosts (vSphere HA)")
    dr: list[DrSpec] = Field(default_factory=list, description="disaster-recovery plans")
    replications: int = Field(1, ge=1, description="Monte Carlo replications: independent runs "
                              "with seeds drawn from the scenario's; the availability results "
                              "are given over all of them")
    datastores: list[DatastoreSpec] = Field(default_factory=list)
    templates: list[TemplateSpec] = Field(default_factory=list)
    networks: list[NetworkSpec] = Field(default_factory=list)
    power_management: PowerManagementSpec = PowerManagementSpec()
    output: Output = Output()
