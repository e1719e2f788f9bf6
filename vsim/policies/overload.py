"""Host overload detection for dynamic consolidation, vectorised over all hosts at once.

The detectors are those of Beloglazov & Buyya, "Optimal online deterministic algorithms and
adaptive heuristics for energy and performance efficient dynamic consolidation of virtual machines
in cloud data centers", CCPE 24(13), 2012: a static threshold (THR), two adaptive thresholds
from the spread of the recent utilisation (IQR, MAD) and two predictions by local regression (LR,
LRR). The arithmetic follows CloudSim 3.0.3, which ships them as the reference implementation; see
shared/reference/cloudsim-planetlab.md ("Overload tests") for the rules and CloudSim's bugs, which
are kept here because the reference experiment depends on them.

Every detector is called as ``detector(util, history, n_valid) -> mask`` with

- ``util`` (H,): each host's current utilisation, requested / capacity (may exceed 1);
- ``history`` (H, W): each host's past utilisation values, **oldest first and right-aligned**: the
  valid values of host h are ``history[h, W - n_valid[h]:]``, its newest value is
  ``history[h, -1]``, and whatever lies to the left of them is ignored (zeros, NaN, stale values);
- ``n_valid`` (H,): how many of the most recent entries are valid (0 <= n_valid <= W).

Right alignment means "the last k values" is the same slice ``history[:, -k:]`` for every host,
which is what makes the regression a handful of whole-array operations. CloudSim keeps W = 30
values per host and drops zeros only at the old end of the history (its ``trimZeroTail``); a zero
in the middle is a real sample and counts as valid, so ``n_valid`` is the length of that trimmed
history.

The result is a bool mask (H,), True where the host is overloaded. Detectors never modify their
inputs.
"""

from __future__ import annotations

import bisect
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = [
    "FALLBACK_THRESHOLD",
    "OVERLOAD_DETECTORS",
    "InterQuartileRange",
    "LocalRegression",
    "LocalRegressionRobust",
    "MedianAbsoluteDeviation",
    "OverloadDetector",
    "StaticThreshold",
    "commons_median",
    "make_overload_detector",
]

# CloudSim's PlanetLab examples give every adaptive detector a static threshold of 0.7 as its
# fallback for hosts whose history is too short to estimate anything.
FALLBACK_THRESHOLD = 0.7

# IQR and MAD need 12 values ("12 has been suggested as a safe value", CloudSim); LR fits the last
# 10, few enough for the line to follow recent change, enough not to chase single samples.
SPREAD_MIN_VALUES = 12
REGRESSION_VALUES = 10
# LR predicts one scheduling interval past the last value: CloudSim looks
# ceil(longest migration on the host / interval) intervals ahead, and every PlanetLab VM migrates in
# under 300 s (at most 27.84 s), so the prediction is always at x = 10 + 1.
REGRESSION_STEPS_AHEAD = 1


def _check(util: np.ndarray, history: np.ndarray, n_valid: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    util = np.asarray(util, dtype=float)
    history = np.asarray(history, dtype=float)
    n_valid = np.asarray(n_valid)
    if util.ndim != 1 or history.ndim != 2 or n_valid.shape != util.shape \
            or history.shape[0] != util.shape[0]:
        raise ValueError(
            f"overload detection needs util (H,), history (H, W) and n_valid (H,); got shapes "
            f"{util.shape}, {history.shape} and {n_valid.shape}")
    if n_valid.size and (n_valid.min() < 0 or n_valid.max() > history.shape[1]):
        raise ValueError(f"n_valid must lie in 0..{history.shape[1]} (the history's width W)")
    return util, history, n_valid.astype(np.int64, copy=False)


def _sorted_valid(history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    """Each row's valid values in increasing order, then +inf where the row has no more values."""
    width = history.shape[1]
    valid = np.arange(width) >= (width - n_valid)[:, None]
    data = np.where(valid, history, np.inf)
    data.sort(axis=1)
    return data


def _at(rows: np.ndarray, index: np.ndarray) -> np.ndarray:
    """rows[h, index[h]] for every h."""
    return np.take_along_axis(rows, index[:, None], axis=1)[:, 0]


def _java_round(x: np.ndarray) -> np.ndarray:
    # Java's Math.round rounds halves up (floor(x + 0.5)); numpy's round goes to the even
    # neighbour and would pick a different quartile for n = 9, 13, 17, ...
    return np.floor(x + 0.5).astype(np.int64)


def commons_median(sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of the first ``n[h]`` values of each increasingly sorted row, as CloudSim takes it.

    CloudSim's median is Apache Commons Math's 50th percentile (the default, "legacy" estimator):
    position p = 0.5 (n + 1) counted from 1; with d = p - floor(p) the result is
    x[floor(p)] + d (x[floor(p) + 1] - x[floor(p)]) (1-based). For odd n, d = 0 and it is the
    middle value; for even n, d = 1/2: the mean of the two middle values, computed in this order
    (which can differ from (a + b) / 2 in the last bit). Needs n >= 2.
    """
    pos = 50.0 * (n + 1) / 100.0
    lower_pos = np.floor(pos)
    dif = pos - lower_pos
    lower_idx = lower_pos.astype(np.int64) - 1
    lower = _at(sorted_rows, lower_idx)
    upper = _at(sorted_rows, np.minimum(lower_idx + 1, sorted_rows.shape[1] - 1))
    # For odd n the "upper" neighbour may be the +inf padding; d = 0 there, so skip it outright.
    return np.where(dif == 0.0, lower, lower + dif * (upper - lower))


class OverloadDetector:
    """``detector(util, history, n_valid)`` -> bool mask (H,), True where the host is overloaded.

    ``detector.one(util, values)`` decides for a single host from its valid history values
    (oldest first), with the same arithmetic: placement loops ask about one host at a time.
    """

    # False for a detector that reads only ``util``: callers may then pass an empty history.
    uses_history: ClassVar[bool] = True

    def __call__(self, util: np.ndarray, history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def one(self, util: float, values: list[float]) -> bool:
        raise NotImplementedError


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


@dataclass(frozen=True)
class StaticThreshold(OverloadDetector):
    """THR: overloaded when the utilisation exceeds a fixed threshold (strictly greater)."""

    threshold: float = 0.8
    uses_history: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", _finite("threshold", self.threshold))

    def __call__(self, util: np.ndarray, history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
        util, _, _ = _check(util, history, n_valid)
        return util > self.threshold

    def one(self, util: float, values: list[float]) -> bool:
        return util > self.threshold


class _WithSafety(OverloadDetector):
    """A detector with a safety parameter (every one but THR), checked to be a finite number."""

    safety: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "safety", _finite("safety", self.safety))


class _AdaptiveThreshold(_WithSafety):
    """An upper threshold per host estimated from its history; THR 0.7 where it is too short."""

    def upper_thresholds(self, history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
        """Each host's threshold (H,), NaN where the history is too short to estimate one."""
        _, history, n_valid = _check(np.zeros(len(n_valid)), history, n_valid)
        out = np.full(history.shape[0], np.nan)
        ok = n_valid >= SPREAD_MIN_VALUES
        if ok.any() and history.shape[0] <= 8:
            # A few hosts (the common case inside placement loops): the same order statistics
            # on Python floats, bit for bit, without numpy's per-call overhead.
            width = history.shape[1]
            for h in np.flatnonzero(ok).tolist():
                values = sorted(history[h, width - int(n_valid[h]):].tolist())
                out[h] = 1.0 - self.safety * self._spread_one(values)
            return out
        if ok.any():
            # Only the hosts with enough history are sorted, and the padding never reaches the
            # order statistics used below (they all lie within the first n values).
            out[ok] = 1.0 - self.safety * self._spread(_sorted_valid(history[ok], n_valid[ok]),
                                                       n_valid[ok])
        return out

    def _spread(self, sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _spread_one(self, values: list[float]) -> float:
        raise NotImplementedError

    def __call__(self, util: np.ndarray, history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
        util, history, n_valid = _check(util, history, n_valid)
        threshold = self.upper_thresholds(history, n_valid)
        return np.where(np.isnan(threshold), util > FALLBACK_THRESHOLD, util > threshold)

    def one(self, util: float, values: list[float]) -> bool:
        if len(values) < SPREAD_MIN_VALUES:
            return util > FALLBACK_THRESHOLD
        return util > 1.0 - self.safety * self._spread_one(sorted(values))


@dataclass(frozen=True)
class InterQuartileRange(_AdaptiveThreshold):
    """IQR: overloaded when util > 1 - safety * IQR(history) (Beloglazov & Buyya 2012).

    The quartiles are single order statistics of the n sorted values (0-based)
    x[round(0.75 (n + 1)) - 1] and x[round(0.25 (n + 1)) - 1], with halves rounded up, as CloudSim
    computes them; not an interpolated percentile.
    """

    safety: float = 1.5

    def _spread(self, sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
        q1 = _java_round(0.25 * (n + 1)) - 1
        q3 = _java_round(0.75 * (n + 1)) - 1
        return _at(sorted_rows, q3) - _at(sorted_rows, q1)

    def _spread_one(self, values: list[float]) -> float:
        n = len(values)
        q1 = math.floor(0.25 * (n + 1) + 0.5) - 1
        q3 = math.floor(0.75 * (n + 1) + 0.5) - 1
        return values[q3] - values[q1]


@dataclass(frozen=True)
class MedianAbsoluteDeviation(_AdaptiveThreshold):
    """MAD: overloaded when util > 1 - safety * MAD(history) (Beloglazov & Buyya 2012).

    MAD = median(|median(x) - x_i|) with CloudSim's median (see ``commons_median``).
    """

    safety: float = 2.5

    def _spread(self, sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
        med = commons_median(sorted_rows, n)
        deviations = np.abs(med[:, None] - sorted_rows)  # the +inf padding stays +inf
        deviations.sort(axis=1)
        return commons_median(deviations, n)

    def _spread_one(self, values: list[float]) -> float:
        med = _commons_median_one(values)
        # |med - x| over sorted values is two sorted runs: med - x below the median (reversed)
        # and x - med above it (the same doubles as abs(med - x)); sorted() merges runs fast.
        k = bisect.bisect_right(values, med)
        below = [med - x for x in values[k - 1::-1]] if k else []
        return _commons_median_one(sorted(below + [x - med for x in values[k:]]))


def _commons_median_one(values: list[float]) -> float:
    """``commons_median`` of one sorted list."""
    pos = 50.0 * (len(values) + 1) / 100.0
    lower_pos = math.floor(pos)
    dif = pos - lower_pos
    lower = values[lower_pos - 1]
    if dif == 0.0:
        return lower
    return lower + dif * (values[lower_pos] - lower)


@dataclass(frozen=True)
class LocalRegression(_WithSafety):
    """LR: overloaded when safety * (a + b x) >= 1, the line fitted to the last 10 values at
    x = 1..10 (oldest at 1) and extrapolated one interval, to x = 11 (Beloglazov & Buyya 2012).

    The paper fits a tricube-weighted line (Cleveland's loess). CloudSim 3.0.3 computes the weights
    but applies them only when at least 40 % of them are zero, which tricube weights over 10 points
    never are, so its fit is ordinary least squares; compat mode needs exactly that. The fit
    reproduces the update formulas of Apache Commons Math's SimpleRegression, which CloudSim uses,
    value by value, so that hosts right at the limit go the same way. Fewer than 10 values: THR 0.7.
    """

    safety: float = 1.2

    def predicted(self, history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
        """safety * (a + 11 b) for each host (H,), NaN where fewer than 10 values are valid."""
        _, history, n_valid = _check(np.zeros(len(n_valid)), history, n_valid)
        out = np.full(history.shape[0], np.nan)
        ok = n_valid >= REGRESSION_VALUES
        if not ok.any():
            return out
        y = history[ok, -REGRESSION_VALUES:]
        if len(y) <= 8:
            # A few hosts (the common case inside placement loops): the same recurrence on
            # Python floats, bit for bit, without numpy's per-call overhead.
            out[ok] = [self._predict_one(row) for row in y.tolist()]
            return out
        # One pass of the running (Welford-style) sums: the mean of x and y, the sum of squared
        # x deviations and the co-deviation of x and y; the x terms are the same for every host.
        x_mean, y_mean = 1.0, y[:, 0].copy()
        sum_x, sum_y = 1.0, y[:, 0].copy()
        sxx, sxy = 0.0, np.zeros(len(y))
        for j in range(1, REGRESSION_VALUES):
            x = j + 1.0
            fact1 = 1.0 + j
            fact2 = j / (1.0 + j)
            dx = x - x_mean
            dy = y[:, j] - y_mean
            sxx += dx * dx * fact2
            sxy += dx * dy * fact2
            x_mean += dx / fact1
            y_mean += dy / fact1
            sum_x += x
            sum_y += y[:, j]
        slope = sxy / sxx
        intercept = (sum_y - slope * sum_x) / REGRESSION_VALUES
        at = float(REGRESSION_VALUES + REGRESSION_STEPS_AHEAD)
        out[ok] = (intercept + slope * at) * self.safety
        return out

    def _predict_one(self, y: list[float]) -> float:
        """``predicted`` for one host, the same operations in the same order."""
        x_mean, y_mean = 1.0, y[0]
        sum_x, sum_y = 1.0, y[0]
        sxx, sxy = 0.0, 0.0
        for j in range(1, REGRESSION_VALUES):
            x = j + 1.0
            fact1 = 1.0 + j
            fact2 = j / (1.0 + j)
            dx = x - x_mean
            dy = y[j] - y_mean
            sxx += dx * dx * fact2
            sxy += dx * dy * fact2
            x_mean += dx / fact1
            y_mean += dy / fact1
            sum_x += x
            sum_y += y[j]
        slope = sxy / sxx
        intercept = (sum_y - slope * sum_x) / REGRESSION_VALUES
        return (intercept + slope * float(REGRESSION_VALUES + REGRESSION_STEPS_AHEAD)) * self.safety

    def one(self, util: float, values: list[float]) -> bool:
        if len(values) < REGRESSION_VALUES:
            return util > FALLBACK_THRESHOLD
        return self._predict_one(values[-REGRESSION_VALUES:]) >= 1.0

    def linear_weights(self) -> np.ndarray:
        """w (10,) with ``predicted`` = w @ (last 10 values, oldest first), up to rounding.

        The least-squares line at x = 1..10 evaluated at 11 is linear in the values:
        a + 11 b = sum y_j (1/10 + (11 - 5.5)(x_j - 5.5) / 82.5). Callers use it to screen many
        hosts at once (it is additive over the VMs of a host) and decide with ``predicted`` or
        ``one`` only where the screen lands within rounding distance of the limit.
        """
        x = np.arange(1.0, REGRESSION_VALUES + 1)
        centred = x - x.mean()
        at = REGRESSION_VALUES + REGRESSION_STEPS_AHEAD
        return self.safety * (1.0 / REGRESSION_VALUES + (at - x.mean()) * centred
                              / (centred @ centred))

    def __call__(self, util: np.ndarray, history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
        util, history, n_valid = _check(util, history, n_valid)
        predicted = self.predicted(history, n_valid)
        return np.where(np.isnan(predicted), util > FALLBACK_THRESHOLD, predicted >= 1.0)


@dataclass(frozen=True)
class LocalRegressionRobust(LocalRegression):
    """LRR: identical to LR, on purpose.

    The paper's robust variant refits with bisquare weights of the residuals. CloudSim 3.0.3 builds
    those weights too, but they go through the same rule as LR's (applied only when 40 % of them are
    zero, and these are never zero), so its "robust" fit is the same ordinary least squares and LRR
    decides exactly as LR. It keeps its own name so that scenarios and results can name the policy
    the literature reports.
    """


# name -> (one-line description, factory(**params) -> detector(util, history, n_valid) -> mask)
OVERLOAD_DETECTORS: dict[str, tuple[str, Callable[..., OverloadDetector]]] = {
    "thr": ("static threshold: util > threshold (default 0.8)", StaticThreshold),
    "iqr": ("interquartile range: util > 1 - safety * IQR of the last <= 30 values "
            "(safety 1.5; under 12 values: util > 0.7)", InterQuartileRange),
    "mad": ("median absolute deviation: util > 1 - safety * MAD of the last <= 30 values "
            "(safety 2.5; under 12 values: util > 0.7)", MedianAbsoluteDeviation),
    "lr": ("local regression: safety * (line through the last 10 values, one interval ahead) >= 1 "
           "(safety 1.2; under 10 values: util > 0.7)", LocalRegression),
    "lrr": ("robust local regression; as CloudSim 3.0.3 computes it, the same decisions as lr "
            "(safety 1.2)", LocalRegressionRobust),
}


def make_overload_detector(name: str, **params: float) -> OverloadDetector:
    """The detector registered as ``name`` with its parameters (``threshold`` for thr, ``safety``
    for the others). Unknown names and parameters raise ValueError listing the known ones."""
    if name not in OVERLOAD_DETECTORS:
        raise ValueError(f"unknown overload detector {name!r}; known: "
                         f"{', '.join(sorted(OVERLOAD_DETECTORS))}")
    factory = OVERLOAD_DETECTORS[name][1]
    known = sorted(inspect.signature(factory).parameters)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"overload detector {name!r} has no parameter {', '.join(unknown)}; "
                         f"it takes: {', '.join(known)}")
    return factory(**params)
