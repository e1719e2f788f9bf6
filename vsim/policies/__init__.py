"""Policies chosen by name in a scenario. They read views of the datacenter and return decisions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vsim.model.datacenter import PlacementView
from vsim.policies.placement import (
    CpuCapacityFilter,
    FilterWeigherPlacement,
    MemoryAdmissionFilter,
    MostRoomWeigher,
    PowerIncreaseWeigher,
    RandomWeigher,
    TightestWeigher,
)

__all__ = ["PLACEMENT_POLICIES", "make_placement"]


def _largest_first(view: PlacementView, vms: np.ndarray) -> np.ndarray:
    # Priority first (as the queue orders it), then decreasing by vCPUs, then RAM; stable, so
    # equal VMs keep their arrival order.
    return np.lexsort((-view.vm_ram_bytes[vms], -view.vm_vcpus[vms], -view.vm_priority[vms]))


def _by_capacity_decreasing(view: PlacementView, vms: np.ndarray) -> np.ndarray:
    # Priority first, then decreasing nominal CPU; stable.
    return np.lexsort((-view.vm_capacity_hz[vms], -view.vm_priority[vms]))


# name -> (one-line description, factory(rng, cpu_overcommit, ram_overcommit))
PLACEMENT_POLICIES: dict[str, tuple[str, Callable[..., FilterWeigherPlacement]]] = {
    "first-fit": (
        "the lowest-numbered host that passes the filters",
        lambda rng, **oc: FilterWeigherPlacement(**oc),
    ),
    "best-fit": (
        "the host left fullest by the VM (packs hosts tightly)",
        lambda rng, **oc: FilterWeigherPlacement(weigher=TightestWeigher(), **oc),
    ),
    "worst-fit": (
        "the host left emptiest by the VM (spreads load)",
        lambda rng, **oc: FilterWeigherPlacement(weigher=MostRoomWeigher(), **oc),
    ),
    "first-fit-decreasing": (
        "first fit over each batch of arrivals sorted largest first (vCPUs, then RAM)",
        lambda rng, **oc: FilterWeigherPlacement(order=_largest_first, **oc),
    ),
    "pabfd": (
        "power-aware best fit decreasing: largest first, the host whose power grows least, "
        "nominal CPU within capacity",
        lambda rng, **oc: FilterWeigherPlacement(
            extra_filters=(CpuCapacityFilter(),), weigher=PowerIncreaseWeigher(),
            order=_by_capacity_decreasing, **oc),
    ),
    "random": (
        "a uniformly random host among those that pass the filters (seeded)",
        lambda rng, **oc: FilterWeigherPlacement(weigher=RandomWeigher(rng), **oc),
    ),
}


def make_placement(name: str, rng: np.random.Generator, *, cpu_overcommit: float = 1.0,
                   ram_overcommit: float = 1.0, memory_admission: bool = False
                   ) -> FilterWeigherPlacement:
    """The placement policy registered as ``name`` (KeyError if there is none); with
    ``memory_admission``, VMs start only where their memory reservation and swap fit."""
    _, factory = PLACEMENT_POLICIES[name]
    policy = factory(rng, cpu_overcommit=cpu_overcommit, ram_overcommit=ram_overcommit)
    if memory_admission:
        policy.extra_filters = (*policy.extra_filters, MemoryAdmissionFilter())
    return policy
