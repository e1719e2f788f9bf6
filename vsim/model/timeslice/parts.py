"""What the time-slicing model is made of: the loads it runs (vCPUs, VMs), the hypervisor's costs,
a vCPU's scheduling state, the interface of a policy, and what a run measures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vsim.model.timeslice.host import HostSlicer

__all__ = ["COSTOPPED", "COUNTERS", "FOREVER", "NS", "READY", "RUNNING", "SLEEPING", "THROTTLED",
           "Policy", "Profile", "SliceResult", "Vcpu", "VcpuLoad", "VmLoad"]

NS = 1_000_000_000
RUNNING, READY, SLEEPING, THROTTLED, COSTOPPED = range(5)
FOREVER = 1 << 62  # a slice length: until the policy preempts it (146 years; no timer is set)
COUNTERS = ("run_s", "ready_s", "idle_s", "throttled_s", "costop_s", "work_s", "dispatches",
            "switches")


@dataclass(frozen=True)
class VcpuLoad:
    """What one vCPU does: bursts of ``burst_s`` CPU seconds (mean) separated by sleeps, so that
    alone on a core it would run ``demand`` of the time. ``demand`` 1: CPU-bound, never sleeps.
    ``pattern``: burst and sleep lengths drawn exponentially (seeded) or fixed at their means.
    ``pin``: the only physical CPU it may run on (-1: any)."""

    demand: float = 1.0
    burst_s: float = 0.010
    pattern: str = "exponential"
    pin: int = -1

    def __post_init__(self) -> None:
        if not 0.0 <= self.demand <= 1.0:
            raise ValueError(f"a vCPU's demand is a share of one core in [0, 1], got {self.demand}")
        if not self.burst_s > 0:
            raise ValueError(f"burst_s must be positive, got {self.burst_s}")
        if self.pattern not in ("exponential", "fixed"):
            raise ValueError(f"pattern is exponential or fixed, got {self.pattern!r}")


@dataclass(frozen=True)
class VmLoad:
    """A VM: its vCPUs, its relative weight (shares) and its cap in cores (0.5: half a core)."""

    vcpus: tuple[VcpuLoad, ...]
    weight: float = 1.0
    cap: float = math.inf

    def __post_init__(self) -> None:
        if not self.vcpus:
            raise ValueError("a VM has at least one vCPU")
        if not self.weight > 0 or not self.cap > 0:
            raise ValueError("weight and cap must be positive")


@dataclass(frozen=True)
class Profile:
    """A hypervisor's costs on one host.

    ``switch_s``: time a physical CPU spends switching from one vCPU to another. ``interference``:
    share of its speed a vCPU loses for each other vCPU that takes turns on its core (caches and
    TLBs refilled after the others ran). ``host_os``: share of each physical CPU that a hosted
    (type 2) hypervisor's host OS takes, in bursts of ``host_os_burst_s`` that compete with the
    vCPUs like any task. ``coschedule``: "none" or "relaxed" (a VM's vCPUs may drift apart by at
    most ``skew_limit_s`` of progress before the leaders are co-stopped, as in ESXi)."""

    name: str = "ideal"
    switch_s: float = 0.0
    interference: float = 0.0
    host_os: float = 0.0
    host_os_burst_s: float = 0.0005
    coschedule: str = "none"
    skew_limit_s: float = 0.003

    def __post_init__(self) -> None:
        if self.coschedule not in ("none", "relaxed"):
            raise ValueError(f"coschedule is none or relaxed, got {self.coschedule!r}")
        if self.switch_s < 0 or self.interference < 0 or not 0 <= self.host_os < 1:
            raise ValueError("switch_s and interference must not be negative; host_os in [0, 1)")


class Vcpu:
    """One vCPU's scheduling state and counters (``vm`` -1: a host OS task)."""

    __slots__ = ("burst_left", "burst_mean", "capped", "charged", "cos", "costop", "credit",
                 "dispatches", "draws", "fixed", "id", "idle", "index", "lat", "pin", "pri", "rate",
                 "ready", "rq", "run", "since", "skew", "sleep_mean", "state", "switches",
                 "throttled", "vm", "vruntime", "weight", "woke", "work")

    def __init__(self, ident: int, vm: int, load: VcpuLoad) -> None:
        self.id, self.vm, self.pin = ident, vm, load.pin
        self.fixed = load.pattern == "fixed"
        cpu_bound = load.demand >= 1.0
        self.burst_mean = math.inf if cpu_bound else load.burst_s * NS
        self.sleep_mean = 0.0 if cpu_bound else (
            math.inf if load.demand == 0 else load.burst_s * NS * (1 - load.demand) / load.demand)
        self.burst_left = math.inf
        self.state, self.since, self.woke = READY, 0, -1
        self.run = self.ready = self.idle = self.throttled = self.costop = 0
        self.work, self.rate, self.dispatches, self.switches = 0.0, 1.0, 0, 0
        self.skew, self.index = 0, 0
        self.capped = self.cos = False  # its VM has a cap; takes part in co-scheduling
        self.lat: list[int] = []
        self.draws: list[float] = []
        # Owned by the policy.
        self.credit = self.pri = self.charged = self.vruntime = self.rq = 0
        self.weight = 1024


def first_idle(cur: list[Vcpu | None]) -> int:
    """The first physical CPU with nothing running (-1: none); ``cur``: what runs on each."""
    for p, c in enumerate(cur):
        if c is None:
            return p
    return -1


class Policy:
    """A scheduling policy: run queues per physical CPU and what they decide. The policies
    derive from this class, which a compiled build of the model calls without Python's method
    lookup; the attributes are set by each policy's ``__init__``."""

    name = "policy"
    tick_ns: int
    epoch_ticks: int  # ticks after which every periodic timer of the policy is back in phase
    ratelimit_ns: int
    # True: a slice is timed from the scheduling decision, so the context switch that follows it
    # is part of the slice (Xen); False: from the vCPU's first instruction.
    slice_includes_switch: bool

    def setup(self, host: HostSlicer) -> None:
        raise NotImplementedError

    def enqueue(self, v: Vcpu, now: int, woken: bool) -> int:
        """Queue a vCPU that became runnable; returns the CPU whose queue it joined."""
        raise NotImplementedError

    def requeue(self, v: Vcpu, p: int, now: int) -> None:
        """Queue again on CPU ``p`` a vCPU that was just taken off it, still runnable."""
        raise NotImplementedError

    def pick(self, p: int, now: int) -> Vcpu | None:
        """Take the vCPU that runs next on CPU ``p`` off the queues (None: ``p`` idles)."""
        raise NotImplementedError

    def waiting(self, p: int) -> int:
        raise NotImplementedError

    def slice_ns(self, v: Vcpu, p: int, now: int) -> int:
        """How long ``v`` may run now; ``FOREVER``: until a tick or a wake-up preempts it."""
        raise NotImplementedError

    def charge(self, v: Vcpu, ran: int, now: int) -> None:
        raise NotImplementedError

    def budget_ns(self, v: Vcpu) -> float:
        """What ``v`` may still run this cap period; asked only for vCPUs of capped VMs."""
        raise NotImplementedError

    def preempts(self, v: Vcpu, cur: Vcpu, p: int, now: int) -> bool:
        raise NotImplementedError

    def tick(self, now: int) -> tuple[list[int], list[int]]:
        """Periodic work; returns the CPUs whose vCPU must be preempted and the VMs whose cap
        was refilled."""
        raise NotImplementedError

    def fingerprint(self) -> tuple:
        raise NotImplementedError


@dataclass
class SliceResult:
    """Counters per vCPU over the measured window (``vm`` -1: host OS tasks) and per host."""

    window_s: float
    vm: np.ndarray
    counters: dict[str, np.ndarray]
    latencies_s: list[np.ndarray]  # per vCPU: wake-up latencies
    pcpu_idle_s: float
    switch_overhead_s: float
    slices: int  # timeslices simulated (dispatches), including the ones added up by period
    skipped_s: float = 0.0  # of the window, added up period by period
