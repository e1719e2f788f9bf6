"""Recorders: what a run reports, as tables with unit-suffixed columns.

Two kinds of record: tallied events (one flat row per event) and time-weighted levels (one row per
host or VM per reporting period, holding the period's mean). Rows are collected as numpy chunks
during the run and joined into columns once, at the end (:class:`Tables` gives DataFrames).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vsim.metrics.columns import Categories, Columns, Tables, to_frame, write_parquet
from vsim.metrics.memory import MemoryTotals, host_columns, vm_columns
from vsim.model.datacenter import HOST_STATE_NAMES, VM_STATE_NAMES, Datacenter, VmState
from vsim.model.interfaces import MigrationRecord, PeriodSnapshot, RunTotals
from vsim.model.jobs import Jobs
from vsim.model.reclaim import STATE_NAMES as MEMORY_STATES
from vsim.model.slicing import LATENCY_EDGES_S, latency_percentile

__all__ = ["Categories", "Columns", "Recorder", "Tables", "summarize", "to_frame", "write_parquet"]


class Recorder:
    """The observer of a :class:`~vsim.model.simulation.Simulation` that keeps its tables."""

    def __init__(self, dc: Datacenter, *, vms_table: bool = True, hosts_table: bool = True) -> None:
        self.dc = dc
        self.vms_table = vms_table
        self.hosts_table = hosts_table
        self._events: list[tuple[float, str, str, str]] = []
        self._dc_rows: list[tuple[float, ...]] = []
        self._host_chunks: list[dict[str, np.ndarray]] = []
        self._vm_chunks: list[dict[str, np.ndarray]] = []
        self._migrations: list[MigrationRecord] = []
        n_v = len(dc.vms)
        self.vm_demand_hz_s = np.zeros(n_v)  # whole-run sums, for per-VM ready fractions
        self.vm_alloc_hz_s = np.zeros(n_v)
        # Time-sliced hosts: per vCPU slot the whole run's sums and latency histogram.
        self._latency_chunks: list[dict[str, np.ndarray]] = []
        self.slots: dict[str, np.ndarray] | None = None
        self.memory: MemoryTotals | None = None

    def event(self, time_s: float, kind: str, subject: str, detail: str) -> None:
        self._events.append((time_s, kind, subject, detail))

    def migration(self, record: MigrationRecord) -> None:
        self._migrations.append(record)

    def events(self, time_s: float, kind: str, subjects: list[str], details: list[str]) -> None:
        self._events.extend(zip([time_s] * len(subjects), [kind] * len(subjects), subjects, details,
                                strict=True))

    def period(self, s: PeriodSnapshot) -> None:
        h = self.dc.hosts
        dt = s.dt_s
        self.vm_demand_hz_s[s.vm_ids] += s.vm_demand_hz_s
        self.vm_alloc_hz_s[s.vm_ids] += s.vm_alloc_hz_s
        running = int(np.count_nonzero(
            (s.vm_state == VmState.RUNNING) | (s.vm_state == VmState.MIGRATING)))
        self._dc_rows.append((
            s.time_s, float(s.host_on_s.sum()) / dt, running, s.vms_queued,
            float(s.host_energy_j.sum()) / dt, float(s.host_demand_hz_s.sum()) / dt,
            float(s.host_alloc_hz_s.sum()) / dt, float((s.host_on_s * h.capacity_hz).sum()) / dt,
            float(s.host_energy_j.sum()),
        ))
        sliced = self._sliced_period(s) if s.vcpus is not None else None
        if s.memory is not None:
            if self.memory is None:
                self.memory = MemoryTotals(self.dc)
            self.memory.add(s)
        if self.hosts_table:
            n = len(h)
            self._host_chunks.append({
                "time_s": np.full(n, s.time_s),
                "host": np.arange(n, dtype=np.int32),
                "state": s.host_state,
                "on_frac": (s.host_on_s / dt).astype(np.float32),
                "cpu_util_frac": (s.host_alloc_hz_s / dt / h.capacity_hz).astype(np.float32),
                "cpu_demand_hz": s.host_demand_hz_s / dt,
                "cpu_alloc_hz": s.host_alloc_hz_s / dt,
                "power_w": (s.host_energy_j / dt).astype(np.float32),
                "energy_j": s.host_energy_j,
                "vms": s.host_vm_count.astype(np.int32),
                "mem_used_bytes": s.host_ram_used,
                **(host_columns(s.memory, dt) if s.memory is not None else {}),
            })
        if self.vms_table:
            n = len(s.vm_ids)
            demand = s.vm_demand_hz_s / dt
            alloc = s.vm_alloc_hz_s / dt
            ready = np.clip(np.divide(demand - alloc, demand, out=np.zeros(n), where=demand > 0),
                            0.0, 1.0)
            costop = np.zeros(n)
            if sliced is not None:
                # Measured on time-sliced hosts: vCPU time ready (or co-stopped) over vCPU time.
                pos = np.searchsorted(s.vm_ids, sliced["vm_ids"])
                ok = (pos < n) & (s.vm_ids[np.minimum(pos, n - 1)] == sliced["vm_ids"])
                ready[pos[ok]] = sliced["ready"][ok]
                costop[pos[ok]] = sliced["costop"][ok]
            placed = s.vm_host >= 0
            self._vm_chunks.append({
                "time_s": np.full(n, s.time_s),
                "vm": s.vm_ids.astype(np.int32),
                "host": s.vm_host.astype(np.int32),
                "state": s.vm_state,
                "cpu_demand_hz": demand,
                "cpu_alloc_hz": alloc,
                "cpu_ready_frac": ready.astype(np.float32),
                "cpu_costop_frac": costop.astype(np.float32),
                "mem_bytes": np.where(placed, self.dc.vms.ram_bytes[s.vm_ids], 0.0),
                **(vm_columns(s.memory, dt, s.vm_present_s) if s.memory is not None else {}),
            })

    def _sliced_period(self, s: PeriodSnapshot) -> dict[str, np.ndarray]:
        """Keep a period of the time-sliced hosts: its rows of the latency table and the
        whole-run sums; returns the period's ready and co-stop share per VM."""
        d = s.vcpus
        assert d is not None
        n_v = len(self.dc.vms)
        vm, present = d["vm"], d["present_s"]
        steal = d["ready"] + d["costop"]
        self._latency_chunks.append({
            "time_s": np.full(len(vm), s.time_s),
            "vm": vm.astype(np.int32),
            "vcpu": d["vcpu"].astype(np.int32),
            "host": d["host"].astype(np.int32),
            "run_frac": (d["run"] / present).astype(np.float32),
            "ready_frac": (d["ready"] / present).astype(np.float32),
            "costop_frac": (d["costop"] / present).astype(np.float32),
            "idle_frac": (d["idle"] / present).astype(np.float32),
            "steal_frac": (steal / present).astype(np.float32),
            "switches": np.rint(d["switches"]).astype(np.int64),
            "wakeups": np.rint(d["wakeups"]).astype(np.int64),
            "latency_p50_s": latency_percentile(d["hist"], 50),
            "latency_p90_s": latency_percentile(d["hist"], 90),
            "latency_p99_s": latency_percentile(d["hist"], 99),
        })
        sums = np.vstack([np.bincount(vm, weights=w, minlength=n_v)
                          for w in (d["ready"], d["costop"], present)])
        slot = d["slot"]
        if self.slots is None or len(self.slots["vm"]) <= slot.max():
            self._grow_slots(int(slot.max()) + 1)
        assert self.slots is not None
        for key in ("run", "ready", "costop", "idle", "wakeups"):
            self.slots[key][slot] += d[key]
        self.slots["present_s"][slot] += present
        self.slots["hist"][slot] += d["hist"]
        self.slots["vm"][slot], self.slots["vcpu"][slot], self.slots["host"][slot] = (
            vm, d["vcpu"], d["host"])
        ids = np.flatnonzero(sums[2] > 0)
        return {"vm_ids": ids, "ready": sums[0, ids] / sums[2, ids],
                "costop": sums[1, ids] / sums[2, ids]}

    def _grow_slots(self, n: int) -> None:
        old = self.slots
        new = {k: np.zeros(n) for k in ("run", "ready", "costop", "idle", "wakeups", "present_s")}
        new["hist"] = np.zeros((n, len(LATENCY_EDGES_S)))
        for k in ("vm", "vcpu", "host"):
            new[k] = np.full(n, -1, dtype=np.int64)
        if old is not None:
            for k, col in old.items():
                new[k][:len(col)] = col
        self.slots = new

    # --- tables ---------------------------------------------------------------------------------

    def tables(self, jobs: Jobs | None = None) -> Tables:
        dc_cols = ["time_s", "hosts_on", "vms_running", "vms_queued", "power_w", "cpu_demand_hz",
                   "cpu_alloc_hz", "cpu_capacity_hz", "energy_j"]
        rows = np.array(self._dc_rows, dtype=float).reshape(-1, len(dc_cols))
        datacenter: Columns = {c: rows[:, i] for i, c in enumerate(dc_cols)}
        for c in ("vms_running", "vms_queued"):
            datacenter[c] = rows[:, dc_cols.index(c)].astype(np.int32)
        kinds: dict[str, int] = {}
        out: dict[str, Columns] = {
            "datacenter": datacenter,
            "events": {
                "time_s": np.array([e[0] for e in self._events], dtype=float),
                "kind": Categories(
                    np.array([kinds.setdefault(e[1], len(kinds)) for e in self._events],
                             dtype=np.int32), ()),
                "subject": [e[2] for e in self._events],
                "detail": [e[3] for e in self._events],
            },
            "host_info": self._host_info(),
            "vm_info": self._vm_info(),
        }
        codes = out["events"]["kind"]
        assert isinstance(codes, Categories)
        out["events"]["kind"] = Categories(codes.codes, tuple(kinds))
        if self.hosts_table:
            out["hosts"] = _concat(self._host_chunks, "state", HOST_STATE_NAMES)
            if "mem_state" in out["hosts"]:
                out["hosts"]["mem_state"] = Categories(out["hosts"]["mem_state"], MEMORY_STATES)  # type: ignore[arg-type]
        if self.vms_table:
            out["vms"] = _concat(self._vm_chunks, "state", VM_STATE_NAMES)
        if self._latency_chunks:
            out["latency"] = _concat(self._latency_chunks)
        m = self._migrations
        out["migrations"] = {
            "time_s": np.array([r.start_s for r in m], dtype=float),
            "vm": np.array([r.vm for r in m], dtype=np.int32),
            "from_host": np.array([r.source for r in m], dtype=np.int32),
            "to_host": np.array([r.dest for r in m], dtype=np.int32),
            "duration_s": np.array([r.duration_s for r in m], dtype=float),
            "bytes": np.array([r.bytes for r in m], dtype=float),
            "reason": [r.reason for r in m],
            "outcome": [r.outcome for r in m],
            "downtime_s": np.array([r.downtime_s for r in m], dtype=float),
            "rounds": np.array([r.rounds for r in m], dtype=np.int32),
            "queued_s": np.array([r.queued_s for r in m], dtype=float),
            "throttle_frac": np.array([r.throttle for r in m], dtype=float),
            "postcopy": np.array([r.postcopy for r in m], dtype=bool),
        }
        if jobs is not None:
            out["jobs"] = {
                "job": np.arange(len(jobs), dtype=np.int32),
                "vm": jobs.vm.astype(np.int32),
                "threads": jobs.threads.astype(np.int32),
                "length_cycles": jobs.length_cycles,
                "submit_s": jobs.submit_s,
                "start_s": jobs.start_s,
                "finish_s": jobs.finish_s,
            }
        return Tables(out)

    def _host_info(self) -> Columns:
        h, dc = self.dc.hosts, self.dc
        return {
            "host": np.arange(len(h), dtype=np.int32),
            "name": h.name,
            "site": Categories(h.site, tuple(dc.site_names)),
            "group": h.group,
            "cores": h.cores.astype(np.int32),
            "core_hz": h.core_hz,
            "cpu_capacity_hz": h.capacity_hz,
            "ram_bytes": h.ram_bytes,
            "power_idle_w": h.power.idle_w,
            "power_max_w": h.power.max_w,
        }

    def _vm_info(self) -> Columns:
        v, dc = self.dc.vms, self.dc
        return {
            "vm": np.arange(len(v), dtype=np.int32),
            "name": v.name,
            "group": v.group,
            "vcpus": v.vcpus.astype(np.int32),
            "vcpu_hz": v.vcpu_hz,
            "ram_bytes": v.ram_bytes,
            "shares": v.shares,
            "reservation_hz": v.reservation_hz,
            "limit_hz": v.limit_hz,
            "template": [dc.template_names[t] if t >= 0 else "" for t in v.template],
            "priority": v.priority,
            "arrival_s": v.arrival_s,
            "start_s": v.start_s,
            "end_s": v.end_s,
            "cpu_ready_frac": self.vm_ready_frac(),
        }

    def vm_ready_frac(self) -> np.ndarray:
        """Each VM's share of its whole-run CPU demand that waited (NaN if it never demanded);
        on time-sliced hosts, its vCPUs' measured ready time over their time there."""
        d, a = self.vm_demand_hz_s, self.vm_alloc_hz_s
        out = np.full(len(d), np.nan)
        np.divide(d - a, d, out=out, where=d > 0)
        if self.slots is not None:
            seen = self.slots["present_s"] > 0
            vm = self.slots["vm"][seen]
            ready, present = (np.bincount(vm, weights=self.slots[k][seen], minlength=len(d))
                              for k in ("ready", "present_s"))
            sliced = present > 0
            out[sliced] = ready[sliced] / present[sliced]
        return np.clip(out, 0.0, 1.0)


def _concat(chunks: list[dict[str, np.ndarray]], state_col: str | None = None,
            names: tuple[str, ...] = ()) -> Columns:
    """Columns from per-period chunks, a column at a time, freeing chunks as it goes so that a
    big run never holds its table twice."""
    if not chunks:
        return {}
    cols: Columns = {}
    for key in list(chunks[0]):
        cols[key] = np.concatenate([c.pop(key) for c in chunks])
    chunks.clear()
    if state_col is not None:
        cols[state_col] = Categories(cols[state_col], names)  # type: ignore[arg-type]
    return cols


def summarize(rec: Recorder, totals: RunTotals, jobs: Jobs | None, *, scenario: str,
              description: str, seed: int, period_s: float) -> dict[str, Any]:
    """The headline figures of a run (``summary.json``)."""
    dc = rec.dc
    ready = rec.vm_ready_frac()
    demanded = ready[~np.isnan(ready)]
    never_placed = np.isnan(dc.vms.start_s) & (dc.vms.state != VmState.FUTURE)
    summary: dict[str, Any] = {
        "scenario": scenario,
        "description": description,
        "seed": seed,
        "hosts": len(dc.hosts),
        "vms": len(dc.vms),
        "sim_time_s": totals.sim_time_s,
        "period_s": period_s,
        "energy_j": totals.energy_j,
        "energy_kwh": totals.energy_j / 3.6e6,
        "migrations": totals.migrations,
        "host_shutdowns": sum(1 for e in rec._events if e[1] == "host_off"),
        "cpu_ready_frac_mean": float(demanded.mean()) if demanded.size else 0.0,
        "cpu_ready_frac_p95": float(np.percentile(demanded, 95)) if demanded.size else 0.0,
        "sla": _sla(totals),
        "hosts_on_mean": totals.host_on_s / totals.sim_time_s if totals.sim_time_s else 0.0,
        "vms_unplaced": int(np.count_nonzero(never_placed)),
        "engine": {"intervals": totals.intervals, "events": totals.events},
    }
    if rec._migrations:
        summary["migration"] = _migration_summary(rec._migrations)
    if rec.slots is not None:
        summary["timeslice"] = {"windows": totals.timeslice_windows,
                                "slices": totals.timeslice_slices,
                                "hosts": _timeslice_hosts(rec, totals.sim_time_s)}
    if rec.memory is not None:
        summary["memory"] = rec.memory.summary(
            sum(1 for e in rec._events if e[1] == "vm_admission_refused"))
    if totals.evacuations:
        summary["maintenance"] = [
            {"name": e.name, "start_s": e.start_s, "vms": e.vms, "migrations": e.migrations,
             "drained_s": None if math.isnan(e.end_s) else e.end_s - e.start_s,
             "unplaced": e.unplaced, "worst_downtime_s": e.worst_downtime_s,
             "sent_bytes": e.bytes, "predicted_ram_over_bandwidth_s": e.predicted_ram_over_bandwidth_s}
            for e in totals.evacuations]
    if jobs is not None:
        done = ~np.isnan(jobs.finish_s)
        took = (jobs.finish_s - jobs.start_s)[done]
        summary["jobs"] = {
            "total": len(jobs),
            "completed": int(done.sum()),
            "killed": int(jobs.killed.sum()),
            "makespan_s": float(np.nanmax(jobs.finish_s)) if done.any() else None,
            "mean_completion_s": float(took.mean()) if took.size else None,
        }
    return summary


def _timeslice_hosts(rec: Recorder, sim_time_s: float) -> list[dict[str, Any]]:
    """Per time-sliced host, over the whole run: vCPUs per core, and per VM group the measured
    ready and co-stop shares and wake-up latency percentiles."""
    slots = rec.slots
    assert slots is not None
    h, v = rec.dc.hosts, rec.dc.vms
    seen = slots["present_s"] > 0
    out = []

    def stats(mask: np.ndarray) -> dict[str, Any]:
        present = slots["present_s"][mask].sum()
        hist = slots["hist"][mask].sum(axis=0)
        p50, p99 = (float(latency_percentile(hist, q)[0]) for q in (50, 99))
        return {"ready_frac": float(slots["ready"][mask].sum() / present),
                "costop_frac": float(slots["costop"][mask].sum() / present),
                "wakeups": int(np.rint(slots["wakeups"][mask].sum())),
                "latency_p50_s": None if math.isnan(p50) else p50,
                "latency_p99_s": None if math.isnan(p99) else p99}

    for host in np.unique(slots["host"][seen]).tolist():
        mine = seen & (slots["host"] == host)
        groups = np.array([v.group[i] for i in slots["vm"][mine]])
        row = {"host": h.name[host], "group": h.group[host], "cores": int(h.cores[host]),
               "vcpus_per_core": float(slots["present_s"][mine].sum() / sim_time_s / h.cores[host])
               if sim_time_s > 0 else 0.0,
               **stats(mine), "vm_groups": {}}
        idx = np.flatnonzero(mine)
        for g in dict.fromkeys(groups.tolist()):
            sub = np.zeros_like(mine)
            sub[idx[groups == g]] = True
            row["vm_groups"][g] = stats(sub)
        out.append(row)
    return out


def _migration_summary(records: list[MigrationRecord]) -> dict[str, Any]:
    """Outcomes, times and downtimes of the migrations that ran (abandoned ones aside)."""
    outcomes = {k: sum(1 for r in records if r.outcome == k)
                for k in ("completed", "forced", "aborted", "abandoned")}
    ran = [r for r in records if r.outcome != "abandoned"]
    down = np.array([r.downtime_s for r in ran if r.outcome != "aborted"])
    took = np.array([r.duration_s for r in ran])
    return {
        **outcomes,
        "duration_mean_s": float(took.mean()) if took.size else 0.0,
        "duration_max_s": float(took.max()) if took.size else 0.0,
        "downtime_mean_s": float(down.mean()) if down.size else 0.0,
        "downtime_max_s": float(down.max()) if down.size else 0.0,
        "sent_bytes": float(sum(r.bytes for r in ran)),
        "queued_max_s": float(max((r.queued_s for r in ran), default=0.0)),
    }


def _sla(t: RunTotals) -> dict[str, float]:
    """Beloglazov & Buyya's SLA metrics (CCPE 2012, section 6.2) and the undelivered share.

    SLATAH: the share of active-host time spent at full load with demand unserved; PDM: the
    performance lost to migrations over all demand (CloudSim counts 10 % of a migrating VM's
    demand; vsim the demand a migrating VM did not get: paused, throttled, faulting); SLAV their
    product."""
    slatah = t.host_overloaded_s / t.host_on_s if t.host_on_s > 0 else 0.0
    pdm = t.migration_degradation_hz_s / t.demand_hz_s if t.demand_hz_s > 0 else 0.0
    overall = (t.demand_hz_s - t.alloc_hz_s) / t.demand_hz_s if t.demand_hz_s > 0 else 0.0
    return {"slatah": slatah, "pdm": pdm, "slav": slatah * pdm, "overall_violation_frac": overall}
