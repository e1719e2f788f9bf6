"""Hypervisor presets: which policy schedules the vCPUs and what time-slicing costs.

Type 1 (bare-metal) hypervisors schedule vCPUs themselves; a type 2 (hosted) hypervisor's vCPUs are
threads of a host OS that also runs its own work on the same CPUs. The costs are orders of
magnitude from the literature, meant to be replaced by measured values (``vsim calibrate`` fits
``switch_s`` and ``interference`` to real guests):

* a vCPU switch on current x86 costs a few microseconds (a VM exit and entry, about 1 us each on
  VT-x with EPT, plus the scheduler's own switch);
* a hosted hypervisor's host OS takes about 1 % of each CPU for its own threads (interrupts,
  timers, I/O threads of the emulator);
* ESXi co-schedules SMP VMs relaxed with a skew threshold of a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from vsim.model.timeslice.credit import Credit
from vsim.model.timeslice.fair import Fair
from vsim.model.timeslice.parts import Policy, Profile

__all__ = ["HYPERVISORS", "POLICIES", "Hypervisor", "make_policy"]

POLICIES = {"credit": Credit, "fair": Fair}


def make_policy(name: str, **params: Any) -> Policy:
    """A fresh policy by name ("credit", "fair") with its parameters."""
    if name not in POLICIES:
        raise ValueError(f"unknown time-slicing policy {name!r} (known: {', '.join(POLICIES)})")
    return POLICIES[name](**params)  # type: ignore[return-value]


@dataclass(frozen=True)
class Hypervisor:
    """A preset: ``kind`` "type 1" (bare-metal) or "type 2" (hosted), its policy and costs."""

    name: str
    kind: str
    policy: str
    costs: Profile
    policy_params: dict[str, Any] = field(default_factory=dict)

    def with_costs(self, **changes: Any) -> Hypervisor:
        return replace(self, costs=replace(self.costs, **changes))

    def make_policy(self, **overrides: Any) -> Policy:
        return make_policy(self.policy, **{**self.policy_params, **overrides})


HYPERVISORS = {
    "ideal": Hypervisor("ideal", "type 1", "fair", Profile("ideal")),
    "xen": Hypervisor("xen", "type 1", "credit", Profile("xen", switch_s=3e-6)),
    "esxi": Hypervisor("esxi", "type 1", "fair",
                       Profile("esxi", switch_s=3e-6, coschedule="relaxed", skew_limit_s=0.003)),
    "kvm": Hypervisor("kvm", "type 2", "fair", Profile("kvm", switch_s=4e-6, host_os=0.01)),
}
