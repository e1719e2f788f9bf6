"""What a simulation takes in and gives out: demand sources, the policy interfaces it calls, and
the records it reports (period snapshots, migrations, run totals). Plain data, no behaviour."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vsim.model.datacenter import PlacementView
from vsim.model.power import PowerCurves

__all__ = [
    "ConsolidationSettings",
    "ConsolidationView",
    "Consolidator",
    "DemandSource",
    "EvacuationRecord",
    "Maintenance",
    "Migration",
    "MigrationRecord",
    "Observer",
    "PeriodSnapshot",
    "Placement",
    "PowerManagement",
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
