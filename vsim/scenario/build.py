"""The one place where a validated scenario becomes runtime objects (arrays, sources, policies)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsim.errors import Problem, ScenarioError
from vsim.model.datacenter import Datacenter, Hosts, HostState, Vms
from vsim.model.interfaces import (
    AvailabilitySetup,
    ConsolidationSettings,
    DemandSource,
    Maintenance,
    Placement,
    PowerManagement,
)
from vsim.model.jobs import Jobs
from vsim.model.memory_run import MemoryRun
from vsim.model.migration import MigrationFabric, MigrationParams, fabric_for
from vsim.model.moves import MoveSpec
from vsim.model.power import PowerCurves
from vsim.model.slicing import SlicedHosts, SlicingSpec
from vsim.model.storage import StorageSetup
from vsim.model.traffic import TrafficSetup
from vsim.policies import make_placement
from vsim.policies.consolidation import DynamicConsolidation
from vsim.policies.overload import make_overload_detector
from vsim.policies.selection import make_vm_selection
from vsim.rng import RandomStreams
from vsim.scenario.build_ha import build_availability
from vsim.scenario.build_memory import build_memory
from vsim.scenario.build_moves import build_moves
from vsim.scenario.build_network import build_traffic
from vsim.scenario.build_storage import build_storage
from vsim.scenario.loader import LoadedScenario
from vsim.scenario.schema import (
    TRACE_WORKLOADS,
    AlibabaWorkload,
    AzureWorkload,
    BitbrainsWorkload,
    ConstantWorkload,
    PlanetLabWorkload,
    PublicTraceWorkload,
    SyntheticWorkload,
    VmGroup,
    did_you_mean,
)
from vsim.traces import (
    DemandTable,
    SyntheticSpec,
    generate_synthetic,
    list_planetlab_days,
    read_alibaba,
    read_azure,
    read_bitbrains,
    read_planetlab,
)
from vsim.units import format_quantity, parse_quantity

__all__ = ["RunSetup", "build"]

_SHARES_PER_VCPU = {"low": 500.0, "normal": 1000.0, "high": 2000.0}  # ESXi's per-vCPU presets


@dataclass
class RunSetup:
    dc: Datacenter
    sources: list[DemandSource]
    jobs: Jobs | None
    placement: Placement
    power: PowerManagement
    duration_s: float
    period_s: float
    stop_when_jobs_done: bool
    consolidation: ConsolidationSettings | None
    vm_series: list[str]  # the workload series each VM follows ("" for none)
    migration: MigrationFabric
    maintenance: list[Maintenance]
    slicing: SlicedHosts | None = None
    memory: MemoryRun | None = None
    availability: AvailabilitySetup | None = None
    storage: StorageSetup | None = None
    traffic: TrafficSetup | None = None
    moves: list[MoveSpec] = field(default_factory=list)


def _names(group: str, count: int) -> list[str]:
    return [group] if count == 1 else [f"{group}-{i}" for i in range(count)]




class _Builder:
    def __init__(self, loaded: LoadedScenario, seed: int) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.streams = RandomStreams(seed)
        self.problems: list[Problem] = []
        self._traces: dict[tuple[str, str | None], DemandTable] = {}
        self._trace_next_row: dict[str, int] = {}
        self._public_traces: dict[str, DemandTable] = {}
        self._group_rows: dict[int, tuple[str, np.ndarray]] = {}  # VM group -> its trace rows

    def fail(self, loc: tuple[str | int, ...], message: str, hint: str = "") -> None:
        self.problems.append(Problem(message, ".".join(map(str, loc)), self.loaded.line_of(loc), hint))

    def unique_names(self) -> None:
        """Each name once in a section: --set, rules and result tables find items by name."""
        for section in ("sites", "hosts", "vms", "datastores", "templates", "networks", "dr",
                        "maintenance", "moves", "failures"):
            first: dict[str, int] = {}
            for i, item in enumerate(getattr(self.spec, section)):
                if item.name is None:  # unnamed items are known by their index
                    continue
                if item.name in first:
                    self.fail((section, i, "name"), f"the name {item.name!r} is taken by item "
                              f"{first[item.name]} of {section}", "give each item its own name")
                first.setdefault(item.name, i)

    def raise_if_failed(self) -> None:
        if self.problems:
            raise ScenarioError(self.problems, file=self.loaded.file)

    # --- hosts ---------------------------------------------------------------------------------

    def hosts(self) -> tuple[Hosts, list[str]]:
        spec = self.spec
        sites = [s.name for s in spec.sites] or ["site-1"]
        groups = spec.hosts
        for g, group in enumerate(groups):
            if group.site is not None and group.site not in sites:
                self.fail(("hosts", g, "site"), f"unknown site {group.site!r}",
                          did_you_mean(group.site, sites))
        self.raise_if_failed()
        counts = [group.count for group in groups]
        of_group = np.repeat(np.arange(len(groups)), counts)
        names = [n for group in groups for n in _names(group.name, group.count)]
        if spec.host_order == "interleaved":
            # Round-robin over the groups: the k-th host of every group, then the (k+1)-th, ...
            rank = np.concatenate([np.arange(c) for c in counts])
            order = np.lexsort((of_group, rank))
            of_group = of_group[order]
            names = [names[i] for i in order]
        self.host_group_of = of_group.tolist()

        def per_host(values: list, dtype: type = float) -> np.ndarray:
            return np.asarray(values, dtype=dtype)[of_group]

        hosts = Hosts(
            name=names,
            group=[groups[g].name for g in of_group],
            site=per_host([sites.index(g.site or sites[0]) for g in groups], np.int32),
            cores=per_host([g.cores for g in groups], np.int64),
            core_hz=per_host([g.core_speed for g in groups]),
            ram_bytes=per_host([g.ram for g in groups]),
            boot_time_s=per_host([g.boot_time for g in groups]),
            nic_bytes_s=per_host([g.network for g in groups]),
            switch_loss=per_host([g.hypervisor.switch_loss for g in groups]),
            interference=per_host([g.hypervisor.interference for g in groups]),
            power=PowerCurves([g.power.curve() for g in groups], [g.power.off for g in groups],
                              of_host=of_group),
            state=per_host([HostState.ON if g.initially == "on" else HostState.OFF
                            for g in groups], np.uint8),
        )
        return hosts, sites

    # --- workloads -----------------------------------------------------------------------------

    def series_for(self, g: int, group: VmGroup, count: int | str | None) -> DemandTable | None:
        """The demand table rows of a VM group (``count`` rows, or all of a trace's if None)."""
        if group.workload is None:
            return None
        spec = self.spec.workloads.get(group.workload)
        if spec is None:
            self.fail(("vms", g, "workload"), f"unknown workload {group.workload!r}",
                      did_you_mean(group.workload, list(self.spec.workloads)))
            return None
        name = group.workload
        if isinstance(spec, SyntheticWorkload):
            n = count if isinstance(count, int) else 1
            duration = self.spec.duration if math.isfinite(self.spec.duration) else 86400.0
            return generate_synthetic(
                _synthetic_spec(spec), n, duration, spec.step,
                self.streams.generator(f"workload/{name}/{group.name}"), name=group.name,
            )
        if isinstance(spec, ConstantWorkload):
            n = count if isinstance(count, int) else 1
            return DemandTable(step_s=86400.0, cpu=np.full((n, 1), spec.level), source="constant",
                               names=tuple(_names(group.name, n)))
        assert isinstance(spec, TRACE_WORKLOADS)
        table = (self._planetlab(name, spec) if isinstance(spec, PlanetLabWorkload)
                 else self._public_trace(name, spec))
        if table is None:
            return None
        # Groups that share a trace take consecutive series, wrapping around at the end.
        start = self._trace_next_row.get(name, 0)
        if isinstance(count, str):
            # A share of the trace, rounded up; the last group takes what is left (CloudSim's
            # VM types in blocks of ceil(N / types) over the sorted traces).
            share = parse_quantity(count, "fraction")
            n = max(0, min(math.ceil(share * table.n_series - 1e-9), table.n_series - start))
            if n == 0:
                self.fail(("vms", g, "count"), f"no series of {name!r} left for this group",
                          "the shares of the groups using this trace add up to more than 100%")
                return None
        else:
            n = count if count is not None else table.n_series
        rows = (start + np.arange(n)) % table.n_series
        self._trace_next_row[name] = start + n
        self._group_rows.setdefault(g, (name, rows))
        return table.select(rows)

    def active_memory_for(self, g: int, group: VmGroup, workload: str,
                          n: int) -> DemandTable | None:
        """The series of a VM group's active memory share (``memory.active: {workload: W}``).

        A trace with a memory column gives it: the group's own rows when the group's CPU follows
        the same trace (each VM keeps its own memory), else the next rows as for CPU. Any other
        workload gives its CPU series (rows after the CPU's), as before traces had memory."""
        table = self.trace_for(g, group, workload, n, "memory")
        if table is None or table.memory is None:
            return table
        return DemandTable(step_s=table.step_s, cpu=table.memory, names=table.names,
                           source=f"{table.source}:memory", start_s=table.start_s,
                           lifetime_s=table.lifetime_s)

    def trace_for(self, g: int, group: VmGroup, workload: str, n: int,
                  what: str) -> DemandTable | None:
        """The series of ``workload`` a VM group's ``what`` (memory, traffic, writes) follows:
        the group's own rows when its CPU follows the same public trace (each VM keeps its own
        series), else the next rows as for CPU."""
        as_group = group.model_copy(update={"workload": workload, "name": f"{group.name}/{what}"})
        spec = self.spec.workloads.get(workload)
        own = self._group_rows.get(g)
        if own is not None and own[0] == workload and not isinstance(spec, PlanetLabWorkload):
            table = self._public_trace(workload, spec)  # type: ignore[arg-type]
            return table.select(own[1]) if table is not None else None
        return self.series_for(g, as_group, n)

    def _trace_problem(self, where: tuple[str, ...], exc: ScenarioError) -> None:
        for p in exc.problems:
            trace_file = exc.file or ""
            detail = f"{trace_file}{':' + str(p.line) if p.line else ''}: " if trace_file else ""
            self.fail(where, f"{detail}{p.message}", p.hint)

    def _public_trace(self, name: str, spec: PublicTraceWorkload) -> DemandTable | None:
        """A Bitbrains, Azure or Alibaba trace, read once per workload (``vms``: the first N)."""
        if name not in self._public_traces:
            path = Path(spec.path)
            path = path if path.is_absolute() else self.loaded.base_dir / path
            try:
                if isinstance(spec, BitbrainsWorkload):
                    table = read_bitbrains(path, spec.step)
                elif isinstance(spec, AzureWorkload):
                    limits = [v for v in (spec.max_vms, spec.vms) if v is not None]
                    table = read_azure(path, min(limits) if limits else None)
                else:
                    assert isinstance(spec, AlibabaWorkload)
                    table = read_alibaba(path, spec.step, spec.vms)
            except ScenarioError as exc:
                self._trace_problem(("workloads", name, "path"), exc)
                return None
            if spec.vms is not None and spec.vms < table.n_series:
                table = table.select(np.arange(spec.vms))
            self._public_traces[name] = table
        return self._public_traces[name]

    def _planetlab(self, name: str, spec: PlanetLabWorkload) -> DemandTable | None:
        key = (spec.day, spec.path)
        if key not in self._traces:
            path = None
            if spec.path is not None:
                path = Path(spec.path)
                path = path if path.is_absolute() else self.loaded.base_dir / path
            try:
                if spec.day == "all":
                    days = [read_planetlab(day, path) for day, _ in list_planetlab_days(path)]
                    self._traces[key] = DemandTable(
                        step_s=days[0].step_s, cpu=np.concatenate([d.cpu for d in days]),
                        names=tuple(n for d in days for n in d.names), source="planetlab:all")
                else:
                    self._traces[key] = read_planetlab(spec.day, path)
            except ScenarioError as exc:
                self._trace_problem(("workloads", name, "path" if spec.path is not None else "day"),
                                    exc)
                return None
        return self._traces[key]

    # --- VMs -----------------------------------------------------------------------------------

    def vms(self, hosts: Hosts) -> tuple[Vms, list[DemandSource], list[str], list[str]]:
        spec = self.spec
        default_speed = float(hosts.core_hz.max())
        templates: list[str] = []
        cols: dict[str, list] = {k: [] for k in (
            "name", "group", "vcpus", "speed", "ram", "shares", "res", "limit", "template",
            "priority", "arrival", "lifetime", "dirty", "wws", "net", "net_follows", "burst",
            "rule")}
        sources: list[DemandSource] = []
        series: list[str] = []
        for g, group in enumerate(spec.vms):
            self._check_fits(g, group, hosts)
            spec_w = self.spec.workloads.get(group.workload or "")
            if isinstance(group.count, str) and not isinstance(spec_w, TRACE_WORKLOADS):
                self.fail(("vms", g, "count"), "a share of a trace needs a trace workload",
                          "give a number of VMs")
                continue
            tiled = isinstance(spec_w, PlanetLabWorkload) and spec_w.tile_days is not None
            library = None
            if tiled:
                if not isinstance(group.count, int):
                    self.fail(("vms", g, "count"), "a tiled trace workload needs a number of VMs",
                              "give count: N (each VM draws its own days)")
                    continue
                library = self._planetlab(group.workload or "", spec_w)  # type: ignore[arg-type]
                table = None
            else:
                table = self.series_for(g, group, group.count)
            if isinstance(group.count, int):
                count = group.count
            else:
                count = table.n_series if table is not None else 1
            if group.workload is None and group.count is None:
                self.fail(("vms", g, "count"), "a VM group without a trace workload needs a count",
                          "add count: N")
            first = len(cols["name"])
            names = _names(group.name, count)
            speed = group.vcpu_speed or default_speed
            shares = (_SHARES_PER_VCPU[group.shares] * group.vcpus
                      if isinstance(group.shares, str) else float(group.shares))
            if group.template is not None and group.template not in templates:
                templates.append(group.template)
            arrival = table.start_s if table is not None else np.zeros(count)
            if group.start is not None:
                # Evenly spread over start_over: VM i arrives at start + i * start_over / count.
                arrival = group.start + np.arange(count) * (group.start_over / count)
            lifetime = table.lifetime_s if table is not None else np.full(count, np.inf)
            if group.lifetime is not None:
                lifetime = np.full(count, group.lifetime)
            cols["name"] += names
            cols["group"] += [group.name] * count
            cols["vcpus"] += [group.vcpus] * count
            cols["speed"] += [speed] * count
            cols["ram"] += [group.ram] * count
            cols["shares"] += [shares] * count
            cols["res"] += [group.reservation] * count
            cols["limit"] += [group.limit] * count
            cols["template"] += [templates.index(group.template) if group.template else -1] * count
            cols["priority"] += [group.priority] * count
            cols["arrival"] += list(arrival)
            cols["lifetime"] += list(lifetime)
            cols["dirty"] += [group.dirty_rate] * count
            wws = group.working_set
            cols["wws"] += [group.ram * parse_quantity(wws, "fraction") if isinstance(wws, str)
                            else min(float(wws), group.ram)] * count
            cols["net"] += [group.network] * count
            cols["net_follows"] += [group.network_follows_cpu] * count
            cols["burst"] += [group.cpu_burst] * count
            cols["rule"] += [-1 if group.hosts is None or group.hosts not in hosts.group_names
                             else hosts.group_names.index(group.hosts)] * count
            if library is not None and isinstance(spec_w, PlanetLabWorkload) and spec_w.tile_days:
                # Tiled: each VM follows tile_days traces drawn from the whole library.
                rng = self.streams.generator(f"workload/{group.workload}/{group.name}/tiles")
                tiles = rng.integers(0, library.n_series, size=(count, spec_w.tile_days))
                ids = np.arange(first, first + count)
                sources.append(DemandSource(ids, library.step_s, None, library=library.cpu,
                                            tiles=tiles.astype(np.int32)))
                series += [f"tiled:{group.workload}"] * count
            elif table is not None:
                ids = np.arange(first, first + count)
                sources.append(DemandSource(ids, table.step_s, np.ascontiguousarray(
                    table.cpu.T, dtype=np.float64)))
                series += list(table.names)
            else:
                series += [""] * count
        vms = Vms(
            name=cols["name"], group=cols["group"], vcpus=np.array(cols["vcpus"], dtype=np.int64),
            vcpu_hz=np.array(cols["speed"]), ram_bytes=np.array(cols["ram"]),
            shares=np.array(cols["shares"]), reservation_hz=np.array(cols["res"]),
            limit_hz=np.array(cols["limit"]), template=np.array(cols["template"], dtype=np.int32),
            priority=np.array(cols["priority"], dtype=np.int32),
            arrival_s=np.array(cols["arrival"], dtype=float),
            lifetime_s=np.array(cols["lifetime"], dtype=float),
            host_group=np.array(cols["rule"], dtype=np.int32),
        )
        self.vm_burst_s = np.array(cols["burst"], dtype=float)
        self.vm_memory = {k: np.array(cols[k], dtype=float) for k in ("dirty", "wws", "net")}
        self.vm_net_follows = np.array(cols["net_follows"], dtype=bool)
        return vms, sources, templates, series

    # --- migration and maintenance -------------------------------------------------------------

    def migration(self, dc: Datacenter) -> MigrationFabric:
        m = self.spec.migration
        sites = self.spec.sites
        fabric = np.array([s.fabric for s in sites] or [math.inf])
        uplink = np.array([s.uplink for s in sites] or [math.inf])
        ac = m.auto_converge
        params = MigrationParams(
            model=m.model, max_bandwidth_bytes_s=m.max_bandwidth, downtime_limit_s=m.downtime_limit,
            switchover_bandwidth_bytes_s=m.switchover_bandwidth, switchover_check=m.switchover_check,
            max_rounds=m.max_rounds, max_sent_ratio=m.max_sent,
            on_no_convergence=m.on_no_convergence, throttle_initial=ac.initial,
            throttle_increment=ac.increment, throttle_max=ac.max, throttle_trigger=ac.trigger,
            zero_page_frac=m.zero_pages, round0_tail_bytes=m.round0_tail, rate_window_s=m.rate_window,
            fresh_page_bytes_s=m.fresh_page_bandwidth, page_bytes=m.page_size,
            page_overhead_bytes=m.page_overhead,
            setup_s=m.setup, resume_s=m.resume, device_state_bytes=m.device_state,
            cpu_cycles_per_byte=m.cpu_cost, postcopy_slowdown=m.postcopy_slowdown,
            dirty_follows_cpu=m.dirty_follows_cpu, max_per_host=m.max_per_host,
            max_total=math.inf if m.max_total is None else m.max_total,
        )
        mem = self.vm_memory
        return fabric_for(dc, params, site_fabric=fabric, site_uplink=uplink,
                          dirty_bytes_s=mem["dirty"], wws_bytes=mem["wws"], net_bytes_s=mem["net"],
                          net_follows_cpu=self.vm_net_follows)

    def maintenance(self, hosts: Hosts) -> list[Maintenance]:
        out = []
        groups = sorted(set(hosts.group))
        for k, w in enumerate(self.spec.maintenance):
            if isinstance(w.hosts, str):
                ids = np.flatnonzero(np.array(hosts.group) == w.hosts)
                if ids.size == 0:
                    self.fail(("maintenance", k, "hosts"), f"no host group {w.hosts!r}",
                              did_you_mean(w.hosts, groups))
                    continue
            else:
                index = {n: i for i, n in enumerate(hosts.name)}
                unknown = [n for n in w.hosts if n not in index]
                for n in unknown:
                    self.fail(("maintenance", k, "hosts"), f"no host {n!r}",
                              did_you_mean(n, hosts.name))
                if unknown:
                    continue
                ids = np.array([index[n] for n in w.hosts], dtype=np.int64)
            until = math.inf if w.until is None else w.until
            if until <= w.start:
                self.fail(("maintenance", k, "until"), "the hosts come back before the drain starts",
                          "give an until later than start, or leave it out")
            out.append(Maintenance(
                w.name or (w.hosts if isinstance(w.hosts, str) else f"maintenance-{k}"), ids,
                w.start, math.inf if w.max_concurrent is None else float(w.max_concurrent), until))
        return out

    def _check_fits(self, g: int, group: VmGroup, hosts: Hosts) -> None:
        """A VM larger than every host would wait forever: refuse the scenario instead."""
        p = self.spec.placement
        if group.hosts is not None:
            if group.hosts not in hosts.group_names:
                self.fail(("vms", g, "hosts"), f"no host group {group.hosts!r}",
                          did_you_mean(group.hosts, hosts.group_names))
                return
            hosts_of = np.flatnonzero(hosts.group_id == hosts.group_names.index(group.hosts))
        else:
            hosts_of = np.arange(len(hosts))
        speed = group.vcpu_speed or float(hosts.core_hz.max(initial=0.0))

        def hz(value: float) -> str:
            return format_quantity(value, "frequency")

        if group.reservation > group.limit:
            self.fail(("vms", g, "reservation"), f"the CPU reservation ({hz(group.reservation)}) "
                      f"is above the CPU limit ({hz(group.limit)})",
                      "lower the reservation or raise the limit")
            return
        if group.reservation > group.vcpus * speed * (1 + 1e-9):
            self.fail(("vms", g, "reservation"), f"the CPU reservation ({hz(group.reservation)}) "
                      f"is more than {group.vcpus} vCPU{'s' if group.vcpus > 1 else ''} at "
                      f"{hz(speed)} can use",
                      f"reserve at most {hz(group.vcpus * speed)}, or give more vCPUs")
            return
        fits = (
            (hosts.cores >= group.vcpus)
            & (hosts.cores * p.cpu_overcommit >= group.vcpus)
            & (hosts.ram_bytes * p.ram_overcommit >= group.ram)
        )
        if len(hosts) and fits[hosts_of].any() and not (
                fits & (hosts.capacity_hz >= group.reservation))[hosts_of].any():
            self.fail(("vms", g, "reservation"), f"the CPU reservation ({hz(group.reservation)}) "
                      f"is more than any host{'' if group.hosts is None else ' of ' + repr(group.hosts)} "
                      f"has ({hz(float(hosts.capacity_hz[hosts_of].max()))})",
                      "lower the reservation, or add a bigger host")
            return
        if len(hosts) and not fits[hosts_of].any():
            big = int(hosts_of[np.argmax((hosts.cores * 1e15 + hosts.ram_bytes)[hosts_of])])
            where = "any host" if group.hosts is None else f"any host of {group.hosts!r}"
            self.fail(("vms", g), f"VM group {group.name!r} ({group.vcpus} vCPUs, "
                      f"{format_quantity(group.ram, 'bytes')}) is larger than {where}",
                      f"the largest host has {hosts.cores[big]} cores and "
                      f"{format_quantity(hosts.ram_bytes[big], 'bytes')} "
                      f"(ram_overcommit {p.ram_overcommit}); shrink the VM or add a bigger host")

    # --- jobs ----------------------------------------------------------------------------------

    def jobs(self, vms: Vms) -> Jobs | None:
        if not self.spec.jobs:
            return None
        cols: dict[str, list] = {"vm": [], "threads": [], "length": [], "submit": []}
        groups = np.array(vms.group)
        for j, job in enumerate(self.spec.jobs):
            targets = np.arange(len(vms)) if job.vms == "all" else np.flatnonzero(groups == job.vms)
            if targets.size == 0:
                known = sorted(set(vms.group))
                self.fail(("jobs", j, "vms"), f"no VMs in group {job.vms!r}",
                          did_you_mean(job.vms, [*known, "all"]))
                continue
            # Handed round-robin to the group's VMs, as CloudSim's brokers do.
            cols["vm"] += list(targets[np.arange(job.count) % targets.size])
            cols["threads"] += [job.threads] * job.count
            cols["length"] += [job.length] * job.count
            cols["submit"] += [job.submit] * job.count
        return Jobs(np.array(cols["vm"], dtype=np.int64), np.array(cols["threads"]),
                    np.array(cols["length"]), np.array(cols["submit"]))


def _synthetic_spec(w: SyntheticWorkload) -> SyntheticSpec:
    return SyntheticSpec(
        mean=w.mean,
        mean_spread=w.mean_spread,
        diurnal_amplitude=w.diurnal.amplitude,
        peak_time_s=w.diurnal.peak,
        noise_sd=w.noise.sd,
        noise_corr=w.noise.correlation,
        burst_rate_per_s=1.0 / w.bursts.every if w.bursts else 0.0,
        burst_height=w.bursts.height if w.bursts else 0.0,
        burst_duration_s=w.bursts.duration if w.bursts else 0.0,
        arrival_rate_per_s=1.0 / w.arrivals.mean_interarrival if w.arrivals else 0.0,
        lifetime_mean_s=w.lifetime.mean if w.lifetime else math.inf,
        lifetime_distribution=w.lifetime.distribution if w.lifetime else "exponential",
        lifetime_sigma=w.lifetime.sigma if w.lifetime else 1.0,
    )


def build(loaded: LoadedScenario, seed: int | None = None) -> RunSetup:
    """Runtime objects for one run of ``loaded`` (seed: the scenario's unless given)."""
    spec = loaded.spec
    b = _Builder(loaded, spec.seed if seed is None else seed)
    b.unique_names()
    hosts, sites = b.hosts()
    b.raise_if_failed()
    vms, sources, templates, series = b.vms(hosts)
    jobs = b.jobs(vms)
    until_done = math.isinf(spec.duration)
    if until_done and jobs is None:
        b.fail(("duration",), "runs until jobs are done, but the scenario has no jobs",
               "give a duration such as '1 d', or add jobs:")
    b.raise_if_failed()
    memory = build_memory(b, hosts, vms)
    storage = build_storage(b, hosts, vms)
    traffic = build_traffic(b, vms)
    moves = build_moves(b, hosts, vms, storage)
    p = spec.placement
    placement = make_placement(p.policy, b.streams.generator("placement"),
                               cpu_overcommit=p.cpu_overcommit, ram_overcommit=p.ram_overcommit,
                               memory_admission=memory is not None)
    pm = spec.power_management
    consolidation = None
    if spec.consolidation is not None:
        c = spec.consolidation
        consolidation = ConsolidationSettings(
            policy=DynamicConsolidation(
                make_overload_detector(c.overload.detector, **c.overload.params()),
                make_vm_selection(c.selection, b.streams.generator("vm-selection")),
                cpu_overcommit=p.cpu_overcommit, ram_overcommit=p.ram_overcommit,
                underload=c.underload),
            interval_s=c.interval, history=c.history)
    if consolidation is not None and (vms.host_group >= 0).any():
        b.fail(("consolidation",), "dynamic consolidation does not yet follow VM-host rules "
               "(vms: hosts:)", "remove consolidation, or the hosts: rules")
    if consolidation is not None and memory is not None:
        b.fail(("consolidation",), "dynamic consolidation does not yet follow memory "
               "reservations (hosts: memory:)", "remove consolidation, or the hosts' memory:")
    dc = Datacenter(hosts, vms, sites, templates)
    maintenance = b.maintenance(hosts)
    b.raise_if_failed()
    sliced = {int(h): SlicingSpec(spec.hosts[g].hypervisor.hypervisor(), spec.hosts[g].hypervisor.window,
                                  spec.hosts[g].hypervisor.warmup)
              for h, g in enumerate(b.host_group_of)
              if spec.hosts[g].hypervisor.scheduler == "timeslice"}
    slicing = (SlicedHosts(dc, sliced, b.vm_burst_s, b.streams.seed) if sliced else None)
    migration = b.migration(dc)
    availability = build_availability(b, hosts, vms, sites, migration.links, spec.duration)
    if availability is not None and consolidation is not None:
        b.fail(("consolidation",), "dynamic consolidation does not yet run with failures, HA or "
               "DR", "remove consolidation, or failures/ha/dr")
    b.raise_if_failed()
    return RunSetup(
        dc=dc,
        sources=sources,
        jobs=jobs,
        placement=placement,
        power=PowerManagement(pm.power_on_when_needed, pm.idle_off_after),
        duration_s=spec.duration,
        period_s=spec.period,
        stop_when_jobs_done=until_done,
        consolidation=consolidation,
        vm_series=series,
        migration=migration,
        maintenance=maintenance,
        slicing=slicing,
        memory=memory,
        availability=availability,
        storage=storage,
        traffic=traffic,
        moves=moves,
    )
