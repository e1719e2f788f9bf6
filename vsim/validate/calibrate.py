"""Fitting the models' free parameters to measured tables (scipy.optimize).

Migration: the guest's memory footprint and QEMU's setup time are read straight off the
measurements (QEMU reports the zero pages it skipped and its setup time). The speed of the
unthrottled stop-and-copy and the resume time come from a robust line (Theil-Sen) through the
downtimes against the bytes sent while the guest was paused, over the pauses that came after a
later round than round 0. Pauses inside round 0 also send pages the destination never had: how
many is read off the bytes sent before the pause, and gives the guest's tail (the non-zero memory
above its zero pages) and the destination's speed for such pages. What QEMU's rate limiter really
lets through (``bandwidth_scale``) is then fitted by least squares on the simulator's own
predictions of total time and bytes sent.

CPU: for each CPU model its two costs (fluid: ``switch_loss`` and ``interference``; time-slicing:
the cost of a context switch and the interference) by least squares on the simulator's predicted
shares.

Memory: the cost of a fault, by least squares on the logarithm of the predicted slowdowns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares
from scipy.stats import theilslopes

from vsim.errors import VsimError
from vsim.kvm.cpu import CpuPoint
from vsim.kvm.migration import MigrationPoint
from vsim.model.precopy import MigrationParams
from vsim.validate.cpu import CpuCalibration, predict_cpu
from vsim.validate.memory import MemoryCalibration, predict_memory
from vsim.validate.migration import MigrationCalibration, predict_migration

# QEMU's page header and rate-limit window, as the migration model has them.
_QEMU = MigrationParams()
WIRE_FACTOR, RATE_WINDOW_S = _QEMU.wire_factor, _QEMU.rate_window_s

__all__ = ["Calibration", "cpu_points", "fit_cpu", "fit_memory", "fit_migration", "load_calibration",
           "migration_points", "save_calibration"]


@dataclass(frozen=True)
class Calibration:
    migration: MigrationCalibration = field(default_factory=MigrationCalibration)
    cpu: CpuCalibration = field(default_factory=CpuCalibration)
    source: dict[str, Any] = field(default_factory=dict)
    memory: MemoryCalibration = field(default_factory=MemoryCalibration)  # accelerator, QEMU, points, errors

    def scenario_values(self) -> dict[str, Any]:
        """What a scenario's ``calibration:`` brings in (see vsim.scenario.loader)."""
        m = self.migration
        # The tail describes the measured guest image, not a scenario's VMs; the speed for new
        # pages is the destination host's, and matters only where a scenario declares a tail.
        return {"migration": {"setup": m.setup_s, "resume": m.resume_s,
                              "device_state": m.device_state_bytes,
                              "fresh_page_bandwidth": m.fresh_page_bandwidth()},
                "hypervisor": self.cpu.hypervisor("fluid"),
                "hypervisor_timeslice": {k: v for k, v in self.cpu.hypervisor("timeslice").items()
                                         if k in ("switch_cost", "interference")}}


def migration_points(measured: pd.DataFrame) -> list[MigrationPoint]:
    """The distinct configurations of a measured migrations table, by its ``point`` column."""
    first = measured.sort_values(["point", "repeat"]).groupby("point", sort=True).first()
    return [MigrationPoint(memory_bytes=r.memory_bytes, working_set_bytes=r.working_set_bytes,
                           dirty_rate_bytes_s=r.dirty_rate_bytes_s,
                           max_bandwidth_bytes_s=r.max_bandwidth_bytes_s,
                           downtime_limit_s=r.downtime_limit_s, max_sent=float(r.max_sent))
            for r in first.itertuples()]


def cpu_points(measured: pd.DataFrame) -> list[CpuPoint]:
    points = []
    for _, rows in measured.groupby("point", sort=True):
        first = rows.sort_values("guest", kind="stable").drop_duplicates("guest")
        n = int(first.guests.iloc[0])
        weights = tuple(first.weight) if "weight" in first and (first.weight != 1).any() else ()
        caps = tuple(first.cap) if "cap" in first and (first.cap > 0).any() else ()
        points.append(CpuPoint(n, int(first.vcpus.iloc[0]), int(first.host_cores.iloc[0]),
                               weights, caps))
    return points


def fit_migration(measured: pd.DataFrame, start: MigrationCalibration | None = None
                  ) -> MigrationCalibration:
    start = start or MigrationCalibration()
    done = measured[measured.outcome == "completed"]
    if done.empty:
        raise VsimError("no completed migration among the measured points: nothing to fit "
                        "(measure at a bandwidth above the dirty rate)")
    used = (done.memory_bytes - done.zero_bytes - done.working_set_bytes).to_numpy(float)
    mem = done.memory_bytes.to_numpy(float)
    if len(np.unique(mem)) >= 2:  # fixed part and part per byte of RAM
        per_byte, footprint = (float(v) for v in np.polyfit(mem, used, 1))
    else:  # the per-byte part from first principles (the start value), the fixed part fitted
        per_byte = start.footprint_per_byte
        footprint = float(np.median(used - per_byte * mem))
    setup = float(np.median(done.setup_s))
    # What the pause sent for the first time: the part of round 0 not sent before it (0 where
    # the guest paused after a later round, having sent round 0 whole and more).
    nonzero = (done.memory_bytes - done.zero_bytes).to_numpy(float) * WIRE_FACTOR
    before = (done.bytes - done.downtime_bytes).to_numpy(float)
    # Under a MiB is bookkeeping (headers of zero pages, device state), not a part of round 0.
    first = np.where(nonzero - before > 2.0**20, nonzero - before, 0.0)
    x, y = done.downtime_bytes.to_numpy(float), done.downtime_s.to_numpy(float)
    # downtime = resume + bytes / loopback (+ first / fresh pages): the line by the median of
    # pairwise slopes (Theil-Sen) over the pauses that sent nothing new, not least squares.
    later = first == 0
    xl, yl = x[later], y[later]
    slope, intercept = theilslopes(yl, xl)[:2] if len(np.unique(xl)) >= 2 else (0.0, 0.0)
    if slope > 0:
        loopback, resume = 1.0 / float(slope), max(0.0, float(intercept))
    elif (yl > 0).any():  # one point, or noise: the median speed, nothing to resume
        loopback, resume = float(np.median(xl[yl > 0] / yl[yl > 0])), 0.0
    else:
        loopback, resume = start.loopback_bytes_s, start.resume_s
    tail, fresh = 0.0, float("inf")
    new = first > 0
    if new.any():
        # QEMU tests for the switch-over at the end of each rate-limit window, once round 0 is
        # past the zero pages; what was left of the tail then is ``first``, so the tail was at
        # least that and less than that plus one window's bytes: take the middle.
        window = (done.max_bandwidth_bytes_s.to_numpy(float) * start.bandwidth_scale
                  * WIRE_FACTOR * RATE_WINDOW_S)
        whole = first[new] + window[new] / 2.0
        tail = max(float(np.median(whole - per_byte * done.memory_bytes.to_numpy(float)[new])), 0.0)
        # Every byte of the pause crosses the link; the destination's work on new pages adds.
        extra = y[new] - resume - x[new] / loopback
        speeds = first[new][extra > 0] / extra[extra > 0]
        if speeds.size:
            fresh = float(np.median(speeds))
    c = replace(start, footprint_bytes=footprint, footprint_per_byte=per_byte, setup_s=setup,
                resume_s=resume, loopback_bytes_s=loopback, device_state_bytes=0.0,
                tail_bytes=tail, fresh_page_bytes_s=fresh)
    points = migration_points(done)
    means = done.groupby("point", sort=True)[["duration_s", "bytes"]].mean()

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = predict_migration(points, replace(c, bandwidth_scale=float(theta[0])))
        return np.concatenate([np.log(pred.duration_s.to_numpy() / means.duration_s.to_numpy()),
                               np.log(pred.bytes.to_numpy() / means.bytes.to_numpy())])

    scale = least_squares(residuals, x0=[start.bandwidth_scale], bounds=([0.5], [2.0]),
                          diff_step=0.01).x[0]
    return replace(c, bandwidth_scale=float(scale))


def fit_cpu(measured: pd.DataFrame, start: CpuCalibration | None = None,
            model: str = "fluid") -> CpuCalibration:
    """``start`` with the two costs of ``model`` fitted to the measured shares."""
    start = start or CpuCalibration()
    points = cpu_points(measured)
    share = measured.groupby(["point", "guest"], sort=True).share.mean().to_numpy()
    names = ("switch_loss", "interference") if model == "fluid" else (
        "switch_cost_s", "slice_interference")
    # The time-slicing model's switch cost is in seconds: fitted in milliseconds, so that both
    # parameters have steps of the same order.
    scale = (1.0, 1.0) if model == "fluid" else (1e-3, 1.0)

    def with_theta(theta: np.ndarray) -> CpuCalibration:
        return replace(start, **{n: float(t) * k for n, t, k in zip(names, theta, scale, strict=True)})

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = predict_cpu(points, with_theta(theta), model)
        return pred.sort_values(["point", "guest"]).share.to_numpy() - share

    # Start inside the bounds: finite differences are relative to the start, and a start at 0
    # would take steps of nothing.
    x0 = [max(getattr(start, n) / k, 0.01) for n, k in zip(names, scale, strict=True)]
    upper = [0.5, 0.5] if model == "fluid" else [5.0, 0.5]
    fit = least_squares(residuals, x0=x0, bounds=([0.0, 0.0], upper), diff_step=1e-2)
    return with_theta(fit.x)


def fit_memory(measured: pd.DataFrame, start: MemoryCalibration | None = None) -> MemoryCalibration:
    start = start or MemoryCalibration()
    measured = measured[measured.slowdown.notna()]  # points where the OOM killer ended QEMU
    if measured.empty:
        raise VsimError("no memory point ran to the end: nothing to fit (measure at lower "
                        "--ratio values)")
    slow = measured.groupby("point", sort=True).slowdown.mean().to_numpy()

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = predict_memory(measured, MemoryCalibration(t_fault_s=float(theta[0]) * 1e-6))
        return np.log(pred.slowdown.to_numpy() / slow)

    fit = least_squares(residuals, x0=[start.t_fault_s * 1e6], bounds=([0.0], [1e5]))
    return MemoryCalibration(t_fault_s=float(fit.x[0]) * 1e-6)


HEADER = ("# vsim calibration: the models' free parameters fitted to real guests by `vsim "
          "calibrate`.\n# A scenario uses it with `calibration: <this file>`, which fills in the "
          "values under scenario:.\n# migration: and cpu: are what `vsim validate` uses to put "
          "the experiments to the simulator.\n")


def save_calibration(c: Calibration, path: Path) -> None:
    data = {"source": c.source, "scenario": c.scenario_values(),
            "migration": c.migration.to_dict(), "cpu": c.cpu.to_dict(),
            "memory": c.memory.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(HEADER + yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)


def load_calibration(path: Path) -> Calibration:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise VsimError(f"{path}: cannot read the calibration file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise VsimError(f"{path}: not a YAML calibration file: {exc}") from None
    if not isinstance(data, dict) or not {"migration", "cpu", "memory"} & data.keys():
        raise VsimError(f"{path}: not a calibration file (no migration:, cpu: or memory: "
                        "section)") from None
    try:
        return Calibration(MigrationCalibration.from_dict(data.get("migration") or {}),
                           CpuCalibration.from_dict(data.get("cpu") or {}),
                           data.get("source") or {},
                           MemoryCalibration.from_dict(data.get("memory") or {}))
    except (TypeError, ValueError) as exc:
        raise VsimError(f"{path}: a calibration value is not a number: {exc}") from None
