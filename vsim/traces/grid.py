"""Readings at irregular times averaged onto the regular step grid of a DemandTable.

Trace readings rarely fall exactly on a grid: Bitbrains samples every 300 s from a different
second for each VM, Alibaba every ten seconds or so with jitter. Each reading is counted in the
step that holds its timestamp, and a step's value is the mean of its readings. A step with no
reading holds the value before it (a sampler that missed a beat, not an idle VM); steps before a
series' first reading are 0, and the series' VM arrives at its first reading.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Grid", "grid_for", "mean_per_step", "presence"]


class Grid:
    """Steps of ``step_s`` seconds from ``origin_s`` (a time of the trace's clock), ``n_steps`` long."""

    def __init__(self, origin_s: float, step_s: float, n_steps: int) -> None:
        self.origin_s = origin_s
        self.step_s = step_s
        self.n_steps = n_steps

    def step_of(self, times_s: np.ndarray) -> np.ndarray:
        return np.floor((np.asarray(times_s, float) - self.origin_s) / self.step_s).astype(np.int64)


def grid_for(times_s: np.ndarray, step_s: float, origin_s: float | None = None) -> Grid:
    """The grid covering every time in ``times_s``; its origin is ``origin_s`` or the first
    time floored to a whole number of steps (so readings at 10:00:46 fall in the 10:00 step)."""
    if origin_s is None:
        origin_s = math.floor(float(np.min(times_s)) / step_s) * step_s
    last = math.floor((float(np.max(times_s)) - origin_s) / step_s)
    return Grid(origin_s, step_s, last + 1)


def mean_per_step(series: np.ndarray, times_s: np.ndarray, values: dict[str, np.ndarray],
                  n_series: int, grid: Grid) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each value column averaged per (series, step): arrays of shape (n_series, n_steps).

    Returns the averaged columns with gaps filled (see the module docstring) and the mask of
    steps that held at least one reading. Readings outside the grid are dropped."""
    step = grid.step_of(times_s)
    inside = (step >= 0) & (step < grid.n_steps)
    cell = np.asarray(series, np.int64)[inside] * grid.n_steps + step[inside]
    size = n_series * grid.n_steps
    counts = np.bincount(cell, minlength=size)
    occupied = (counts > 0).reshape(n_series, grid.n_steps)
    # Index of the last occupied step at or before each step (-1: none yet), for the holds.
    cols = np.where(occupied, np.arange(grid.n_steps), -1)
    last_seen = np.maximum.accumulate(cols, axis=1)
    rows = np.arange(n_series)[:, None]
    out = {}
    for name, column in values.items():
        column = np.asarray(column, float)[inside]
        finite = np.isfinite(column)  # empty optional fields do not count in the mean
        sums = np.bincount(cell[finite], weights=column[finite], minlength=size)
        n = np.bincount(cell[finite], minlength=size)
        mean = np.divide(sums, n, out=np.full(size, np.nan), where=n > 0)
        mean = mean.reshape(n_series, grid.n_steps)
        held = np.where(last_seen >= 0, mean[rows, np.maximum(last_seen, 0)], 0.0)
        out[name] = np.nan_to_num(held, nan=0.0)
    return out, occupied


def presence(occupied: np.ndarray, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Arrival and lifetime of each series from its readings: it arrives at the start of its
    first step with a reading and leaves at the end of its last one, or stays (``inf``) when
    it has a reading in the trace's last step."""
    t = occupied.shape[1]
    any_reading = occupied.any(axis=1)
    first = np.where(any_reading, occupied.argmax(axis=1), 0)
    last = np.where(any_reading, t - 1 - occupied[:, ::-1].argmax(axis=1), t - 1)
    start = first * step_s
    lifetime = np.where(last >= t - 1, np.inf, (last + 1 - first) * step_s)
    return start.astype(float), lifetime.astype(float)
