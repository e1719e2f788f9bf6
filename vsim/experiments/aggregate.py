"""A sweep's runs reduced to means with confidence intervals, and the values of an axis compared.

``vsim sweep`` runs one scenario over a grid of field values (the axes) times a number of
replications and leaves a sweep folder: ``sweep.json`` (the scenario, the axes and their values,
the replications and seeds) and ``index.parquet`` (one row per run: its point, replication, seed,
status, axis values, and every scalar figure of its ``summary.json`` flattened with ".").

- :func:`load_index` reads and checks such a folder;
- :func:`aggregate` reduces the index to one row per (point, figure): runs, mean, standard
  deviation and a Student-t or percentile-bootstrap confidence interval;
- :func:`compare` tells, for one axis with the others held fixed, which value is best and whether
  the difference is more than noise, both by the overlap of the intervals and by a paired
  comparison (replication r of every point runs with the same seed, so runs pair up).

Only numpy, pandas and scipy are used: notebooks and cluster workers use this without plotly.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from vsim.errors import VsimError

__all__ = [
    "HEADLINE_METRICS",
    "Axis",
    "SweepMeta",
    "aggregate",
    "compare",
    "default_metrics",
    "higher_is_better",
    "interval",
    "load_index",
]

PathLike = str | os.PathLike[str]
Method = Literal["t", "bootstrap"]

# Columns of the index that describe the run rather than measure it.
INDEX_COLUMNS = ("run_id", "point", "replication", "seed", "status", "error", "wall_time_s")
_REQUIRED = ("run_id", "point", "replication", "status")

# The figures a sweep is usually run for, in the order reports show them.
HEADLINE_METRICS = (
    "energy_kwh",
    "migrations",
    "cpu_ready_frac_mean",
    "cpu_ready_frac_p95",
    "sla.slav",
    "sla.slatah",
    "sla.pdm",
    "hosts_on_mean",
    "vms_unplaced",
    "availability.vm_hours_lost",
    "availability.rto_s.p95",
)
# Summary figures that restate the scenario (its size and length) or another figure in other
# units; they can vary with an axis (hosts.0.count changes "hosts") but are inputs, not outcomes.
_NOT_OUTCOMES = frozenset({"hosts", "vms", "sim_time_s", "period_s", "energy_j"})
_INTERNAL_PREFIXES = ("engine.",)  # the simulator's own effort (events, intervals)

# Everything else vsim reports is a cost (energy, waiting, violations, losses): lower is better.
_HIGHER_IS_BETTER = frozenset({"jobs.completed", "migration.completed"})

_RESAMPLES = 9999


@dataclass(frozen=True)
class Axis:
    """One swept field: its dotted key and its values as the user gave them."""

    key: str
    values: tuple[str, ...]

    @property
    def numeric(self) -> bool:
        """True when every value reads as a number, so the axis is drawn to scale."""
        try:
            [float(v) for v in self.values]
        except ValueError:
            return False
        return bool(self.values)


@dataclass(frozen=True)
class SweepMeta:
    """What ``sweep.json`` says about a sweep."""

    folder: Path
    scenario: str
    axes: tuple[Axis, ...]
    replications: int
    raw: Mapping[str, Any]

    @property
    def axis_keys(self) -> list[str]:
        return [a.key for a in self.axes]


# --- reading a sweep folder ---------------------------------------------------------------------


def _not_a_sweep(folder: Path) -> VsimError:
    hint = "pass a folder written by `vsim sweep`"
    if (folder / "summary.json").is_file():
        hint = "it is the result folder of one run; `vsim compare` compares such folders"
    else:
        # A common slip is to pass the folder that holds several sweeps.
        inner = sorted(p.parent for p in folder.glob("*/sweep.json"))
        if inner:
            shown = ", ".join(str(p) for p in inner[:3]) + (", …" if len(inner) > 3 else "")
            hint = f"it holds {len(inner)} sweep folder(s): pass one of those ({shown})"
    return VsimError(f"{folder}: not a sweep folder (no sweep.json); {hint}")


def _read_meta(folder: Path) -> SweepMeta:
    path = folder / "sweep.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VsimError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise VsimError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    axes_raw = raw.get("axes", [])
    ok = isinstance(axes_raw, list) and all(
        isinstance(a, dict) and isinstance(a.get("key"), str) and isinstance(a.get("values"), list)
        for a in axes_raw)
    if not ok:
        raise VsimError(f"{path}: 'axes' must be a list of {{\"key\": ..., \"values\": [...]}}")
    axes = tuple(Axis(a["key"], tuple(str(v) for v in a["values"])) for a in axes_raw)
    reps = raw.get("replications", 1)
    return SweepMeta(folder=folder, scenario=str(raw.get("scenario") or folder.name), axes=axes,
                     replications=reps if isinstance(reps, int) else 1, raw=raw)


def _read_index(folder: Path, meta: SweepMeta) -> pd.DataFrame:
    path = folder / "index.parquet"
    if not path.is_file():
        raise VsimError(f"{folder}: no index.parquet; the sweep did not finish writing it "
                        "(run the sweep again to complete it)")
    try:
        index = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise VsimError(f"{path}: cannot read it as a Parquet table ({exc})") from None
    lacking = [c for c in (*_REQUIRED, *meta.axis_keys) if c not in index.columns]
    if lacking:
        raise VsimError(f"{path}: the index lacks the column(s) {', '.join(lacking)}; "
                        "it was not written by `vsim sweep` for this sweep.json")
    index = index.copy()
    # Axis values are compared as the user wrote them; a writer storing "12" as 12 must not
    # make the point unfindable.
    for key in meta.axis_keys:
        index[key] = index[key].astype(str)
    index["status"] = index["status"].astype(str)
    return index


def load_index(sweep_dir: PathLike) -> tuple[SweepMeta, pd.DataFrame]:
    """The sweep's description and its index (one row per run, axis columns as strings).

    Raises :class:`~vsim.errors.VsimError` naming the folder when it is missing, not a sweep
    folder, or its ``sweep.json`` or ``index.parquet`` is missing or unreadable.
    """
    folder = Path(sweep_dir)
    if not folder.exists():
        raise VsimError(f"{folder}: no such folder; pass a folder written by `vsim sweep`")
    if not folder.is_dir():
        raise VsimError(f"{folder}: not a folder; pass the sweep folder written by `vsim sweep`, "
                        "not a file in it")
    if not (folder / "sweep.json").is_file():
        raise _not_a_sweep(folder)
    meta = _read_meta(folder)
    return meta, _read_index(folder, meta)


# --- statistics ---------------------------------------------------------------------------------


def _numeric(column: pd.Series) -> np.ndarray:
    """A column as float64 with anything missing, non-numeric or infinite as NaN."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def interval(values: Iterable[float], confidence: float = 0.95, method: Method = "t",
             seed: int | Sequence[int] = 0) -> tuple[int, float, float, float, float]:
    """(n, mean, sd, ci_low, ci_high) of the finite ``values``.

    ``method="t"``: mean ± t((1+c)/2, n−1)·sd/√n. ``method="bootstrap"``: the percentile interval
    of the mean over 9,999 resamples drawn from ``seed``. The interval is NaN with fewer than two
    values (one run says nothing about the spread); with no spread it is the mean itself.
    """
    data = np.asarray(values if isinstance(values, np.ndarray | Sequence) else list(values),
                      dtype=np.float64)
    data = data[np.isfinite(data)]
    n = int(data.size)
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(data.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan, math.nan
    sd = float(data.std(ddof=1))
    if sd == 0.0:
        return n, mean, 0.0, mean, mean
    if method == "t":
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        return n, mean, sd, mean - half, mean + half
    result = stats.bootstrap((data,), np.mean, n_resamples=_RESAMPLES, confidence_level=confidence,
                             method="percentile", rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return n, mean, sd, float(ci.low), float(ci.high)


def _check(index: pd.DataFrame, keys: Sequence[str], confidence: float, method: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise VsimError(f"confidence must be between 0 and 1 (exclusive), not {confidence}")
    if method not in ("t", "bootstrap"):
        raise VsimError(f"unknown method {method!r}; use 't' or 'bootstrap'")
    lacking = [k for k in (*keys, "point", "replication", "status") if k not in index.columns]
    if lacking:
        raise VsimError(f"the sweep index lacks the column(s) {', '.join(lacking)}")


def default_metrics(index: pd.DataFrame, axes: Sequence[str]) -> list[str]:
    """The figures worth aggregating: the headline ones some run defines, then every other
    numeric figure that varies over the runs that succeeded (a constant says nothing about the
    axes)."""
    ok = index[index["status"] == "ok"] if "status" in index.columns else index
    skip = {*INDEX_COLUMNS, *axes, *_NOT_OUTCOMES}
    chosen, varying = [], []
    for column in index.columns:
        if column in skip or column.startswith(_INTERNAL_PREFIXES):
            continue
        if index[column].dtype == bool:
            continue
        values = _numeric(ok[column])
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue  # text (a name, a semantics label), or a figure no run defines
        if column in HEADLINE_METRICS:
            chosen.append(column)
        elif np.unique(finite).size > 1:
            varying.append(column)
    chosen.sort(key=HEADLINE_METRICS.index)
    return chosen + varying


def _groups(index: pd.DataFrame, keys: Sequence[str]) -> list[tuple[tuple[str, ...], pd.DataFrame]]:
    """The runs of each point, points in the order the sweep numbered them."""
    if not keys:
        return [((), index)]
    grouped = index.groupby(list(keys), sort=False, dropna=False)
    groups = [(tuple(str(v) for v in (k if isinstance(k, tuple) else (k,))), g)
              for k, g in grouped]
    groups.sort(key=lambda kg: float(pd.to_numeric(kg[1]["point"], errors="coerce").min()))
    return groups


def _seed_for(seed: int, label: str) -> list[int]:
    # Each (point, figure) gets its own stream derived from its name, so a bootstrap interval
    # does not change when other figures or points are added to the aggregate.
    return [seed, zlib.crc32(label.encode("utf-8"))]


def aggregate(index: pd.DataFrame, axes: Sequence[Any], metrics: Sequence[str] | None = None,
              confidence: float = 0.95, method: Method = "t", seed: int = 0) -> pd.DataFrame:
    """One row per (point, figure): the axis values, ``point``, ``metric``, ``n`` (runs that
    succeeded and define the figure), ``ok`` and ``failed`` (runs of the point that succeeded
    and that failed; n < ok where the figure is undefined in some runs), ``mean``,
    ``sd`` and the interval ``ci_low``..``ci_high`` at ``confidence``.

    A point is a combination of axis values that ran, even if every run of it failed (then n is
    0 and the figures NaN). A figure undefined in a run (NaN, e.g. an RTO without outages) is left
    out of that run only. ``metrics`` defaults to :func:`default_metrics`. The frame's
    ``attrs`` keep the axes, metrics, confidence and method.
    """
    # Anything with a ``key`` is an axis (this module's Axis, the sweep writer's); else a key.
    keys = [str(getattr(a, "key", a)) for a in axes]
    _check(index, keys, confidence, method)
    index = index.reset_index(drop=True)  # row labels become positions into the value arrays
    if metrics is None:
        chosen = default_metrics(index, keys)
    else:
        chosen = list(dict.fromkeys(metrics))
        unknown = [m for m in chosen if m not in index.columns]
        if unknown:
            known = ", ".join(default_metrics(index, keys)) or "none"
            raise VsimError(f"no figure named {', '.join(unknown)} in the sweep's index; "
                            f"figures it has: {known}")
    ok_mask = (index["status"] == "ok").to_numpy()
    values = {m: _numeric(index[m]) for m in chosen}
    rows: list[dict[str, Any]] = []
    for point_values, group in _groups(index, keys):
        at = group.index.to_numpy()
        ok_at = at[ok_mask[at]]
        ok, failed = len(ok_at), int(len(at) - len(ok_at))
        point = pd.to_numeric(group["point"], errors="coerce").min()
        label = "\x1f".join(point_values)
        for metric in chosen:
            n, mean, sd, lo, hi = interval(values[metric][ok_at], confidence, method,
                                           _seed_for(seed, f"{label}\x1e{metric}"))
            rows.append({**dict(zip(keys, point_values, strict=True)),
                         "point": int(point) if np.isfinite(point) else -1, "metric": metric,
                         "n": n, "ok": ok, "failed": failed, "mean": mean, "sd": sd,
                         "ci_low": lo, "ci_high": hi})
    columns = [*keys, "point", "metric", "n", "ok", "failed", "mean", "sd", "ci_low", "ci_high"]
    out = pd.DataFrame(rows, columns=columns)
    out.attrs.update(axes=keys, metrics=chosen, confidence=confidence, method=method)
    return out


# --- comparing the values of one axis -----------------------------------------------------------


def higher_is_better(metric: str) -> bool:
    """Whether more of ``metric`` is better (jobs completed); vsim's other figures are costs."""
    return metric in _HIGHER_IS_BETTER


def _overlap(a_lo: float, a_hi: float, b_lo: float, b_hi: float) -> str:
    if not all(np.isfinite([a_lo, a_hi, b_lo, b_hi])):
        return "n/a"
    return "differs" if a_hi < b_lo or b_hi < a_lo else "overlaps"


def _paired(runs: pd.DataFrame, metric: str, value: str, best: str, axis: str,
            confidence: float) -> tuple[int, float, float, float, str]:
    """Mean difference (value − best) over the replications both ran, with its t interval."""
    ok = runs[runs["status"] == "ok"]
    at = ok[axis].astype(str)
    a = ok[at == value].set_index("replication")[metric]
    b = ok[at == best].set_index("replication")[metric]
    a, b = a[~a.index.duplicated()], b[~b.index.duplicated()]
    shared = a.index.intersection(b.index)
    diffs = _numeric(a.loc[shared]) - _numeric(b.loc[shared])
    n, mean, _sd, lo, hi = interval(diffs, confidence, "t")
    if n < 2 or not np.isfinite(lo):
        verdict = "n/a"
    else:
        verdict = "differs" if lo > 0 or hi < 0 else "no clear difference"
    return n, mean, lo, hi, verdict


def compare(agg: pd.DataFrame, axis: str, metric: str,
            index: pd.DataFrame | None = None) -> pd.DataFrame:
    """The values of ``axis`` side by side for ``metric``, the other axes held fixed.

    One row per (combination of the other axes, value of ``axis``): n, mean, the interval,
    ``best`` (the lowest mean, or highest for :func:`higher_is_better` figures), and ``cis``:
    "best", "differs" when this value's interval and the best one's do not overlap, "overlaps"
    otherwise (or "n/a" without an interval). With the sweep's ``index``, also the paired
    comparison with the best value over the replications both ran (same seed, so the noise they
    share cancels): ``pairs``, ``diff_mean`` (this − best), ``diff_ci_low``..``diff_ci_high``
    (Student t) and ``paired``: "differs" when that interval excludes 0, else
    "no clear difference".
    """
    keys = list(agg.attrs.get("axes") or agg.columns[: list(agg.columns).index("point")])
    if axis not in keys:
        raise VsimError(f"no axis {axis!r} in this sweep; its axes: {', '.join(keys) or 'none'}")
    rows = agg[agg["metric"] == metric]
    if rows.empty:
        raise VsimError(f"no figure {metric!r} in the aggregate")
    confidence = float(agg.attrs.get("confidence", 0.95))
    others = [k for k in keys if k != axis]
    sign = -1.0 if higher_is_better(metric) else 1.0
    out: list[dict[str, Any]] = []
    for context, group in _groups(rows, others):
        means = sign * group["mean"].to_numpy(dtype=np.float64)
        best_at = int(np.nanargmin(means)) if np.isfinite(means).any() else -1
        best = group.iloc[best_at] if best_at >= 0 else None
        runs = None
        if index is not None:
            fixed = np.ones(len(index), dtype=bool)
            for key, value in zip(others, context, strict=True):
                fixed &= (index[key].astype(str) == value).to_numpy()
            runs = index[fixed]
        for i, (_, row) in enumerate(group.iterrows()):
            entry: dict[str, Any] = {**dict(zip(others, context, strict=True)),
                                     axis: row[axis], "n": row["n"], "mean": row["mean"],
                                     "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                                     "best": i == best_at}
            if best is None:
                entry["cis"] = "n/a"
            elif i == best_at:
                entry["cis"] = "best"
            else:
                entry["cis"] = _overlap(row["ci_low"], row["ci_high"], best["ci_low"],
                                        best["ci_high"])
            if runs is not None:
                if best is None or i == best_at:
                    entry.update(pairs=0, diff_mean=math.nan, diff_ci_low=math.nan,
                                 diff_ci_high=math.nan, paired="n/a" if best is None else "best")
                else:
                    n, mean, lo, hi, verdict = _paired(runs, metric, row[axis], best[axis], axis,
                                                       confidence)
                    entry.update(pairs=n, diff_mean=mean, diff_ci_low=lo, diff_ci_high=hi,
                                 paired=verdict)
            out.append(entry)
    table = pd.DataFrame(out)
    table.attrs.update(axis=axis, metric=metric, confidence=confidence,
                       better="higher" if sign < 0 else "lower")
    return table
