"""Error tables: the simulator's prediction, the naive baseline and the measurement, per point.

One row per point and metric (long format, so that one figure and one summary serve every
experiment): ``measured``, ``predicted``, ``naive``, the signed ``error`` and the absolute
percentage errors of the model and of the baseline. The summary gives, per metric, the mean
absolute percentage error (MAPE) and the worst absolute error, over the points where both the
measurement and the prediction have a value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["error_table", "format_value", "summarize_errors"]


def error_table(measured: pd.DataFrame, predicted: pd.DataFrame, naive: pd.DataFrame,
                keys: list[str], metrics: list[str], axes: list[str]) -> pd.DataFrame:
    """Join the three tables on ``keys`` and melt ``metrics`` into rows; ``axes`` (columns of
    ``measured``) say where each point lies in the grid."""
    # The median over repeats: one repeat disturbed by a neighbour on a shared machine does not
    # move it (with two repeats it is their mean).
    m = measured.groupby(keys, as_index=False)[axes + metrics].median(numeric_only=True)
    p = predicted.set_index(keys)
    b = naive.set_index(keys)
    rows = []
    for _, row in m.iterrows():
        key = tuple(row[k] for k in keys)
        key = key[0] if len(keys) == 1 else key
        for metric in metrics:
            meas = float(row[metric])
            pred = float(p.loc[key, metric])
            base = float(b.loc[key, metric]) if metric in b.columns else np.nan
            rows.append({**{k: row[k] for k in keys}, **{a: row[a] for a in axes},
                         "metric": metric, "measured": meas, "predicted": pred, "naive": base,
                         "error": pred - meas,
                         "abs_pct_error": _ape(pred, meas), "naive_abs_pct_error": _ape(base, meas)})
    return pd.DataFrame(rows)


def _ape(value: float, truth: float) -> float:
    return abs(value - truth) / abs(truth) * 100.0 if truth else np.nan


def summarize_errors(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per metric: points, MAPE (%) of the model and of the naive baseline, worst |error|."""
    out: dict[str, dict[str, Any]] = {}
    for metric, rows in table.groupby("metric", sort=False):
        rows = rows.dropna(subset=["measured", "predicted"])
        out[str(metric)] = {
            "points": len(rows),
            "mape_pct": float(rows.abs_pct_error.mean()) if len(rows) else np.nan,
            "naive_mape_pct": float(rows.naive_abs_pct_error.mean()) if len(rows) else np.nan,
            "max_abs_pct_error": float(rows.abs_pct_error.max()) if len(rows) else np.nan,
            "naive_max_abs_pct_error": float(rows.naive_abs_pct_error.max()) if len(rows) else np.nan,
            "max_abs_error": float(rows.error.abs().max()) if len(rows) else np.nan,
            "naive_max_abs_error": float((rows.naive - rows.measured).abs().max()) if len(rows) else np.nan,
        }
    return out


def format_value(value: Any, statistic: str, metric: str) -> str:
    """A summary value for people: percentages, milliseconds, percentage points."""
    if value is None or value != value:
        return "-"
    if statistic.endswith(("pct", "pct_error")):
        return f"{value:.1f} %"
    if metric == "downtime_s":
        return f"{value * 1e3:.1f} ms"
    if metric == "share":
        return f"{value * 100:.2f} pp"
    return str(value)
