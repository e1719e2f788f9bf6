"""HA admission control in the manner of vSphere HA: may more VMs power on in a cluster?

Admission control keeps enough spare capacity in an HA cluster to restart the VMs of failed hosts.
It applies to ordinary power-ons (VM arrivals); HA restarts after a failure are not subject to it,
which is for the caller to arrange. The rules follow the admission control chapter of VMware's
"vSphere Availability" documentation:

- Slot policy (the cluster tolerates N host failures). The CPU slot is the largest CPU reservation
  of any powered-on VM, and at least ``das.vmcpuminmhz`` (32 MHz by default), so VMs without a
  reservation still take something; the memory slot is the largest memory reservation plus
  overhead. ``das.slotcpuinmhz`` / ``das.slotmeminmb`` may cap the slot, and a VM larger than a
  capped slot then takes ``max(ceil(cpu / slot_cpu), ceil(mem / slot_mem))`` slots. A host holds
  ``floor(min(cpu / slot_cpu, mem / slot_mem))`` slots; failed hosts and hosts in maintenance hold
  none. A power-on is admitted iff, with the VM counted (it may enlarge the slot), the slots left
  after removing the N hosts with the most slots still hold the slots of every powered-on VM. The
  current failover capacity is how many hosts, largest first, can fail with that still true.
- Percentage policy (reserve a share of the cluster's CPU and memory). The CPU reserved is the
  sum of ``max(cpu reservation, 32 MHz)`` over powered-on VMs, the memory reserved the sum of
  reservation plus overhead; the failover capacity of each is ``(capacity of up hosts - reserved)
  / capacity``, and a power-on is admitted iff both stay at or above their shares afterwards.
  The shares may be derived from a number of host failures N, as vSphere 6.5 and later do by
  default: the share of capacity held by the N largest up hosts, for CPU and memory separately.
- Dedicated failover hosts take no ordinary power-on (HA restarts may use them); nothing else is
  refused.

Policies here read a ``ClusterState`` (numpy arrays over one cluster's hosts and powered-on VMs)
and return decisions; they never change the datacenter.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vsim.model.interfaces import Admission as AdmissionPolicy
from vsim.model.interfaces import AdmissionDecision as Decision
from vsim.model.interfaces import ClusterState
from vsim.units import format_quantity

__all__ = [
    "ADMISSION_POLICIES",
    "AdmissionPolicy",
    "ClusterState",
    "Decision",
    "FailoverHostsPolicy",
    "NoAdmission",
    "PercentagePolicy",
    "SlotPolicy",
    "failover_capacity_hosts",
    "failover_fractions",
    "largest_hosts_share",
    "make_admission",
    "slot_size",
    "slots_after_failures",
    "slots_per_host",
    "vm_slots",
]

MIN_CPU_HZ = 32e6  # vSphere's das.vmcpuminmhz default: what a VM without a CPU reservation counts
_EPS = 1e-9  # capacities and reservations are floats; a ratio of 3.9999999999 is 4 slots




# ---------------------------------------------------------------- helpers (slot policy)

def slot_size(vm_cpu_res_hz: np.ndarray, vm_mem_res_bytes: np.ndarray, *,
              min_cpu_hz: float = MIN_CPU_HZ, min_mem_bytes: float = 0.0,
              max_cpu_hz: float = math.inf, max_mem_bytes: float = math.inf
              ) -> tuple[float, float]:
    """(CPU slot in Hz, memory slot in bytes): the largest reservations of the powered-on VMs,
    raised to the minimums (so an empty cluster has a 32 MHz, 0 B slot), then capped."""
    cpu = max(float(np.max(vm_cpu_res_hz, initial=0.0)), min_cpu_hz)
    mem = max(float(np.max(vm_mem_res_bytes, initial=0.0)), min_mem_bytes)
    return min(cpu, max_cpu_hz), min(mem, max_mem_bytes)


def vm_slots(vm_cpu_res_hz: np.ndarray, vm_mem_res_bytes: np.ndarray, slot_cpu_hz: float,
             slot_mem_bytes: float, *, min_cpu_hz: float = MIN_CPU_HZ) -> np.ndarray:
    """Slots each VM takes: one, or more where its reservation exceeds a capped slot."""
    cpu = np.maximum(np.asarray(vm_cpu_res_hz, dtype=float), min_cpu_hz)
    need: np.ndarray = np.ceil(cpu / slot_cpu_hz - _EPS)
    if slot_mem_bytes > 0:  # a 0 B slot means no VM reserves memory: memory needs no slot
        mem = np.asarray(vm_mem_res_bytes, dtype=float)
        need = np.maximum(need, np.ceil(mem / slot_mem_bytes - _EPS))
    slots: np.ndarray = np.maximum(need, 1).astype(np.int64)
    return slots


def slots_per_host(host_cpu_hz: np.ndarray, host_mem_bytes: np.ndarray, slot_cpu_hz: float,
                   slot_mem_bytes: float, host_up: np.ndarray | None = None) -> np.ndarray:
    """``floor(min(cpu / slot_cpu, mem / slot_mem))`` per host, 0 for hosts that are not up.
    A 0 B memory slot does not limit the count (no powered-on VM reserves memory)."""
    if slot_cpu_hz <= 0:
        raise ValueError(f"the CPU slot must be positive, got {slot_cpu_hz} Hz")
    ratio = np.asarray(host_cpu_hz, dtype=float) / slot_cpu_hz
    if slot_mem_bytes > 0:
        ratio = np.minimum(ratio, np.asarray(host_mem_bytes, dtype=float) / slot_mem_bytes)
    slots = np.floor(ratio + _EPS).astype(np.int64)
    if host_up is not None:
        slots[~np.asarray(host_up, dtype=bool)] = 0
    return slots


def _up_slots_desc(host_slots: np.ndarray, host_up: np.ndarray | None) -> np.ndarray:
    slots = np.asarray(host_slots, dtype=np.int64)
    if host_up is not None:  # hosts already down cannot fail again
        slots = slots[np.asarray(host_up, dtype=bool)]
    return np.sort(slots)[::-1]


def slots_after_failures(host_slots: np.ndarray, n_failures: int,
                         host_up: np.ndarray | None = None) -> int:
    """Slots left once the ``n_failures`` hosts with the most slots have failed."""
    slots = _up_slots_desc(host_slots, host_up)
    return int(slots[n_failures:].sum())


def failover_capacity_hosts(host_slots: np.ndarray, slots_used: int,
                            host_up: np.ndarray | None = None) -> int:
    """How many hosts, largest first, can fail while the rest still hold ``slots_used`` slots
    (0 also when the cluster cannot hold them with every host up)."""
    slots = _up_slots_desc(host_slots, host_up)
    # left[k]: slots after the k largest hosts fail; non-increasing, so the hosts that can fail
    # are those before the first k whose remainder is too small.
    left = slots.sum() - np.concatenate(([0], np.cumsum(slots)))
    return max(int(np.count_nonzero(left >= slots_used)) - 1, 0)


# ---------------------------------------------------------------- helpers (percentage policy)

def _totals(state: ClusterState, min_cpu_hz: float) -> tuple[float, float, float, float]:
    # (CPU capacity, memory capacity) of the up hosts, (CPU, memory) reserved by the VMs; a VM
    # without a CPU reservation still counts das.vmcpuminmhz.
    up = np.asarray(state.host_up, dtype=bool)
    return (float(np.sum(np.asarray(state.host_cpu_hz, dtype=float)[up])),
            float(np.sum(np.asarray(state.host_mem_bytes, dtype=float)[up])),
            float(np.sum(np.maximum(np.asarray(state.vm_cpu_res_hz, dtype=float), min_cpu_hz))),
            float(np.sum(np.asarray(state.vm_mem_res_bytes, dtype=float))))


def failover_fractions(state: ClusterState, *, min_cpu_hz: float = MIN_CPU_HZ
                       ) -> tuple[float, float]:
    """(CPU, memory) failover capacity: the unreserved share of the up hosts' capacity
    (0 when no host is up)."""
    cpu_cap, mem_cap, cpu_res, mem_res = _totals(state, min_cpu_hz)
    return _frac_free(cpu_cap, cpu_res), _frac_free(mem_cap, mem_res)


def _frac_free(capacity: float, reserved: float) -> float:
    return (capacity - reserved) / capacity if capacity > 0 else 0.0


def largest_hosts_share(capacity: np.ndarray, host_up: np.ndarray, n_failures: int) -> float:
    """Share of the up hosts' total capacity held by the ``n_failures`` largest up hosts
    (1 when they are all of them, or none is up)."""
    cap = np.sort(np.asarray(capacity, dtype=float)[np.asarray(host_up, dtype=bool)])[::-1]
    total = float(cap.sum())
    return float(cap[:n_failures].sum()) / total if total > 0 else 1.0


# ---------------------------------------------------------------- formatting for reasons

def _hz(x: float) -> str:
    return format_quantity(x, "frequency", 4)


def _bytes(x: float) -> str:
    return format_quantity(x, "bytes", 4)


def _mhz(x: float) -> str:
    return f"{x / 1e6:.6g} MHz"  # vSphere states slot sizes in MHz


def _pcts(x: float, y: float) -> tuple[str, str]:
    # Three significant digits, or as many more as it takes for two different shares to read
    # differently (83.99 % below an 84 % reserve, not 84 % below 84 %).
    for digits in range(3, 10):
        a, b = f"{100 * x:.{digits}g} %", f"{100 * y:.{digits}g} %"
        if a != b:
            break
    return a, b


def _failures(n: int) -> str:
    return f"{n} host failure" + ("" if n == 1 else "s")


def _candidates(cpu_res_hz: np.ndarray, mem_res_bytes: np.ndarray) -> tuple[np.ndarray, ...]:
    cpu = np.atleast_1d(np.asarray(cpu_res_hz, dtype=float))
    mem = np.atleast_1d(np.asarray(mem_res_bytes, dtype=float))
    if cpu.shape != mem.shape or cpu.ndim != 1:
        raise ValueError(f"candidate arrays must be 1-D and alike, got {cpu.shape} and {mem.shape}")
    return cpu, mem


def _admit_in_order(state: ClusterState, cpu_res_hz: np.ndarray, mem_res_bytes: np.ndarray,
                    refusal: Callable[[ClusterState], str]) -> Decision:
    # Each candidate is tried on top of the VMs admitted so far; a refused one is dropped, so it
    # neither enlarges the slot nor reserves anything for later candidates. Both policies are
    # monotone (more VMs powered on never frees a slot or a reserve), so the candidates admitted
    # before the next refusal are the longest admissible prefix, found by bisection: a cost in
    # refusals x log(candidates), not in candidates squared, when thousands arrive at once.
    cand_cpu, cand_mem = _candidates(cpu_res_hz, mem_res_bytes)
    n = cand_cpu.size
    admitted = np.zeros(n, dtype=bool)
    reasons = [""] * n
    cpu = np.asarray(state.vm_cpu_res_hz, dtype=float).ravel()
    mem = np.asarray(state.vm_mem_res_bytes, dtype=float).ravel()

    def with_(lo: int, hi: int) -> ClusterState:
        return ClusterState(state.host_cpu_hz, state.host_mem_bytes, state.host_up,
                            np.concatenate([cpu, cand_cpu[lo:hi]]),
                            np.concatenate([mem, cand_mem[lo:hi]]))

    i = 0
    while i < n:
        if not refusal(with_(i, n)):
            k = n - i
        else:  # the longest admissible prefix of the rest: fits(k) holds for k = lo, not hi
            lo, hi = 0, n - i
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if refusal(with_(i, i + mid)):
                    hi = mid
                else:
                    lo = mid
            k = lo
        admitted[i:i + k] = True
        cpu, mem = np.concatenate([cpu, cand_cpu[i:i + k]]), np.concatenate([mem, cand_mem[i:i + k]])
        i += k
        if i < n:
            reasons[i] = refusal(with_(i, i + 1))
            i += 1
    return Decision(admitted, reasons)


# ---------------------------------------------------------------- policies

class _CapacityPolicy:
    """What the slot and percentage policies share: candidates admitted in order against a
    refusal test, no host set aside, and their figures as the description."""

    def _refusal(self, state: ClusterState) -> str:
        raise NotImplementedError

    def figures(self, state: ClusterState) -> dict[str, float]:
        raise NotImplementedError

    def admit(self, state: ClusterState, cpu_res_hz: np.ndarray,
              mem_res_bytes: np.ndarray) -> Decision:
        return _admit_in_order(state, cpu_res_hz, mem_res_bytes, self._refusal)

    def excluded_hosts(self, n_hosts: int) -> np.ndarray:
        return np.zeros(n_hosts, dtype=bool)

    def describe(self, state: ClusterState) -> dict[str, float]:
        return self.figures(state)


@dataclass(frozen=True)
class SlotPolicy(_CapacityPolicy):
    """Host failures the cluster tolerates, counted in slots (vSphere's slot policy)."""

    host_failures: int = 1
    max_slot_cpu_hz: float = math.inf  # das.slotcpuinmhz
    max_slot_mem_bytes: float = math.inf  # das.slotmeminmb
    min_cpu_hz: float = MIN_CPU_HZ  # das.vmcpuminmhz
    min_mem_bytes: float = 0.0  # das.vmmemoryminmb
    name: str = field(default="slots", init=False)

    def __post_init__(self) -> None:
        if self.host_failures < 0 or int(self.host_failures) != self.host_failures:
            raise ValueError(f"host_failures must be a whole number >= 0, got {self.host_failures}")
        if not (self.min_cpu_hz > 0 and self.max_slot_cpu_hz > 0 and self.max_slot_mem_bytes > 0):
            raise ValueError("min_cpu_hz, max_slot_cpu_hz and max_slot_mem_bytes must be positive")

    def figures(self, state: ClusterState) -> dict[str, float]:
        """Slot size, slots per host summed, slots used, and failover figures for ``state``."""
        slot_cpu, slot_mem = slot_size(
            state.vm_cpu_res_hz, state.vm_mem_res_bytes, min_cpu_hz=self.min_cpu_hz,
            min_mem_bytes=self.min_mem_bytes, max_cpu_hz=self.max_slot_cpu_hz,
            max_mem_bytes=self.max_slot_mem_bytes)
        per_host = slots_per_host(state.host_cpu_hz, state.host_mem_bytes, slot_cpu, slot_mem,
                                  state.host_up)
        used = int(vm_slots(state.vm_cpu_res_hz, state.vm_mem_res_bytes, slot_cpu, slot_mem,
                            min_cpu_hz=self.min_cpu_hz).sum())
        return {
            "host_failures": float(self.host_failures),
            "slot_cpu_hz": slot_cpu,
            "slot_mem_bytes": slot_mem,
            "slots_total": float(per_host.sum()),
            "slots_used": float(used),
            "slots_after_failures": float(
                slots_after_failures(per_host, self.host_failures, state.host_up)),
            "vms_powered_on": float(np.size(state.vm_cpu_res_hz)),
            "failover_capacity_hosts": float(
                failover_capacity_hosts(per_host, used, state.host_up)),
        }

    def _refusal(self, state: ClusterState) -> str:
        f = self.figures(state)
        if f["slots_after_failures"] >= f["slots_used"]:
            return ""
        vms, used = int(f["vms_powered_on"]), int(f["slots_used"])
        need = f"{vms} VMs" if used == vms else f"{vms} VMs taking {used} slots"
        return (f"would leave {int(f['slots_after_failures'])} slots for {need} after "
                f"{_failures(self.host_failures)} (slot {_mhz(f['slot_cpu_hz'])}, "
                f"{_bytes(f['slot_mem_bytes'])})")



@dataclass(frozen=True)
class PercentagePolicy(_CapacityPolicy):
    """Reserve a share of the cluster's CPU and memory (vSphere's percentage policy); with
    ``host_failures`` set, the shares are those of the largest up hosts at each check."""

    cpu_frac: float = 0.25
    mem_frac: float = 0.25
    min_cpu_hz: float = MIN_CPU_HZ
    host_failures: int | None = None  # derive cpu_frac / mem_frac from the hosts instead
    name: str = field(default="percentage", init=False)

    def __post_init__(self) -> None:
        if not (0 <= self.cpu_frac <= 1 and 0 <= self.mem_frac <= 1):
            raise ValueError(f"cpu_frac and mem_frac must be within [0, 1], got "
                             f"{self.cpu_frac} and {self.mem_frac}")
        n = self.host_failures
        if n is not None and (n < 0 or int(n) != n):
            raise ValueError(f"host_failures must be a whole number >= 0, got {n}")
        if self.min_cpu_hz < 0:
            raise ValueError(f"min_cpu_hz must be >= 0, got {self.min_cpu_hz}")

    @classmethod
    def from_host_failures(cls, n: int, min_cpu_hz: float = MIN_CPU_HZ) -> PercentagePolicy:
        """Shares derived at each check from the ``n`` largest up hosts (CPU and memory apart)."""
        return cls(min_cpu_hz=min_cpu_hz, host_failures=n)

    def targets(self, state: ClusterState) -> tuple[float, float]:
        """(CPU, memory) share to keep unreserved."""
        if self.host_failures is None:
            return self.cpu_frac, self.mem_frac
        return (largest_hosts_share(state.host_cpu_hz, state.host_up, self.host_failures),
                largest_hosts_share(state.host_mem_bytes, state.host_up, self.host_failures))

    def figures(self, state: ClusterState) -> dict[str, float]:
        """Capacities, reservations, failover capacities and targets for ``state``."""
        cpu_cap, mem_cap, cpu_res, mem_res = _totals(state, self.min_cpu_hz)
        cpu_target, mem_target = self.targets(state)
        cpu_free, mem_free = _frac_free(cpu_cap, cpu_res), _frac_free(mem_cap, mem_res)
        return {
            "cpu_capacity_hz": cpu_cap, "mem_capacity_bytes": mem_cap,
            "cpu_reserved_hz": cpu_res, "mem_reserved_bytes": mem_res,
            "cpu_failover_frac": cpu_free, "mem_failover_frac": mem_free,
            "cpu_reserved_frac": cpu_res / cpu_cap if cpu_cap > 0 else 0.0,
            "mem_reserved_frac": mem_res / mem_cap if mem_cap > 0 else 0.0,
            "cpu_target_frac": cpu_target, "mem_target_frac": mem_target,
        }

    def _refusal(self, state: ClusterState) -> str:
        f = self.figures(state)
        if f["cpu_capacity_hz"] <= 0:
            return "no host of the cluster is up"
        broken = []
        for kind, fmt, key in (("CPU", _hz, "cpu"), ("memory", _bytes, "mem")):
            free, target = f[f"{key}_failover_frac"], f[f"{key}_target_frac"]
            cap = f["cpu_capacity_hz" if key == "cpu" else "mem_capacity_bytes"]
            res = f["cpu_reserved_hz" if key == "cpu" else "mem_reserved_bytes"]
            if free < target - _EPS:
                free_s, target_s = _pcts(free, target)
                broken.append(f"would leave {free_s} of {kind} unreserved, below the "
                              f"{target_s} reserve ({fmt(res)} of {fmt(cap)} reserved)")
        return "; ".join(broken)



@dataclass(frozen=True, eq=False)  # an array field: compare by identity
class FailoverHostsPolicy:
    """Dedicated failover hosts: they take no ordinary power-on; nothing is refused otherwise."""

    hosts: np.ndarray  # indices into the cluster's hosts
    name: str = field(default="failover-hosts", init=False)

    def __post_init__(self) -> None:
        idx = np.atleast_1d(np.asarray(self.hosts))
        if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0):
            raise ValueError(f"failover hosts must be host indices >= 0, got {self.hosts!r}")
        object.__setattr__(self, "hosts", idx.astype(np.int64))

    def admit(self, state: ClusterState, cpu_res_hz: np.ndarray,
              mem_res_bytes: np.ndarray) -> Decision:
        n = _candidates(cpu_res_hz, mem_res_bytes)[0].size
        return Decision(np.ones(n, dtype=bool), [""] * n)

    def excluded_hosts(self, n_hosts: int) -> np.ndarray:
        if self.hosts.size and self.hosts.max() >= n_hosts:
            raise ValueError(f"failover host {int(self.hosts.max())} is not among the cluster's "
                             f"{n_hosts} hosts")
        mask = np.zeros(n_hosts, dtype=bool)
        mask[self.hosts] = True
        return mask

    def describe(self, state: ClusterState) -> dict[str, float]:
        up = np.asarray(state.host_up, dtype=bool)[self.excluded_hosts(np.size(state.host_up))]
        return {"failover_hosts": float(up.size), "failover_hosts_up": float(up.sum())}


@dataclass(frozen=True)
class NoAdmission:
    """Admission control disabled: every power-on is admitted."""

    name: str = field(default="none", init=False)

    def admit(self, state: ClusterState, cpu_res_hz: np.ndarray,
              mem_res_bytes: np.ndarray) -> Decision:
        n = _candidates(cpu_res_hz, mem_res_bytes)[0].size
        return Decision(np.ones(n, dtype=bool), [""] * n)

    def excluded_hosts(self, n_hosts: int) -> np.ndarray:
        return np.zeros(n_hosts, dtype=bool)

    def describe(self, state: ClusterState) -> dict[str, float]:
        return {}


def _percentage(cpu_frac: float | None = None, mem_frac: float | None = None,
                min_cpu_hz: float = MIN_CPU_HZ, host_failures: int | None = None
                ) -> PercentagePolicy:
    # Shares are either given or derived from host failures; both at once is ambiguous.
    if host_failures is not None:
        if cpu_frac is not None or mem_frac is not None:
            raise ValueError("percentage admission takes cpu_frac/mem_frac or host_failures, "
                             "not both")
        return PercentagePolicy.from_host_failures(host_failures, min_cpu_hz=min_cpu_hz)
    return PercentagePolicy(0.25 if cpu_frac is None else cpu_frac,
                            0.25 if mem_frac is None else mem_frac, min_cpu_hz)


# name -> (one-line description, factory(**params))
ADMISSION_POLICIES: dict[str, tuple[str, Callable[..., AdmissionPolicy]]] = {
    "slots": ("tolerate host_failures (1) host failures, counted in slots of the largest "
              "reservation", SlotPolicy),
    "percentage": ("keep cpu_frac / mem_frac (25 %) of the cluster unreserved, or the share of "
                   "the host_failures largest hosts", _percentage),
    "failover-hosts": ("dedicated failover hosts take no ordinary power-on", FailoverHostsPolicy),
    "none": ("no admission control: every power-on is admitted", NoAdmission),
}


def make_admission(name: str, **params: Any) -> AdmissionPolicy:
    """The admission policy registered as ``name`` with its parameters. Unknown names and
    parameters raise ValueError listing the known ones."""
    if name not in ADMISSION_POLICIES:
        raise ValueError(f"unknown admission policy {name!r}; known: "
                         f"{', '.join(sorted(ADMISSION_POLICIES))}")
    factory = ADMISSION_POLICIES[name][1]
    known = sorted(p for p in inspect.signature(factory).parameters if p != "name")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"admission policy {name!r} has no parameter {', '.join(unknown)}; "
                         f"it takes: {', '.join(known) or 'nothing'}")
    return factory(**params)
