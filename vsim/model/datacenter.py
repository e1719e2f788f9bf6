"""The datacenter's state: hosts and VMs as numpy arrays indexed by integer ids.

Per-host and per-VM state lives in arrays so that every step touches all hosts or VMs with a few
vectorised operations. Specs (cores, RAM, vCPUs, ...) are fixed at build time; the dynamic columns
(host state, VM placement, commitments) change only through the methods here, which keep the
per-host commitments equal to the sums over the VMs placed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vsim.model.power import PowerCurves

__all__ = ["Datacenter", "HostState", "Hosts", "PlacementView", "VmState", "Vms"]


# The states are plain ints, not IntEnum members: numpy compares an array with a Python int at
# full speed, but takes an IntEnum member for an int64 array, so ``state == VmState.RUNNING``
# over 100,000 VMs cost ten times as much (and the simulation makes such tests at every event).


class HostState:
    OFF = 0
    BOOTING = 1
    ON = 2
    FAILED = 3  # down until repaired: holds no VM, draws no power, takes no placement


class VmState:
    FUTURE = 0  # not arrived yet
    QUEUED = 1  # arrived, waiting for a host
    STARTING = 2  # placed on a host that is still booting
    RUNNING = 3
    DONE = 4  # departed
    MIGRATING = 5  # running on its host while being copied to ``Vms.migrating_to``
    DOWN = 6  # its host failed: on no host until it is restarted somewhere
    BOOTING = 7  # restarted on its host, the guest still booting (not serving yet)


def _names(states: type) -> tuple[str, ...]:
    """The states' names in lower case, indexed by value."""
    values = {v: k.lower() for k, v in vars(states).items() if k.isupper()}
    return tuple(values[i] for i in range(len(values)))


HOST_STATE_NAMES = _names(HostState)
VM_STATE_NAMES = _names(VmState)


@dataclass
class Hosts:
    """Physical hosts. ``site`` indexes ``Datacenter.site_names``."""

    name: list[str]
    group: list[str]
    site: np.ndarray
    cores: np.ndarray
    core_hz: np.ndarray
    ram_bytes: np.ndarray
    boot_time_s: np.ndarray
    power: PowerCurves
    state: np.ndarray  # HostState, uint8
    # Optional arrays given as None are filled with their defaults in __post_init__, so they
    # are arrays on every instance.
    nic_bytes_s: np.ndarray = None  # type: ignore[assignment]  # per host (default 1 Gbit/s)
    # The hypervisor's time-slicing costs (see cpu.contention_loss); default none.
    switch_loss: np.ndarray = None  # type: ignore[assignment]
    interference: np.ndarray = None  # type: ignore[assignment]
    # Memory admission (hosts whose memory is modelled): what reservations may take (RAM less
    # the free memory the hypervisor keeps) and the swap space for the unreserved rest.
    mem_reservable: np.ndarray = None  # type: ignore[assignment]
    swap_size: np.ndarray = None  # type: ignore[assignment]
    # Commitments of the VMs placed on each host (STARTING or RUNNING).
    vcpus_used: np.ndarray = field(init=False)
    ram_used: np.ndarray = field(init=False)
    reservation_used_hz: np.ndarray = field(init=False)
    cpu_committed_hz: np.ndarray = field(init=False)  # sum of the VMs' nominal CPU capacity
    vm_count: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.name)
        self.cores = np.asarray(self.cores, dtype=np.int64)
        self.core_hz = np.asarray(self.core_hz, dtype=float)
        self.ram_bytes = np.asarray(self.ram_bytes, dtype=float)
        self.boot_time_s = np.asarray(self.boot_time_s, dtype=float)
        self.state = np.asarray(self.state, dtype=np.uint8)
        self.site = np.asarray(self.site, dtype=np.int32)
        self.capacity_hz = self.cores * self.core_hz
        self.nic_bytes_s = (np.full(n, 125e6) if self.nic_bytes_s is None
                            else np.asarray(self.nic_bytes_s, dtype=float))
        self.switch_loss = (np.zeros(n) if self.switch_loss is None
                            else np.asarray(self.switch_loss, dtype=float))
        self.interference = (np.zeros(n) if self.interference is None
                             else np.asarray(self.interference, dtype=float))
        self.group_names = list(dict.fromkeys(self.group))  # in order of first appearance
        self.group_id = np.array([self.group_names.index(g) for g in self.group], dtype=np.int32)
        self.vcpus_used = np.zeros(n)
        self.ram_used = np.zeros(n)
        self.reservation_used_hz = np.zeros(n)
        self.cpu_committed_hz = np.zeros(n)
        self.vm_count = np.zeros(n, dtype=np.int64)
        self.mem_reservable = (np.full(n, np.inf) if self.mem_reservable is None
                               else np.asarray(self.mem_reservable, dtype=float))
        self.swap_size = (np.full(n, np.inf) if self.swap_size is None
                          else np.asarray(self.swap_size, dtype=float))
        self.mem_reserved_used = np.zeros(n)
        self.swap_used = np.zeros(n)

    def __len__(self) -> int:
        return len(self.name)


@dataclass
class Vms:
    """Virtual machines. ``vcpu_hz`` is the speed of one vCPU at 100 % utilisation."""

    name: list[str]
    group: list[str]
    vcpus: np.ndarray
    vcpu_hz: np.ndarray
    ram_bytes: np.ndarray
    shares: np.ndarray
    reservation_hz: np.ndarray
    limit_hz: np.ndarray
    template: np.ndarray  # index into Datacenter.template_names, -1 for none
    priority: np.ndarray
    arrival_s: np.ndarray
    lifetime_s: np.ndarray
    # A VM-host rule: the host group (index into Hosts.group_names) the VM must run in; -1 any.
    host_group: np.ndarray = None  # type: ignore[assignment]
    # Memory admission: reserved host memory (reservation and overhead) and swap space needed.
    mem_reserved: np.ndarray = None  # type: ignore[assignment]
    swap_need: np.ndarray = None  # type: ignore[assignment]
    state: np.ndarray = field(init=False)
    host: np.ndarray = field(init=False)
    migrating_to: np.ndarray = field(init=False)
    start_s: np.ndarray = field(init=False)
    end_s: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.name)
        self.vcpus = np.asarray(self.vcpus, dtype=np.int64)
        for attr in ("vcpu_hz", "ram_bytes", "shares", "reservation_hz", "limit_hz",
                     "arrival_s", "lifetime_s"):
            setattr(self, attr, np.asarray(getattr(self, attr), dtype=float))
        self.template = np.asarray(self.template, dtype=np.int32)
        self.priority = np.asarray(self.priority, dtype=np.int32)
        self.host_group = (np.full(n, -1, dtype=np.int32) if self.host_group is None
                           else np.asarray(self.host_group, dtype=np.int32))
        self.mem_reserved = (np.zeros(n) if self.mem_reserved is None
                             else np.asarray(self.mem_reserved, dtype=float))
        self.swap_need = (np.zeros(n) if self.swap_need is None
                          else np.asarray(self.swap_need, dtype=float))
        self.capacity_hz = self.vcpus * self.vcpu_hz
        self.state = np.full(n, VmState.FUTURE, dtype=np.uint8)
        self.host = np.full(n, -1, dtype=np.int32)
        self.migrating_to = np.full(n, -1, dtype=np.int32)
        self.start_s = np.full(n, np.nan)
        self.end_s = np.full(n, np.nan)

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class PlacementView:
    """What placement policies may read: read-only views of specs, states and commitments."""

    host_cores: np.ndarray
    host_capacity_hz: np.ndarray
    host_ram_bytes: np.ndarray
    host_state: np.ndarray
    host_vcpus_used: np.ndarray
    host_ram_used: np.ndarray
    host_reservation_used_hz: np.ndarray
    host_vm_count: np.ndarray
    host_cpu_committed_hz: np.ndarray
    vm_vcpus: np.ndarray
    vm_ram_bytes: np.ndarray
    vm_reservation_hz: np.ndarray
    vm_capacity_hz: np.ndarray
    vm_priority: np.ndarray
    power: PowerCurves
    host_mem_reservable: np.ndarray | None = None
    host_mem_reserved: np.ndarray | None = None
    host_swap_size: np.ndarray | None = None
    host_swap_used: np.ndarray | None = None
    vm_mem_reserved: np.ndarray | None = None
    vm_swap_need: np.ndarray | None = None


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class Datacenter:
    """Sites, hosts and VMs, and the only operations that move VMs between places."""

    def __init__(self, hosts: Hosts, vms: Vms, site_names: list[str], template_names: list[str]):
        self.hosts = hosts
        self.vms = vms
        self.site_names = site_names
        self.template_names = template_names
        self.memory_admission = bool(vms.mem_reserved.any() or vms.swap_need.any())

    def view(self) -> PlacementView:
        h, v = self.hosts, self.vms
        ro = _readonly
        return PlacementView(
            host_cores=ro(h.cores), host_capacity_hz=ro(h.capacity_hz),
            host_ram_bytes=ro(h.ram_bytes), host_state=ro(h.state),
            host_vcpus_used=ro(h.vcpus_used), host_ram_used=ro(h.ram_used),
            host_reservation_used_hz=ro(h.reservation_used_hz), host_vm_count=ro(h.vm_count),
            host_cpu_committed_hz=ro(h.cpu_committed_hz), vm_vcpus=ro(v.vcpus),
            vm_ram_bytes=ro(v.ram_bytes), vm_reservation_hz=ro(v.reservation_hz),
            vm_capacity_hz=ro(v.capacity_hz), vm_priority=ro(v.priority),
            power=h.power,
            host_mem_reservable=_readonly(h.mem_reservable),
            host_mem_reserved=_readonly(h.mem_reserved_used),
            host_swap_size=_readonly(h.swap_size), host_swap_used=_readonly(h.swap_used),
            vm_mem_reserved=_readonly(v.mem_reserved), vm_swap_need=_readonly(v.swap_need),
        )

    def _commit(self, vm_ids: np.ndarray, host_ids: np.ndarray, sign: float,
                count: bool = True) -> None:
        h, v = self.hosts, self.vms
        n = len(h)
        h.vcpus_used += sign * np.bincount(host_ids, weights=v.vcpus[vm_ids], minlength=n)
        h.ram_used += sign * np.bincount(host_ids, weights=v.ram_bytes[vm_ids], minlength=n)
        h.reservation_used_hz += sign * np.bincount(
            host_ids, weights=v.reservation_hz[vm_ids], minlength=n
        )
        h.cpu_committed_hz += sign * np.bincount(host_ids, weights=v.capacity_hz[vm_ids], minlength=n)
        if self.memory_admission:
            h.mem_reserved_used += sign * np.bincount(host_ids, weights=v.mem_reserved[vm_ids],
                                                      minlength=n)
            h.swap_used += sign * np.bincount(host_ids, weights=v.swap_need[vm_ids], minlength=n)
        if count:
            h.vm_count += int(sign) * np.bincount(host_ids, minlength=n)

    def start_migration(self, vm: int, dest: int) -> None:
        """A running VM starts moving to ``dest``: it keeps running (and its commitments) on its
        host, and the destination reserves room for it until the copy completes."""
        v = self.vms
        assert v.state[vm] == VmState.RUNNING
        self._commit(np.array([vm]), np.array([dest]), +1.0, count=False)
        v.migrating_to[vm] = dest
        v.state[vm] = VmState.MIGRATING

    def finish_migration(self, vm: int) -> int:
        """The copy completed: the VM runs on its destination now. Returns the source host."""
        v = self.vms
        source, dest = int(v.host[vm]), int(v.migrating_to[vm])
        self._commit(np.array([vm]), np.array([source]), -1.0)
        self.hosts.vm_count[dest] += 1
        v.host[vm] = dest
        v.migrating_to[vm] = -1
        v.state[vm] = VmState.RUNNING
        return source

    def abort_migration(self, vm: int) -> None:
        """The copy was given up: the VM stays where it runs and the destination's room is freed."""
        v = self.vms
        self._commit(np.array([vm]), np.array([int(v.migrating_to[vm])]), -1.0, count=False)
        v.migrating_to[vm] = -1
        v.state[vm] = VmState.RUNNING

    def place(self, vm_ids: np.ndarray, host_ids: np.ndarray, now: float) -> np.ndarray:
        """Put queued VMs on hosts; returns the VMs that start running now (host already on)."""
        v = self.vms
        v.host[vm_ids] = host_ids
        self._commit(vm_ids, host_ids, +1.0)
        on = self.hosts.state[host_ids] == HostState.ON
        v.state[vm_ids] = np.where(on, VmState.RUNNING, VmState.STARTING)
        started = vm_ids[on]
        v.start_s[started] = now
        return started

    def restart(self, vm_ids: np.ndarray, host_ids: np.ndarray) -> None:
        """Down VMs are powered on again on hosts that are on: they boot there."""
        v = self.vms
        assert np.all(v.state[vm_ids] == VmState.DOWN)
        assert np.all(self.hosts.state[host_ids] == HostState.ON)
        v.host[vm_ids] = host_ids
        self._commit(vm_ids, host_ids, +1.0)
        v.state[vm_ids] = VmState.BOOTING

    def begin_boot(self, vm_ids: np.ndarray) -> None:
        """VMs just started on their host boot first (they run once :meth:`booted`)."""
        assert np.all(self.vms.state[vm_ids] == VmState.RUNNING)
        self.vms.state[vm_ids] = VmState.BOOTING

    def booted(self, vm_ids: np.ndarray) -> None:
        """Restarted VMs finished booting: they run."""
        assert np.all(self.vms.state[vm_ids] == VmState.BOOTING)
        self.vms.state[vm_ids] = VmState.RUNNING

    def fail_hosts(self, hosts: np.ndarray) -> np.ndarray:
        """``hosts`` fail: every VM placed on them is down from now, a migration away from them
        lost with it. Returns those VMs. Migrations *to* them must have been aborted first."""
        h, v = self.hosts, self.vms
        dead = np.zeros(len(h) + 1, dtype=bool)  # [-1]: VMs on no host
        dead[hosts] = True
        ids = np.flatnonzero(dead[v.host])
        assert not np.any((v.state == VmState.MIGRATING) & dead[v.migrating_to] & ~dead[v.host]), (
            "abort the migrations into failing hosts first")
        moving = ids[v.state[ids] == VmState.MIGRATING]
        self._commit(moving, v.migrating_to[moving].astype(np.int64), -1.0, count=False)
        self._commit(ids, v.host[ids].astype(np.int64), -1.0)
        v.host[ids] = -1
        v.migrating_to[ids] = -1
        v.state[ids] = VmState.DOWN
        h.state[hosts] = HostState.FAILED
        return ids

    def start_waiting(self, host: int, now: float) -> np.ndarray:
        """A host finished booting: its STARTING VMs run from now. Returns them."""
        v = self.vms
        waiting = np.flatnonzero((v.host == host) & (v.state == VmState.STARTING))
        v.state[waiting] = VmState.RUNNING
        v.start_s[waiting] = now
        return waiting

    def shut_down(self, vm_ids: np.ndarray) -> None:
        """Running VMs are powered off to be started elsewhere (a cold move): on no host, down,
        until :meth:`restart` boots them again."""
        v = self.vms
        assert np.all(v.state[vm_ids] == VmState.RUNNING)
        self._commit(vm_ids, v.host[vm_ids].astype(np.int64), -1.0)
        v.host[vm_ids] = -1
        v.state[vm_ids] = VmState.DOWN

    def remove(self, vm_ids: np.ndarray, now: float) -> None:
        """VMs leave their hosts for good (departure); a migration under way is abandoned. A VM
        that is down leaves from nowhere."""
        v = self.vms
        moving = vm_ids[v.state[vm_ids] == VmState.MIGRATING]
        self._commit(moving, v.migrating_to[moving].astype(np.int64), -1.0, count=False)
        v.migrating_to[vm_ids] = -1
        placed = vm_ids[v.host[vm_ids] >= 0]
        self._commit(placed, v.host[placed].astype(np.int64), -1.0)
        v.host[vm_ids] = -1
        v.state[vm_ids] = VmState.DONE
        v.end_s[vm_ids] = now

    def check_invariants(self) -> None:
        """Raise AssertionError when the state is inconsistent (used by tests)."""
        h, v = self.hosts, self.vms
        running = ((v.state == VmState.RUNNING) | (v.state == VmState.MIGRATING)
                   | (v.state == VmState.BOOTING))
        placed = running | (v.state == VmState.STARTING)
        moving = v.state == VmState.MIGRATING
        assert np.all((v.host >= 0) == placed), "a VM is on a host iff it is starting or running"
        assert np.all((v.migrating_to >= 0) == moving), "a VM has a destination iff migrating"
        assert np.all(h.state[v.host[running]] == HostState.ON), (
            "running VMs are on hosts that are on"
        )
        assert np.all(v.migrating_to[moving] != v.host[moving]), "migrations go somewhere else"
        counts = np.bincount(v.host[placed], minlength=len(h))
        assert np.array_equal(counts, h.vm_count), "host VM counts match placements"
        ram = np.bincount(v.host[placed], weights=v.ram_bytes[placed], minlength=len(h))
        ram += np.bincount(v.migrating_to[moving], weights=v.ram_bytes[moving], minlength=len(h))
        assert np.allclose(ram, h.ram_used), "host RAM commitments match placements"
        assert np.all(h.vm_count[h.state == HostState.OFF] == 0), "hosts that are off hold no VM"
        assert np.all(h.vm_count[h.state == HostState.FAILED] == 0), "failed hosts hold no VM"
        assert np.all(v.host[v.state == VmState.DOWN] == -1), "a VM that is down is on no host"
