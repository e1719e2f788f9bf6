"""Running a scenario and keeping its results: ``run(scenario, seed) -> Result``, ``Result.save``."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vsim._version import __version__
from vsim.errors import VsimError
from vsim.metrics import Recorder, Tables, summarize
from vsim.metrics.availability import (
    availability_summary,
    host_failure_columns,
    outage_columns,
    over_replications,
)
from vsim.metrics.network import link_tables, move_tables, moves_summary, network_summary
from vsim.metrics.storage import storage_summary, storage_tables
from vsim.model.cloudsim_compat import run_cloudsim
from vsim.model.interfaces import MigrationRecord, RunTotals
from vsim.model.simulation import Simulation
from vsim.scenario import LoadedScenario, build, load_scenario
from vsim.scenario.build import RunSetup
from vsim.scenario.compat import build_cloudsim

__all__ = ["Result", "check_output", "new_result_folder", "run", "write_folder"]



@dataclass
class Result:
    """What a run produced: its tables (DataFrames), headline summary and metadata."""

    scenario: LoadedScenario
    seed: int
    tables: Tables  # name -> DataFrame (built on first use); .columns holds the raw columns
    summary: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: str | Path | None = None, *,
             extra: Mapping[str, Callable[[Path], object]] | None = None) -> Path:
        """Write the result folder and return it. ``out`` is the folder to create (default
        ``results/<scenario>/<run-id>``). The folder appears complete or not at all: everything
        is written under a temporary name and renamed at the end. ``extra`` maps file names to
        writers (``report.html`` -> a function that writes it to the given path)."""
        if out is None:
            target = new_result_folder(self.scenario.name, f"s{self.seed}")
        else:
            target = Path(out)
        raw = {**self.scenario.raw, "seed": self.seed}

        def meta(path: Path) -> None:
            self.meta["peak_memory_bytes"] = _peak_memory()
            path.write_text(_json(self.meta), encoding="utf-8")

        writers: dict[str, Callable[[Path], object]] = {
            "scenario.yaml": lambda path: path.write_text(
                yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8"),
            "": self.tables.write,  # the Parquet tables, into the folder itself
            "summary.json": lambda path: path.write_text(_json(self.summary), encoding="utf-8"),
            **(extra or {}),
            "meta.json": meta,
        }
        return write_folder(target, writers)


def check_output(target: Path, option: str = "--out", *, may_exist: bool = False) -> None:
    """Refuse, before a run rather than after it, an output path that cannot be written: one that
    exists (unless ``may_exist``), or whose nearest existing folder is a file or takes no new
    entries."""
    target = Path(target)
    if target.exists() and not may_exist:
        raise FileExistsError(f"{target} already exists; choose another {option}")
    parent = target.absolute() if target.is_dir() else target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise VsimError(f"{option} {target}: {parent} is a file, not a folder; choose another "
                        f"{option}")
    try:  # the only sure test: root may write where the permission bits say no, /proc refuses
        os.rmdir(tempfile.mkdtemp(prefix=".vsim-probe-", dir=parent))
    except OSError as exc:
        raise VsimError(f"{option} {target}: cannot write in {parent} ({exc.strerror}); choose "
                        f"another {option}") from None


def new_result_folder(name: str, suffix: str = "") -> Path:
    """``results/<name>/<UTC time>[-suffix]``, numbered if that exists."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _unique(Path("results") / name / (f"{stamp}-{suffix}" if suffix else stamp))


def write_folder(target: Path, writers: Mapping[str, Callable[[Path], object]]) -> Path:
    """Create the folder ``target`` from ``writers`` (file name -> function writing that file;
    the name "" gets the folder itself). It appears complete or not at all: everything is written
    under a temporary name and renamed at the end."""
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        partial.mkdir()
        for name, writer in writers.items():
            writer(partial / name if name else partial)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def _unique(path: Path) -> Path:
    candidate, n = path, 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def _json(data: Mapping[str, Any]) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    return json.dumps(data, indent=2, default=default, allow_nan=True) + "\n"


def _peak_memory() -> int:
    # ru_maxrss is in KiB on Linux.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _git_revision() -> str | None:
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run(scenario: LoadedScenario | str | Path, seed: int | None = None, *,
        overrides: list[str] | dict[str, Any] | None = None,
        progress: Callable[[float], None] | None = None) -> Result:
    """Run a scenario (a loaded one, or a path) and return its :class:`Result`.

    ``seed`` defaults to the scenario's own; the same scenario and seed give identical tables.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario, overrides)
    seed = loaded.spec.seed if seed is None else int(seed)
    if loaded.spec.semantics == "cloudsim":
        tables, summary = _run_cloudsim(loaded, seed)
        return _finish(loaded, seed, tables, summary, started, started_at)
    n = loaded.spec.replications
    first = None if progress is None else (lambda f: progress(f / n))
    setup, recorder, totals = _simulate(loaded, seed, progress=first)
    tables = recorder.tables(setup.jobs)
    if setup.vm_series:
        tables.columns["vm_info"]["series"] = setup.vm_series
    summary = summarize(recorder, totals, setup.jobs, scenario=loaded.name,
                        description=loaded.spec.description, seed=seed, period_s=setup.period_s)
    if totals.traffic is not None:
        links = link_tables(totals.traffic, setup.dc)
        tables.columns.update(links)
        summary["network"] = network_summary(totals.traffic, links)
    if totals.moves is not None:
        tables.columns.update(move_tables(totals.moves, setup.dc))
        summary["moves"] = moves_summary(totals.moves)
    if totals.storage is not None:
        extra = storage_tables(totals.storage, setup.dc)
        tables.columns.update(extra)
        summary["storage"] = storage_summary(totals.storage, extra)
    if setup.availability is not None:
        _availability(loaded, seed, setup, totals, tables, summary, progress)
    return _finish(loaded, seed, tables, summary, started, started_at)


def _simulate(loaded: LoadedScenario, seed: int, *, tables: bool = True,
              progress: Callable[[float], None] | None = None) -> tuple[RunSetup, Recorder, RunTotals]:
    setup = build(loaded, seed)
    out = loaded.spec.output
    recorder = Recorder(setup.dc, vms_table=out.vms_table and tables,
                        hosts_table=out.hosts_table and tables)
    sim = Simulation(
        setup.dc, recorder, setup.placement, setup.sources, setup.jobs,
        duration_s=setup.duration_s, period_s=setup.period_s, power=setup.power,
        stop_when_jobs_done=setup.stop_when_jobs_done, progress=progress,
        consolidation=setup.consolidation, migration=setup.migration,
        maintenance=setup.maintenance, slicing=setup.slicing, memory=setup.memory,
        availability=setup.availability, storage=setup.storage, traffic=setup.traffic,
        moves=setup.moves,
    )
    return setup, recorder, sim.run()


def replication_seeds(seed: int, n: int) -> list[int]:
    """The seeds of ``n`` Monte Carlo replications: the scenario's seed first (so one
    replication is the plain run), then seeds drawn from it."""
    extra = np.random.SeedSequence(seed).generate_state(max(n - 1, 0), dtype=np.uint32)
    return [seed, *(int(x) for x in extra)]


def _availability(loaded: LoadedScenario, seed: int, setup: RunSetup, totals: RunTotals,
                  tables: Tables, summary: dict[str, Any],
                  progress: Callable[[float], None] | None) -> None:
    """The outages and host failures of the run and of its other replications, and the
    availability figures with their spread over the replications."""
    n = loaded.spec.replications
    outs, fails, per_run = [], [], []
    rows: dict[str, list[Any]] = {"replication": [], "seed": []}
    for r, s in enumerate(replication_seeds(seed, n)):
        if r > 0:
            share = None if progress is None else (lambda f, r=r: progress((r + f) / n))
            setup, _, totals = _simulate(loaded, s, tables=False, progress=share)
        out = outage_columns(totals, setup.dc, r)
        fail = host_failure_columns(totals, setup.dc, r)
        figures = availability_summary(out, fail, totals)
        outs.append(out)
        fails.append(fail)
        per_run.append(figures)
        rows["replication"].append(r)
        rows["seed"].append(s)
        for k, v in _flat(figures).items():
            rows.setdefault(k, []).append(v)
    tables.columns["outages"] = _stack(outs)
    tables.columns["host_failures"] = _stack(fails)
    if n > 1:
        tables.columns["replications"] = {
            k: np.array(v, dtype=np.int64 if k in ("replication", "seed") else float)
            for k, v in rows.items()}
    summary["availability"] = per_run[0] if n == 1 else {
        **per_run[0], "replications": over_replications(per_run)}


def _flat(figures: dict[str, Any]) -> dict[str, Any]:
    """The scalar figures of an availability summary, as columns of the replications table."""
    rto, loss = figures["rto_s"], figures.get("data_loss_s", {})
    # Undefined figures (no outage, no DR failover) are nan.
    return {"host_failures": figures["host_failures"], "vm_outages": figures["vm_outages"],
            "not_restarted": figures["not_restarted"], "vm_hours_lost": figures["vm_hours_lost"],
            "rto_p50_s": _nan(rto["p50"]), "rto_p95_s": _nan(rto["p95"]),
            "rto_max_s": _nan(rto["max"]), "data_loss_max_s": _nan(loss.get("max")),
            "admission_refused": figures["admission"]["refused"]}


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _stack(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in parts[0]:
        cols = [p[k] for p in parts]
        out[k] = (np.concatenate(cols) if isinstance(cols[0], np.ndarray)
                  else [x for c in cols for x in c])
    return out


def _finish(loaded: LoadedScenario, seed: int, tables: Tables, summary: dict[str, Any],
            started: float, started_at: str) -> Result:
    wall = time.perf_counter() - started
    summary["wall_time_s"] = wall
    meta = {
        "vsim_version": __version__,
        "git_revision": _git_revision(),
        "scenario_file": loaded.file,
        "seed": seed,
        "started_at": started_at,
        "wall_time_s": wall,
        "peak_memory_bytes": _peak_memory(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    return Result(loaded, seed, tables, summary, meta)


def _run_cloudsim(loaded: LoadedScenario, seed: int) -> tuple[Tables, dict[str, Any]]:
    """``semantics: cloudsim``: CloudSim 3.0.3's model, with vsim's tables and summary."""
    spec, setup = build_cloudsim(loaded, seed)
    res = run_cloudsim(spec)
    recorder = Recorder(setup.dc, vms_table=False, hosts_table=False)
    ram = setup.dc.vms.ram_bytes
    for start, vm, source, dest, duration, _ in res.migrations:
        recorder.migration(MigrationRecord(start, vm, source, dest, duration, float(ram[vm]),
                                           "cloudsim", "completed"))
    tables = recorder.tables()
    line = np.array(res.timeline, dtype=float).reshape(-1, 4)
    tables.columns["datacenter"] = {
        "time_s": line[:, 0] - line[:, 1], "hosts_on": line[:, 3],
        "power_w": np.divide(line[:, 2], line[:, 1], out=np.zeros(len(line)), where=line[:, 1] > 0),
        "energy_j": line[:, 2],
    }
    summary: dict[str, Any] = {
        "scenario": loaded.name,
        "description": loaded.spec.description,
        "semantics": "cloudsim",
        "seed": seed,
        "hosts": len(setup.dc.hosts),
        "vms": len(setup.dc.vms),
        "sim_time_s": spec.duration,
        "energy_j": res.energy_j,
        "energy_kwh": res.energy_j / 3.6e6,
        "migrations": len(res.migrations),
        "host_shutdowns": res.shutdowns,
        "vms_destroyed": res.destroyed,
        "hosts_on_mean": float((line[:, 3] * line[:, 1]).sum() / line[:, 1].sum()) if len(line) else 0.0,
        "sla": {"slatah": res.slatah, "pdm": res.pdm, "slav": res.slatah * res.pdm,
                "overall_violation_frac": res.overall},
        "engine": {"updates": res.updates},
    }
    return tables, summary
