"""What a simulation takes in and gives out: demand sources, the policy interfaces it calls, and
the records it reports (period snapshots, migrations, run totals). Plain data, no behaviour."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vsim.model.datacenter import PlacementView
from vsim.model.failures import FailureEvent
from vsim.model.power import PowerCurves

if TYPE_CHECKING:
    from vsim.model.boot import Boots
    from vsim.model.replication import Replication

__all__ = [
    "Admission",
    "AdmissionDecision",
    "AvailabilitySetup",
    "ClusterState",
    "ConsolidationSettings",
    "ConsolidationView",
    "Consolidator",
    "DemandSource",
    "DrPlan",
    "EvacuationRecord",
    "HaSettings",
    "HostFailureRecord",
    "Maintenance",
    "Migration",
    "MigrationRecord",
    "Observer",
    "OutageRecord",
    "PeriodSnapshot",
    "Placement",
    "PowerManagement",
    "RecoveryGroup",
    "RunTotals",
]


@dataclass
class DemandSource:
    """CPU demand of some VMs from a sampled series: ``by_sample[k, j]`` is VM ``vms[j]``'s demand
    over ``[k*step_s, (k+1)*step_s)`` as a fraction of its capacity. Past the last sample the
    series repeats (``repeat``) or holds its last value."""

    vms: np.ndarray
    step_s: float
    by_sample: np.ndarray | None  # (T, len(vms)): one contiguous row per sample boundary
    repeat: bool = True
    # Tiled instead: VM j follows library series tiles[j, d] on day d (samples_per_tile each),
    # so a month of 100,000 VMs costs a few MB instead of a dense matrix of gigabytes.
    library: np.ndarray | None = None  # (L, samples_per_tile)
    tiles: np.ndarray | None = None  # (len(vms), D) indices into the library

    def row(self, k: int) -> np.ndarray:
        """Demand fractions of the source's VMs over sample ``k``."""
        if self.library is not None and self.tiles is not None:
            per_tile = self.library.shape[1]
            n_tiles = self.tiles.shape[1]
            tile = k // per_tile
            tile = tile % n_tiles if self.repeat else min(tile, n_tiles - 1)
            return self.library[self.tiles[:, tile], k % per_tile]
        assert self.by_sample is not None
        n = self.by_sample.shape[0]
        return self.by_sample[k % n if self.repeat else min(k, n - 1)]


@dataclass(frozen=True)
class RateSeries:
    """Bytes per second of some VMs from a sampled series (a trace's network or disk columns):
    ``by_sample[k, j]`` is VM ``vms[j]``'s rate over ``[k*step_s, (k+1)*step_s)``; past the last
    sample the series repeats, as CPU series do."""

    vms: np.ndarray
    step_s: float
    by_sample: np.ndarray  # (T, len(vms))

    def row(self, k: int) -> np.ndarray:
        return self.by_sample[k % self.by_sample.shape[0]]


@dataclass
class PowerManagement:
    """When hosts are switched on and off. Off hosts are used only when no host that is on fits."""

    power_on_when_needed: bool = True
    idle_off_after_s: float = math.inf


@dataclass(frozen=True)
class Migration:
    """A decision to move a running VM, and why ("overload", "underload")."""

    vm: int
    dest: int
    reason: str


@dataclass(frozen=True)
class ConsolidationView:
    """What a consolidation policy reads at a tick: the placement view, current demand and the
    utilisation histories (oldest first, right-aligned; ``n_valid`` recent entries are real)."""

    placement: PlacementView
    power: PowerCurves
    host_demand_hz: np.ndarray
    vm_demand_hz: np.ndarray
    vm_host: np.ndarray
    vm_state: np.ndarray
    vm_history: np.ndarray  # (V, W) demand / VM capacity at past ticks
    vm_n_valid: np.ndarray
    host_history: np.ndarray  # (H, W) sum over the host's current VMs of their past demand
    host_n_valid: np.ndarray


class Consolidator(Protocol):
    def __call__(self, view: ConsolidationView) -> list[Migration]: ...


@dataclass
class ConsolidationSettings:
    """Dynamic consolidation: every ``interval_s`` the policy may move VMs (by live migration)."""

    policy: Consolidator
    interval_s: float = 300.0
    history: int = 30


class Placement(Protocol):
    def __call__(self, view: PlacementView, vms: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Host for each VM in ``vms`` (in that order) among ``candidates`` (a host mask), or -1."""
        ...


@dataclass
class PeriodSnapshot:
    """Time-weighted sums over one reporting period ``[time_s, time_s + dt_s)``."""

    time_s: float
    dt_s: float
    host_state: np.ndarray
    host_on_s: np.ndarray
    host_demand_hz_s: np.ndarray
    host_alloc_hz_s: np.ndarray
    host_energy_j: np.ndarray
    host_vm_count: np.ndarray
    host_ram_used: np.ndarray
    vm_ids: np.ndarray  # VMs present (arrived, not yet departed) during part of the period
    vm_host: np.ndarray
    vm_state: np.ndarray
    vm_demand_hz_s: np.ndarray
    vm_alloc_hz_s: np.ndarray
    vm_present_s: np.ndarray
    vms_queued: int
    # Time-sliced hosts only: per vCPU that was on one, the period's sums (see model.slicing).
    vcpus: dict[str, np.ndarray] | None = None
    # Hosts whose memory is modelled: the period's memory sums (see model.memory_run).
    memory: dict[str, np.ndarray] | None = None


class Observer(Protocol):
    def event(self, time_s: float, kind: str, subject: str, detail: str) -> None: ...
    def events(self, time_s: float, kind: str, subjects: list[str], details: list[str]) -> None: ...
    def period(self, snapshot: PeriodSnapshot) -> None: ...
    def migration(self, record: MigrationRecord) -> None: ...


@dataclass(frozen=True)
class MigrationRecord:
    """One migration: decided at ``start_s``, waited ``queued_s`` for a slot, then ran for
    ``duration_s`` with the VM paused for ``downtime_s``."""

    start_s: float
    vm: int
    source: int
    dest: int
    duration_s: float
    bytes: float
    reason: str
    outcome: str  # completed, forced (stop-and-copy without converging), aborted, abandoned
    downtime_s: float = 0.0
    rounds: int = 1
    queued_s: float = 0.0
    throttle: float = 0.0  # auto-converge's last vCPU throttle
    postcopy: bool = False


@dataclass(frozen=True)
class Maintenance:
    """Drain ``hosts`` from ``start_s``: their VMs move elsewhere by live migration, at most
    ``max_concurrent`` at a time; then the hosts are switched off until ``end_s``."""

    name: str
    hosts: np.ndarray
    start_s: float
    max_concurrent: float = math.inf
    end_s: float = math.inf


@dataclass
class EvacuationRecord:
    """How a maintenance drain went, and what RAM / bandwidth (the peers' model) would predict."""

    name: str
    start_s: float
    vms: int
    end_s: float = math.nan  # when the last VM had left; nan if some never could
    unplaced: int = 0
    predicted_ram_over_bandwidth_s: float = math.nan
    migrations: int = 0
    worst_downtime_s: float = 0.0
    bytes: float = 0.0


@dataclass
class RunTotals:
    sim_time_s: float
    energy_j: float
    demand_hz_s: float
    alloc_hz_s: float
    host_on_s: float
    intervals: int
    events: int
    host_overloaded_s: float = 0.0  # active-host time with demand above capacity (SLATAH)
    migration_degradation_hz_s: float = 0.0  # demand migrating VMs did not get (PDM)
    migrations: int = 0
    evacuations: list[EvacuationRecord] = field(default_factory=list)
    timeslice_windows: int = 0  # windows simulated on time-sliced hosts
    timeslice_slices: int = 0
    outages: list[OutageRecord] = field(default_factory=list)
    host_failures: list[HostFailureRecord] = field(default_factory=list)
    admission_refused: int = 0  # ordinary power-ons HA admission control refused
    admission: dict[str, dict[str, float]] = field(default_factory=dict)  # per site, at the end
    replication: dict[str, float] = field(default_factory=dict)  # DR replication figures
    storage: dict[str, Any] | None = None  # datastores, deploys, boots, pauses (model.storage)
    traffic: dict[str, Any] | None = None  # link loads and VM traffic (model.traffic)
    moves: dict[str, Any] | None = None  # VMs moved to other sites in waves (model.moves)


# --- failures, HA and DR -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterState:
    """What admission control reads about one HA cluster (arrays over its hosts and over its
    powered-on VMs)."""

    host_cpu_hz: np.ndarray
    host_mem_bytes: np.ndarray
    host_up: np.ndarray  # not failed, not in maintenance
    vm_cpu_res_hz: np.ndarray
    vm_mem_res_bytes: np.ndarray  # memory reservation + overhead

    def __post_init__(self) -> None:
        hosts = {np.shape(self.host_cpu_hz), np.shape(self.host_mem_bytes), np.shape(self.host_up)}
        vms = {np.shape(self.vm_cpu_res_hz), np.shape(self.vm_mem_res_bytes)}
        if len(hosts) != 1 or len(vms) != 1:
            raise ValueError(f"ClusterState arrays disagree in shape: hosts {sorted(hosts)}, "
                             f"VMs {sorted(vms)}")


@dataclass(frozen=True)
class AdmissionDecision:
    admitted: np.ndarray  # per candidate VM
    reasons: list[str]  # per candidate: "" when admitted


class Admission(Protocol):
    """HA admission control: may these VMs power on and leave room to restart a failure's VMs?"""

    @property
    def name(self) -> str: ...

    def admit(self, state: ClusterState, cpu_res_hz: np.ndarray,
              mem_res_bytes: np.ndarray) -> AdmissionDecision:
        """Candidates in order; each is admitted if the policy holds with it and every earlier
        admitted candidate powered on; a refused one does not count for later ones."""
        ...

    def excluded_hosts(self, n_hosts: int) -> np.ndarray:
        """Mask over the cluster's hosts that take no ordinary power-on."""
        ...

    def describe(self, state: ClusterState) -> dict[str, float]:
        """The policy's figures for a summary."""
        ...


@dataclass(frozen=True)
class HaSettings:
    """vSphere-HA-like restarts: after ``detection_s`` the failed hosts' VMs are restarted on
    the surviving hosts of their site, highest priority first; a VM that finds no room is tried
    again after each of ``retry_delays_s`` (vSphere's default: 2, 4, 8, 8 and 8 minutes). The
    next priority tier starts once the previous one is ``placed`` or ``booted``, plus
    ``tier_delay_s``."""

    detection_s: float = 15.0
    retry_delays_s: tuple[float, ...] = (120.0, 240.0, 480.0, 480.0, 480.0)
    wait_for: str = "placed"
    tier_delay_s: float = 0.0


@dataclass(frozen=True)
class RecoveryGroup:
    """VMs a DR plan recovers together, once the groups ``after`` (indices) are up."""

    name: str
    vms: np.ndarray
    after: tuple[int, ...] = ()
    delay_s: float = 0.0


@dataclass(frozen=True)
class DrPlan:
    """When site ``site`` fails, recover its VMs on site ``target``: the loss is declared after
    ``detection_s``, the plan runs ``decision_s`` later, group by group. ``failback_after_s``
    after the failed site is back, the VMs move home by live migration (inf: they stay)."""

    name: str
    site: int
    target: int
    groups: tuple[RecoveryGroup, ...]
    detection_s: float = 300.0
    decision_s: float = 0.0
    failback_after_s: float = math.inf


@dataclass
class AvailabilitySetup:
    """Everything about failures and recovery in one run, built by the scenario layer."""

    failures: list[FailureEvent]
    boots: Boots
    ha: HaSettings | None = None
    admission: Admission | None = None
    ha_vms: np.ndarray | None = None  # VMs HA restarts (the others wait for their host)
    failover_hosts: np.ndarray | None = None  # hosts that take HA restarts only
    vm_mem_res: np.ndarray | None = None  # memory reservation + overhead, for admission
    plans: list[DrPlan] = field(default_factory=list)
    replication: Replication | None = None


@dataclass
class OutageRecord:
    """One VM down: from ``failed_s`` (its host failed) until ``up_s`` (booted again, nan if
    never); ``how`` it came back: ha, dr, repair, or not (still down, or departed)."""

    vm: int
    cause: str
    kind: str
    failed_s: float
    host: int
    placed_s: float = math.nan
    up_s: float = math.nan
    new_host: int = -1
    how: str = ""
    attempts: int = 0
    data_loss_s: float = 0.0


@dataclass
class HostFailureRecord:
    host: int
    process: str
    kind: str
    failed_s: float
    back_s: float = math.nan  # on again after repair and boot
