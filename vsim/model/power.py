"""Host power: piecewise-linear power curves over CPU utilisation, evaluated for all hosts at once.

A linear model (idle and max watts) is the two-point curve; a SPECpower table is the usual
eleven-point curve at 0 %, 10 %, ..., 100 %. Every host has one curve; curves of different lengths
are padded into one array so that a single vectorised call prices the whole datacenter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["POWER_TABLES", "PowerCurves"]

# SPECpower_ssj2008 results, watts at 0, 10, ..., 100 % load, as used by CloudSim's power package
# (Beloglazov & Buyya, CCPE 2012, Table I; classes PowerModelSpecPowerHpProLiantMl110G4/G5).
POWER_TABLES: dict[str, tuple[float, ...]] = {
    "hp-proliant-ml110-g4": (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0),
    "hp-proliant-ml110-g5": (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0),
}


class PowerCurves:
    """Power draw of every host as a function of its CPU utilisation in [0, 1].

    ``points[h]`` holds host ``h``'s watts at evenly spaced utilisations from 0 to 1. Hosts that are
    switched off draw ``off_w``; hosts that are booting draw their idle power.
    """

    def __init__(self, curves: Sequence[Sequence[float]], off_w: Sequence[float],
                 of_host: np.ndarray | None = None) -> None:
        """``curves[c]`` and ``off_w[c]`` describe curve ``c``; host ``h`` uses curve
        ``of_host[h]`` (default: one curve per host, in order)."""
        width = max((len(c) for c in curves), default=2)
        table = np.zeros((len(curves), width))
        n_points = np.zeros(len(curves), dtype=np.int64)
        for c, curve in enumerate(curves):
            if len(curve) < 2:
                raise ValueError("a power curve needs at least two points (idle and max)")
            table[c, : len(curve)] = curve
            n_points[c] = len(curve)
        index = np.arange(len(curves)) if of_host is None else np.asarray(of_host, dtype=np.int64)
        self.points = table[index]
        self.n_points = n_points[index]
        self.off_w = np.asarray(off_w, dtype=float)[index]
        self._rows = np.arange(len(index))

    @property
    def idle_w(self) -> np.ndarray:
        return self.points[:, 0]

    @property
    def max_w(self) -> np.ndarray:
        return self.points[self._rows, self.n_points - 1]

    def watts(self, util: np.ndarray, hosts: np.ndarray | None = None) -> np.ndarray:
        """Power at utilisation ``util`` (one value per host in ``hosts``, default all hosts)."""
        rows = self._rows if hosts is None else hosts
        segments = self.n_points[rows] - 1
        x = np.clip(util, 0.0, 1.0) * segments
        i = np.minimum(np.floor(x).astype(np.int64), segments - 1)
        lo = self.points[rows, i]
        hi = self.points[rows, i + 1]
        return lo + (hi - lo) * (x - i)
