"""Sweeps: a grid of what-ifs on one scenario (axes of ``--set`` overrides) times replications,
run on any executor and resumable after any interruption, even ``kill -9``.

A sweep folder holds ``sweep.json`` (what the sweep is: scenario, axes, replications, seeds),
``runs/<run-id>/`` (one ordinary result folder per run, ``p{point:03d}-r{replication:02d}``) and
``index.parquet`` (one row per finished run: its axis values and headline figures).

The run folders are the truth. A run is done iff its folder exists: ``Result.save`` writes it under
a hidden temporary name and renames it, so a folder is complete or absent. A run that raised has
``runs/<run-id>.failed.json`` instead (written to a temporary name and renamed too). Resuming runs
what has neither; the index is only ever derived from these files, so it can always be rebuilt.

Replication r of every point uses the same seed (common random numbers): differences between
points are then differences of the scenarios, not of their random draws.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vsim._version import __version__
from vsim.errors import ScenarioError, VsimError
from vsim.experiments.executors import Executor, process_running
from vsim.runner import replication_seeds, run
from vsim.scenario import load_scenario, parse_scenario

__all__ = ["INDEX_COLUMNS", "Axis", "RunTask", "SweepError", "SweepOutcome", "SweepPlan",
           "build_index", "flatten_summary", "parse_axis", "plan_sweep", "run_sweep", "run_task",
           "split_values"]

SWEEP_FILE = "sweep.json"
INDEX_FILE = "index.parquet"
RUNS_DIR = "runs"
FAILED_SUFFIX = ".failed.json"
# The columns every index has, before the axis columns and the run's figures.
INDEX_COLUMNS = ("run_id", "point", "replication", "seed", "status", "error", "wall_time_s")
INDEX_EVERY_S = 2.0  # the index is rewritten at most this often while runs finish, and at the end
MAX_LISTED = 10
VISIBLE_WITHIN_S = 10.0  # how long a finished run's folder may take to appear here  # invalid grid points listed in one error, before "... and N more"

ReportWriter = Callable[[Path, Any, dict[str, Any], dict[str, Any]], None]


class SweepError(VsimError):
    """A sweep that cannot start: a malformed or invalid axis, a folder holding another sweep."""


# --- the grid ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One swept field: its dotted key (as for ``--set``) and its values, as written."""

    key: str
    values: tuple[str, ...]

    def spec(self) -> str:
        return f"{self.key}={','.join(self.values)}"


def split_values(text: str) -> list[str]:
    """``a,b,[1, 2],{x: 1, y: 2}`` -> its top-level comma-separated parts: commas inside
    brackets, braces or quotes belong to a YAML value, not to the list of values."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def parse_axis(text: str) -> Axis:
    """``dotted.key=v1,v2,...`` -> :class:`Axis`; raises :class:`SweepError` naming the axis."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepError(f"--axis {text!r}: write --axis dotted.key=value1,value2,... "
                         "(e.g. --axis hosts.0.count=20,24,28)")
    parsed = split_values(values)
    if any(v == "" for v in parsed):
        raise SweepError(f"--axis {text!r}: an empty value (two commas in a row, or one at an end)")
    repeated = sorted({v for v in parsed if parsed.count(v) > 1})
    if repeated:
        raise SweepError(f"--axis {key}: value {repeated[0]!r} is given twice")
    return Axis(key, tuple(parsed))


@dataclass(frozen=True)
class RunTask:
    """Everything one run needs, as plain picklable data: a worker process or a Dask worker on
    another machine loads, runs and saves it without any state from the process that planned it."""

    run_id: str
    point: int
    replication: int
    seed: int
    values: tuple[str, ...]  # the point's value of each axis, as given
    overrides: tuple[str, ...]  # the fixed ones (--set), then one per axis
    scenario_yaml: str
    scenario_file: str | None
    base_dir: str  # relative paths in the scenario (traces, calibration) resolve against it
    folder: str  # the run's result folder, to create
    report: ReportWriter | None = None  # writes report.html (a module-level function) or None


@dataclass(frozen=True)
class SweepPlan:
    """A validated grid: the scenario, its axes in order, replications and their seeds."""

    scenario_file: str | None
    scenario_yaml: str
    base_dir: str
    name: str
    axes: tuple[Axis, ...]
    replications: int
    base_seed: int
    seeds: tuple[int, ...]
    fixed: tuple[str, ...] = ()  # overrides of every point (``--set``), before the axes'

    @property
    def points(self) -> list[tuple[str, ...]]:
        """The axis values of each point: the cartesian product, first axis slowest."""
        return list(itertools.product(*(a.values for a in self.axes)))

    @property
    def runs(self) -> int:
        return len(self.points) * self.replications

    def overrides(self, values: Sequence[str]) -> tuple[str, ...]:
        return self.fixed + tuple(f"{a.key}={v}" for a, v in zip(self.axes, values, strict=True))

    def tasks(self, folder: Path, report: ReportWriter | None = None) -> list[RunTask]:
        """Every run of the sweep, point by point, replication by replication. The folders are
        absolute: a Dask worker elsewhere has its own working directory."""
        runs = Path(folder).absolute() / RUNS_DIR
        return [RunTask(run_id(p, r), p, r, seed, values, self.overrides(values), self.scenario_yaml,
                        self.scenario_file, self.base_dir, str(runs / run_id(p, r)), report)
                for p, values in enumerate(self.points)
                for r, seed in enumerate(self.seeds)]

    def manifest(self) -> dict[str, Any]:
        """What ``sweep.json`` holds."""
        return {
            "scenario": self.name,
            "scenario_file": self.scenario_file,
            "scenario_yaml": self.scenario_yaml,
            "set": list(self.fixed),
            "axes": [{"key": a.key, "values": list(a.values)} for a in self.axes],
            "replications": self.replications,
            "base_seed": self.base_seed,
            "seeds": list(self.seeds),
            "points": [dict(zip((a.key for a in self.axes), values, strict=True))
                       for values in self.points],
            "runs": self.runs,
            "vsim_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def run_id(point: int, replication: int) -> str:
    return f"p{point:03d}-r{replication:02d}"


def plan_sweep(scenario: str | Path, axes: Sequence[str], replications: int = 1,
               seed: int | None = None, fixed: Sequence[str] = ()) -> SweepPlan:
    """Check the scenario and every point of the grid, and return the plan. ``fixed``:
    ``dotted.key=value`` overrides applied to every point (as ``vsim run --set``).

    The fixed overrides are checked first, then every axis value is loaded on its own (so an error names the axis and value at fault), then
    every combination; all problems are reported together in one :class:`SweepError`, before
    anything runs or is written. Problems found only when a run builds its datacenter (a VM larger
    than any host, say) are the run's failure, recorded with it.
    """
    path = Path(scenario)
    base = load_scenario(path, list(fixed))  # a broken scenario is its own error, before any axis
    text = path.read_text(encoding="utf-8")
    parsed = [parse_axis(a) for a in axes]
    if not parsed:
        raise SweepError("a sweep needs at least one --axis dotted.key=v1,v2,...")
    keys = [a.key for a in parsed]
    for key in keys:
        if keys.count(key) > 1:
            raise SweepError(f"--axis {key} is given twice; list all its values in one --axis")
        if any(f.partition("=")[0].strip() == key for f in fixed):
            raise SweepError(f"--axis {key} is also given with --set; keep one of them")
        if key == "seed":
            raise SweepError("--axis seed: the seeds of a sweep are its replications; use "
                             "--replications N (and --seed for the first one)")
    if replications < 1:
        raise SweepError(f"--replications must be at least 1 (got {replications})")
    base_seed = base.spec.seed if seed is None else int(seed)
    plan = SweepPlan(str(path.resolve()), text, str(path.resolve().parent), base.name,
                     tuple(parsed), replications, base_seed,
                     tuple(replication_seeds(base_seed, replications)), tuple(fixed))
    _validate(plan)
    return plan


def _validate(plan: SweepPlan) -> None:
    problems: list[str] = []

    def check(overrides: Sequence[str], label: str) -> None:
        try:
            parse_scenario(plan.scenario_yaml, file=plan.scenario_file,
                           base_dir=Path(plan.base_dir), overrides=list(overrides))
        except ScenarioError as exc:
            problems.append(f"{label}: " + _from_axes(str(exc), plan).replace("\n", "\n  "))

    for axis in plan.axes:
        for value in axis.values:
            check([*plan.fixed, f"{axis.key}={value}"], f"--axis {axis.key}: value {value!r}")
    what = "axis value"
    if not problems and len(plan.axes) > 1:
        what = "point"
        # Values valid on their own can still clash (a policy and an option it lacks).
        for p, values in enumerate(plan.points):
            overrides = plan.overrides(values)
            check(overrides, f"point {p} ({', '.join(overrides[len(plan.fixed):])})")
    if problems:
        more = len(problems) - MAX_LISTED
        listed = problems[:MAX_LISTED] + ([f"... and {more} more"] if more > 0 else [])
        head = f"an invalid {what}" if len(problems) == 1 else f"{len(problems)} invalid {what}s"
        raise SweepError(f"{head} in the sweep of {plan.scenario_file}; nothing was run:\n"
                         + "\n".join(listed))


def _from_axes(message: str, plan: SweepPlan) -> str:
    """The loader says a bad value "comes from --set KEY=..."; in a sweep it comes from an axis
    unless KEY is one of the fixed overrides."""
    fixed = {f.partition("=")[0].strip() for f in plan.fixed}
    marker = "(the value comes from --set "
    parts = message.split(marker)
    out = parts[0]
    for part in parts[1:]:
        key = part.partition("=")[0]
        out += (marker if key in fixed else "(the value comes from --axis ") + part
    return out


# --- one run, in a worker ---------------------------------------------------------------------


def run_task(task: RunTask) -> dict[str, Any]:
    """Load, run and save one run of a sweep; never raises for a failure of the run itself, which
    is recorded in ``<folder>.failed.json`` instead. Returns a small dict (``run_id``,
    ``status``, ``error``, ``host``); the figures stay in the folder."""
    folder = Path(task.folder)
    host = socket.gethostname()
    started = time.perf_counter()
    try:
        loaded = parse_scenario(task.scenario_yaml, file=task.scenario_file,
                                base_dir=Path(task.base_dir), overrides=list(task.overrides))
        result = run(loaded, task.seed)
        extra: dict[str, Callable[[Path], object]] = {}
        report = task.report
        if report is not None and loaded.spec.output.report:
            extra["report.html"] = lambda p: report(p, result.tables, result.summary, result.meta)
        result.save(folder, extra=extra)
    except Exception as exc:
        if folder.is_dir():
            # Another attempt at this run finished first (a task Dask ran twice, or a worker of
            # an interrupted sweep finishing its last run): the folder is complete; keep it.
            return {"run_id": task.run_id, "status": "ok", "error": "", "host": host}
        error = error_text(exc)
        _write_json_atomic(failed_path(folder), {
            "run_id": task.run_id, "point": task.point, "replication": task.replication,
            "seed": task.seed, "overrides": list(task.overrides), "error_type": type(exc).__name__,
            "message": error, "traceback": traceback.format_exc(),
            "wall_time_s": time.perf_counter() - started, "host": host,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        })
        return {"run_id": task.run_id, "status": "failed", "error": error, "host": host}
    failed_path(folder).unlink(missing_ok=True)  # an earlier failure, now retried successfully
    return {"run_id": task.run_id, "status": "ok", "error": "", "host": host}


def error_text(exc: BaseException) -> str:
    """A user-facing error as its message; anything else with its type (``ZeroDivisionError: ...``)."""
    return str(exc) if isinstance(exc, VsimError) else f"{type(exc).__name__}: {exc}"


def failed_path(folder: Path) -> Path:
    return folder.with_name(folder.name + FAILED_SUFFIX)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    temp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(temp, path)


# --- the index --------------------------------------------------------------------------------


def flatten_summary(summary: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The scalar numbers of a summary, nested keys joined with '.' (``sla.slav``); lists, text
    and flags are left out; an undefined figure (None) is NaN, so its column still lines up."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_summary(value, name + "."))
        elif value is None:
            out[name] = float("nan")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = value
    return out


def _row(plan: SweepPlan, task: RunTask) -> dict[str, Any] | None:
    """The index row of one run from its files, or None while it has not finished."""
    folder = Path(task.folder)
    base: dict[str, Any] = {"run_id": task.run_id, "point": task.point,
                            "replication": task.replication, "seed": task.seed}
    axes = {a.key: v for a, v in zip(plan.axes, task.values, strict=True)}
    if folder.is_dir():
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        figures = {k: v for k, v in flatten_summary(summary).items()
                   if k not in INDEX_COLUMNS and k not in axes}
        return {**base, "status": "ok", "error": "", "wall_time_s": meta.get("wall_time_s"),
                **axes, **figures}
    failed = failed_path(folder)
    if failed.exists():
        record = json.loads(failed.read_text(encoding="utf-8"))
        return {**base, "status": "failed", "error": record.get("message", ""),
                "wall_time_s": record.get("wall_time_s"), **axes}
    return None


def _finished_row(plan: SweepPlan, task: RunTask, done: dict[str, Any]) -> dict[str, Any]:
    """The row of a run its worker reports finished. A worker that wrote where this process
    cannot see (a Dask worker on another machine, without a shared filesystem) is an error: the
    sweep would otherwise count runs it can never show."""
    deadline = time.monotonic() + VISIBLE_WITHIN_S
    while (row := _row(plan, task)) is None:
        if time.monotonic() > deadline:
            raise SweepError(
                f"run {task.run_id} finished on {done.get('host', 'a worker')}, but neither "
                f"{task.folder} nor its failure record is visible here: the workers must write to "
                "a filesystem this machine shares, at the same path")
        time.sleep(0.1)  # a network filesystem may show another machine's rename a little late
    return row


def _frame(plan: SweepPlan, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    ordered = sorted(rows, key=lambda r: (r["point"], r["replication"]))
    axis_keys = [a.key for a in plan.axes]
    figures = list(dict.fromkeys(k for r in ordered for k in r
                                 if k not in INDEX_COLUMNS and k not in axis_keys))
    frame = pd.DataFrame(ordered, columns=[*INDEX_COLUMNS, *axis_keys, *figures])
    for col in ("point", "replication", "seed"):
        frame[col] = frame[col].astype("int64")
    for col in ("run_id", "status", "error", *axis_keys):
        frame[col] = frame[col].astype(str)
    for col in ("wall_time_s", *figures):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def build_index(folder: str | Path, plan: SweepPlan | None = None) -> pd.DataFrame:
    """The index of a sweep folder, rebuilt from its run folders and failure records: one row per
    finished run with ``run_id``, ``point``, ``replication``, ``seed``, ``status`` ("ok" or
    "failed"), ``error``, ``wall_time_s``, one column per axis (its value as given) and the run's
    figures from ``summary.json`` (``energy_kwh``, ``sla.slav``, ...)."""
    folder = Path(folder)
    plan = plan or _plan_from(folder)
    rows = [r for task in plan.tasks(folder) if (r := _row(plan, task)) is not None]
    return _frame(plan, rows)


def _plan_from(folder: Path) -> SweepPlan:
    try:
        m = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{folder} is not a sweep folder (no {SWEEP_FILE})") from None
    return SweepPlan(m["scenario_file"], m["scenario_yaml"], str(Path(m["scenario_file"]).parent),
                     m["scenario"], tuple(Axis(a["key"], tuple(a["values"])) for a in m["axes"]),
                     m["replications"], m["base_seed"], tuple(m["seeds"]), tuple(m.get("set", [])))


def _write_index(frame: pd.DataFrame, folder: Path) -> Path:
    target = folder / INDEX_FILE
    temp = folder / f".{INDEX_FILE}.tmp-{os.getpid()}"
    frame.to_parquet(temp, index=False)
    os.replace(temp, target)
    return target


# --- running ----------------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    """How a sweep went: ``ran`` now, ``skipped`` as already done (ok or failed before), and the
    whole sweep's ``ok`` and ``failed`` counts after it."""

    folder: Path
    total: int
    ran: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    wall_s: float = 0.0
    index: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def run_sweep(plan: SweepPlan, folder: str | Path, executor: Executor, *,
              retry_failed: bool = False, report: ReportWriter | None = None,
              progress: Callable[[int, int], None] | None = None) -> SweepOutcome:
    """Run every run of ``plan`` not yet done in ``folder`` (created if new) on ``executor``.

    Runs that failed before are run again only with ``retry_failed``. ``progress(finished,
    total)`` is called at the start (with the runs already finished) and after each run. The
    index is rewritten as runs finish and at the end, also when interrupted.
    """
    started = time.perf_counter()
    folder = Path(folder)
    lock = _open(plan, folder)
    try:
        tasks = plan.tasks(folder, report)
        rows = {t.run_id: r for t in tasks if (r := _row(plan, t)) is not None}
        todo = [t for t in tasks if t.run_id not in rows
                or (retry_failed and rows[t.run_id]["status"] == "failed")]
        outcome = SweepOutcome(folder, len(tasks), skipped=len(tasks) - len(todo))
        by_id = {t.run_id: t for t in todo}
        finished = outcome.skipped
        if progress:
            progress(finished, len(tasks))
        written = time.monotonic()
        try:
            for done in executor.map_unordered(run_task, todo, key=lambda t: t.run_id):
                rows[done["run_id"]] = _finished_row(plan, by_id[done["run_id"]], done)
                outcome.ran += 1
                finished += 1
                if progress:
                    progress(finished, len(tasks))
                if time.monotonic() - written >= INDEX_EVERY_S:
                    _write_index(_frame(plan, rows.values()), folder)
                    written = time.monotonic()
        finally:
            outcome.index = _frame(plan, rows.values())
            _write_index(outcome.index, folder)
        outcome.ok = int((outcome.index["status"] == "ok").sum())
        outcome.failed = int((outcome.index["status"] == "failed").sum())
        outcome.wall_s = time.perf_counter() - started
        return outcome
    finally:
        os.close(lock)


def default_folder(name: str) -> Path:
    """``results/<scenario>/sweep-<UTC time>``, numbered if that exists."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = candidate = Path("results") / name / f"sweep-{stamp}"
    n = 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def _open(plan: SweepPlan, folder: Path) -> int:
    """Create the sweep folder or check that it holds this sweep; lock it; clear what interrupted
    writers left. Returns the lock's file descriptor (closing it releases the lock)."""
    manifest = folder / SWEEP_FILE
    if folder.exists() and not manifest.exists() and any(folder.iterdir()):
        raise SweepError(f"{folder} exists and is not a sweep folder (no {SWEEP_FILE}); "
                         "choose another --out")
    if manifest.exists():
        _check_same(plan, folder, json.loads(manifest.read_text(encoding="utf-8")))
    (folder / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    lock = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # Released by the kernel when this process ends, however it ends: no stale lock files.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise SweepError(f"another sweep is running in {folder}; wait for it or stop it") from None
    if not manifest.exists():
        _write_json_atomic(manifest, plan.manifest())
    _clear_partials(folder / RUNS_DIR)
    return lock


def _check_same(plan: SweepPlan, folder: Path, there: dict[str, Any]) -> None:
    here = plan.manifest()
    differences = []
    if yaml.safe_load(there["scenario_yaml"]) != yaml.safe_load(plan.scenario_yaml):
        differences.append(f"the scenario (there: {there['scenario_file']} as it was then; "
                           f"here: {plan.scenario_file} as it is now)")
    for key, what in (("set", "the fixed overrides (--set)"), ("axes", "the axes"),
                      ("replications", "the replications"), ("seeds", "the seeds")):
        if there.get(key) != here[key]:
            differences.append(f"{what} (there: {_show(key, there.get(key))}; "
                               f"here: {_show(key, here[key])})")
    if differences:
        raise SweepError(f"{folder} holds another sweep; these differ: " + "; ".join(differences)
                         + ". Resume it with the same arguments, or choose another --out")


def _show(key: str, value: Any) -> str:
    if key == "set" and isinstance(value, list):
        return " ".join(f"--set {v}" for v in value) or "none"
    if key == "axes" and isinstance(value, list):
        return " ".join(f"--axis {a['key']}={','.join(a['values'])}" for a in value)
    if key == "seeds" and isinstance(value, list) and len(value) > 3:
        return f"[{value[0]}, {value[1]}, ... ({len(value)})]"
    return str(value)


def _clear_partials(runs: Path) -> None:
    """Remove what killed writers left under hidden temporary names, unless its writer (named by
    the pid in the name, on this machine) still runs."""
    for entry in runs.glob(".*"):
        name = entry.name
        marker = ".partial-" if ".partial-" in name else ".tmp-" if ".tmp-" in name else None
        if marker is None:
            continue
        pid = name.rsplit(marker, 1)[1].split("-", 1)[0]
        if pid.isdigit() and process_running(int(pid)):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
