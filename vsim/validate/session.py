"""Measure on real guests, predict with the simulator, compare: the steps behind `vsim kvm measure`,
`vsim validate` and `vsim calibrate`.

Measured tables carry, besides their experiment's columns, the accelerator, the QEMU version and
the guest image's packages, so that every number says where it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vsim.errors import VsimError
from vsim.kvm.cpu import measure_cpu
from vsim.kvm.host import HostError
from vsim.kvm.image import GuestImage, build_image
from vsim.kvm.memory import measure_memory
from vsim.kvm.migration import measure_migration
from vsim.kvm.overcommit import measure_balloon, measure_ksm
from vsim.kvm.probe import MIGRATION_SAFE, choose_accel, qemu_version
from vsim.kvm.qemu import QEMU_FIX, Workspace
from vsim.validate.calibrate import (
    Calibration,
    cpu_points,
    fit_cpu,
    fit_memory,
    fit_migration,
    load_calibration,
    migration_points,
    save_calibration,
)
from vsim.validate.cpu import naive_cpu, predict_cpu
from vsim.validate.errors import error_table, summarize_errors
from vsim.validate.memory import naive_memory, predict_memory
from vsim.validate.migration import naive_migration, predict_migration

__all__ = ["TABLE", "Environment", "calibrate_folders", "default_calibration", "measure",
           "naive_value", "prepare", "read_measured", "validate"]

TABLE = {"migration": "migrations", "cpu": "cpu", "memory": "memory", "balloon": "balloon",
         "ksm": "ksm"}  # experiment -> its measured table's name

Progress = Callable[[str], None]

# What the issue of record asks of each model on real guests, per metric.
TARGETS = {
    "migration": {"duration_s": ("mape_pct", 10.0), "bytes": ("mape_pct", 10.0),
                  "downtime_s": ("max_abs_error", 0.020)},
    "cpu": {"share": ("max_abs_error", 0.03)},
    "memory": {"slowdown": ("max_abs_pct_error", 25.0)},
}


@dataclass(frozen=True)
class Environment:
    image: GuestImage
    accel: str
    qemu: tuple[int, int, int]

    def columns(self) -> dict[str, str]:
        return {"accel": self.accel, "qemu_version": ".".join(map(str, self.qemu)),
                "kernel_package": self.image.kernel_package}


def prepare(accel: str = "auto", progress: Progress | None = None) -> Environment:
    """Check QEMU, build (or find) the guest image and choose the accelerator."""
    version = qemu_version()
    if progress:
        progress("guest image: building or reusing the cached one")
    image = build_image()
    if accel == "auto":
        if progress:
            progress("accelerator: trying kvm (falls back to tcg)")
        accel = choose_accel(image)
    return Environment(image, accel, version)


def measure(kind: str, env: Environment, points: list[Any], *, repeats: int = 1,
            progress: Progress | None = None) -> pd.DataFrame:
    """The measured table of ``kind`` (migration | cpu) at ``points``."""
    if kind == "migration" and env.qemu < MIGRATION_SAFE:
        raise HostError(f"QEMU {'.'.join(map(str, env.qemu))} corrupts live migration of guests "
                        "that write memory under TCG; the migration experiment needs QEMU >= 10",
                        QEMU_FIX)
    with Workspace(env.image) as ws:
        if kind == "migration":
            rows = measure_migration(ws, points, accel=env.accel, repeats=repeats, progress=progress)
        elif kind == "cpu":
            rows = measure_cpu(ws, points, accel=env.accel, repeats=repeats, progress=progress)
        elif kind == "memory":
            rows = measure_memory(ws, points, accel=env.accel, repeats=repeats, progress=progress)
        elif kind == "balloon":  # points: the plan's keyword arguments (no model to check yet)
            rows = measure_balloon(ws, accel=env.accel, repeats=repeats, progress=progress,
                                   **points[0])
        elif kind == "ksm":
            rows = measure_ksm(ws, accel=env.accel, progress=progress, **points[0])
        else:
            raise VsimError(f"unknown experiment {kind!r}: choose cpu, migration or memory")
    table = pd.DataFrame(rows)
    for key, value in env.columns().items():
        table[key] = value
    return table


def default_calibration() -> Calibration:
    """The calibration shipped with vsim (fitted on QEMU 10 under TCG; see results/validation)."""
    path = resources.files("vsim").joinpath("data", "calibration", "qemu-tcg.yaml")
    return load_calibration(Path(str(path)))


def naive_value(summary: dict[str, Any], metric: str) -> Any:
    """The naive baseline's value of the statistic a target is on."""
    t = summary["targets"][metric]
    if t["statistic"] in ("mape_pct", "max_abs_error", "max_abs_pct_error"):
        return summary["metrics"].get(metric, {}).get("naive_" + t["statistic"])
    return summary.get("naive_outcomes_right")


@dataclass
class Validation:
    errors: pd.DataFrame
    predicted: pd.DataFrame
    summary: dict[str, Any]


def validate(kind: str, measured: pd.DataFrame, calibration: Calibration,
             model: str = "fluid") -> Validation:
    """The simulator (for cpu: its ``model``, fluid or timeslice) and the naive baseline on the
    measured points, and their errors."""
    ids = np.sort(measured.point.unique())  # the points in the order the *_points functions list

    def keyed(table: pd.DataFrame) -> pd.DataFrame:
        return table.assign(point=ids[table.point.to_numpy()])

    if kind == "migration":
        points = migration_points(measured)
        predicted = keyed(predict_migration(points, calibration.migration))
        naive = keyed(naive_migration(points))
        runs = measured.groupby("point", sort=True)
        outcome = runs.outcome.agg(lambda s: s.mode().iloc[0])
        agree = outcome.to_numpy() == predicted.outcome.to_numpy()
        both = (outcome.to_numpy() == "completed") & (predicted.outcome.to_numpy() == "completed")
        keep = ids[both]
        axes = ["memory_bytes", "working_set_bytes", "dirty_rate_bytes_s", "max_bandwidth_bytes_s"]
        errors = error_table(measured[measured.point.isin(keep)], predicted[predicted.point.isin(keep)],
                             naive.assign(downtime_s=np.nan), ["point"],
                             ["duration_s", "bytes", "downtime_s"], axes)
        extra: dict[str, Any] = {
            "points": len(points), "completed_in_both": int(both.sum()),
            "outcomes_right": int(agree.sum()),
            "outcomes_wrong": [int(i) for i in ids[~agree]],
            "naive_outcomes_right": int((outcome.to_numpy() == "completed").sum()),
        }
    elif kind == "cpu":
        cpu = cpu_points(measured)
        predicted = keyed(predict_cpu(cpu, calibration.cpu, model))
        naive = keyed(naive_cpu(cpu))
        errors = error_table(measured, predicted, naive, ["point", "guest"], ["share"],
                             ["guests", "vcpus", "host_cores"])
        extra = {"points": len(cpu), "model": model}
    elif kind == "memory":
        measured = measured[measured.slowdown.notna()]  # the OOM killer ended QEMU there
        if measured.empty:
            raise VsimError("no memory point ran to the end (the OOM killer ended QEMU at every "
                            "one): use lower --ratio values")
        predicted = predict_memory(measured, calibration.memory)
        naive = naive_memory(measured)
        errors = error_table(measured, predicted, naive, ["point"], ["slowdown"],
                             ["ratio", "working_set_bytes"])
        extra = {"points": int(measured.point.nunique())}
    else:
        raise VsimError(f"unknown experiment {kind!r}: choose cpu, migration or memory")
    metrics = summarize_errors(errors)
    targets = {}
    for metric, (stat, limit) in TARGETS[kind].items():
        if metric in metrics:
            value = metrics[metric][stat]
            targets[metric] = {"statistic": stat, "limit": limit, "value": value,
                               "met": bool(value <= limit)}
    if kind == "migration":
        targets["outcome"] = {"statistic": "points right", "limit": len(points),
                              "value": extra["outcomes_right"],
                              "met": extra["outcomes_right"] == len(points)}
    first = measured.iloc[0]
    summary = {"experiment": kind, **extra, "metrics": metrics, "targets": targets,
               "accel": str(first.get("accel", "")), "qemu_version": str(first.get("qemu_version", "")),
               "calibration": calibration.source}
    return Validation(errors, predicted, summary)


NEEDED = {"migration": ["point", "memory_bytes", "working_set_bytes", "dirty_rate_bytes_s",
                        "max_bandwidth_bytes_s", "downtime_limit_s", "max_sent", "duration_s",
                        "bytes", "outcome", "downtime_s"],
          "cpu": ["point", "guest", "guests", "vcpus", "host_cores", "share"],
          "memory": ["point", "ratio", "order", "working_set_bytes", "alone_pages_s", "slowdown"]}


def read_measured(folder: Path, kind: str) -> pd.DataFrame:
    """The measured table of ``kind`` in ``folder``, checked for the columns vsim needs."""
    path = Path(folder) / f"{TABLE[kind]}.parquet"
    if not path.exists():
        raise VsimError(f"{folder}: no {path.name} here (a folder written by `vsim kvm measure "
                        f"{kind}` or `vsim validate {kind}` has one)")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own types for a truncated or foreign file
        raise VsimError(f"{path}: not a readable Parquet table ({exc}); measure again with "
                        f"`vsim kvm measure {kind}`") from None
    missing = [c for c in NEEDED[kind] if c not in table.columns]
    if missing:
        raise VsimError(f"{path}: missing column(s) {', '.join(missing)}; measure again with "
                        f"`vsim kvm measure {kind}`")
    return table


def _gather(folders: list[Path], kind: str) -> pd.DataFrame | None:
    tables = []
    for i, folder in enumerate(folders):
        if (Path(folder) / f"{TABLE[kind]}.parquet").exists():
            t = read_measured(folder, kind)
            tables.append(t.assign(point=t.point + 10_000 * i))  # points stay distinct
    return pd.concat(tables, ignore_index=True) if tables else None


def calibrate_folders(measured: list[Path], check: list[Path], out: Path) -> str:
    """Fit every model that ``measured`` has tables for, write the calibration file ``out``,
    and return a report of the errors before (the models' defaults) and after fitting, on
    ``check`` (default: every other point of ``measured``, held out of the fit)."""
    for folder in [*measured, *check]:
        if not Path(folder).is_dir():
            raise VsimError(f"{folder}: no such measured folder")
    fitted = Calibration()
    source: dict[str, Any] = {"fitted_on": [str(f) for f in measured], "checked_on": {},
                              "errors_before": {}, "errors_after": {}}
    lines = []
    for kind in ("migration", "cpu", "memory"):
        train = _gather(measured, kind)
        if train is None:
            continue
        test = _gather(check, kind) if check else None
        if test is None:  # hold out every other point
            points = np.sort(train.point.unique())
            held = set(points[1::2].tolist())
            test = train[train.point.isin(held)]
            train = train[~train.point.isin(held)]
            source["checked_on"][kind] = "every other point of the measured folders"
        else:
            source["checked_on"][kind] = [str(f) for f in check
                                          if (Path(f) / f"{TABLE[kind]}.parquet").exists()]
        if kind == "migration":
            fitted = replace(fitted, migration=fit_migration(train))
        elif kind == "cpu":
            fitted = replace(fitted, cpu=fit_cpu(train, fit_cpu(train), "timeslice"))
        else:
            fitted = replace(fitted, memory=fit_memory(train))
        first = train.iloc[0]
        source["accel"] = str(first.get("accel", ""))
        source["qemu_version"] = str(first.get("qemu_version", ""))
        source[f"{kind}_points"] = int(train.point.nunique())
        lines.append(f"{kind}: fitted on {train.point.nunique()} point(s), checked on "
                     f"{test.point.nunique()} other(s)")
        for model in (("fluid", "timeslice") if kind == "cpu" else ("fluid",)):
            before = validate(kind, test, Calibration(), model).summary
            after = validate(kind, test, fitted, model).summary
            key = kind if model == "fluid" else f"{kind}-{model}"
            source["errors_before"][key] = {m: t["value"] for m, t in before["targets"].items()}
            source["errors_after"][key] = {m: t["value"] for m, t in after["targets"].items()}
            if kind == "cpu":
                lines.append(f" {model} model:")
            for metric, t in after["targets"].items():
                lines.append(f"  {metric:<11} {t['statistic']:<14} before "
                             f"{before['targets'][metric]['value']:>10.4g}   after "
                             f"{t['value']:>10.4g}   target {t['limit']:>7.4g}")
    if not lines:
        raise VsimError("no measured table in " + ", ".join(map(str, measured))
                        + " (run `vsim kvm measure migration|cpu|memory`)")
    save_calibration(replace(fitted, source=source), out)
    return "\n".join(lines)
