"""Which VM leaves an overloaded host: the VM-selection policies of Beloglazov & Buyya, CCPE 2012
(§5), as CloudSim 3.0.3 implements them (shared/reference/cloudsim-planetlab.md).

A policy is built once with its random generator and then called for one host at a time:

    choose(ram_bytes, util, history, n_valid) -> index of the VM to migrate (0 .. k-1)

over that host's k candidate VMs (those not already migrating), **in the host's VM-list order**
(creation order, arrivals appended), which decides ties: the first VM wins. The arrays are

- ``ram_bytes`` (k,): each VM's memory, which is what a pre-copy migration has to move;
- ``util`` (k,): each VM's current CPU utilisation as a fraction of its own capacity (requested
  MIPS / the VM's MIPS), as CloudSim's MU compares them. Any per-VM scale would do for MMT, RS and
  MC, but MU compares VMs of different sizes and so depends on it;
- ``history`` (k, W) and ``n_valid`` (k,): each VM's past utilisation, oldest first and
  right-aligned, the layout of vsim.policies.overload: VM i's valid values are
  ``history[i, W - n_valid[i]:]``, the newest in the last column.

The consolidation loop calls a policy again, with the chosen VM removed from the candidates, until
the host is no longer overloaded. Policies never modify their inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "MC_TIE_TOLERANCE",
    "VM_SELECTION_POLICIES",
    "MaximumCorrelation",
    "MinimumMigrationTime",
    "MinimumUtilisation",
    "RandomSelection",
    "VmSelection",
    "correlation_r2",
    "make_vm_selection",
]

# R² values closer than this count as equal in MC, and the first VM in list order wins. An exact
# linear relation always gives R² = 1 to every VM taking part in it (if y = a + b x + c z, then also
# x = (y - a - c z) / b), and which of those ones comes out largest would otherwise be decided by
# floating-point rounding, which differs between BLAS libraries.
MC_TIE_TOLERANCE = 1e-9


def _candidates(ram_bytes: np.ndarray) -> np.ndarray:
    ram_bytes = np.asarray(ram_bytes, dtype=float)
    if ram_bytes.ndim != 1 or ram_bytes.size == 0:
        raise ValueError("VM selection needs at least one candidate VM (ram_bytes of shape (k,))")
    return ram_bytes


class VmSelection:
    """``choose(ram_bytes, util, history, n_valid)`` -> index of the VM to migrate off the host."""

    def __call__(self, ram_bytes: np.ndarray, util: np.ndarray, history: np.ndarray,
                 n_valid: np.ndarray) -> int:
        raise NotImplementedError


class MinimumMigrationTime(VmSelection):
    """MMT: the VM with the least RAM, the one that migrates fastest; ties go to the first."""

    def __call__(self, ram_bytes: np.ndarray, util: np.ndarray, history: np.ndarray,
                 n_valid: np.ndarray) -> int:
        return int(np.argmin(_candidates(ram_bytes)))  # argmin returns the first minimum


class MinimumUtilisation(VmSelection):
    """MU: the VM with the least current CPU utilisation (of its own capacity); ties go to the
    first."""

    def __call__(self, ram_bytes: np.ndarray, util: np.ndarray, history: np.ndarray,
                 n_valid: np.ndarray) -> int:
        k = len(_candidates(ram_bytes))
        util = np.asarray(util, dtype=float)
        if util.shape != (k,):
            raise ValueError(f"util must have one value per candidate VM ({k}), got {util.shape}")
        return int(np.argmin(util))


class RandomSelection(VmSelection):
    """RS: a uniformly random candidate, drawn from the policy's seeded generator (CloudSim draws
    from an unseeded one, so its RS runs cannot be repeated)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, ram_bytes: np.ndarray, util: np.ndarray, history: np.ndarray,
                 n_valid: np.ndarray) -> int:
        return int(self.rng.integers(len(_candidates(ram_bytes))))


def correlation_r2(history: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    """R² of each VM's utilisation regressed on all the other VMs' (k,), NaN where undefined.

    The regression uses the last m = min(n_valid) values, which every VM has, and an intercept:
    VM i's values y are fitted as b0 + sum over j != i of b_j x_j by least squares, and
    R² = 1 - SSE / SST with SST = sum (y - mean y)², the squared multiple correlation coefficient
    (Beloglazov & Buyya 2012, §5). numpy.linalg.lstsq solves each fit through an SVD, so
    collinear or constant regressors give the minimum-norm solution, never a failed inversion, and
    R² is still that of the projection onto what the other VMs span. R² is NaN when y itself is
    constant over the window (nothing to explain), and every R² is NaN when there are not more
    values than parameters (m <= k: no residual degrees of freedom, a perfect fit for any data).
    """
    history = np.asarray(history, dtype=float)
    n_valid = np.asarray(n_valid)
    if history.ndim != 2 or n_valid.shape != (history.shape[0],):
        raise ValueError(f"history must be (k, W) and n_valid (k,); got {history.shape} and "
                         f"{n_valid.shape}")
    k = history.shape[0]
    m = int(n_valid.min()) if k else 0
    r2 = np.full(k, np.nan)
    if k < 2 or m <= k:
        return r2
    window = history[:, history.shape[1] - m:]  # (k, m): VM i's last m values, oldest first
    design = np.empty((m, k))
    design[:, 0] = 1.0
    for i in range(k):
        y = window[i]
        if np.ptp(y) == 0.0:
            continue
        design[:, 1:] = np.delete(window, i, axis=0).T
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((y - design @ coef) ** 2))
        sst = float(np.sum((y - y.mean()) ** 2))
        # With the intercept in the model SSE <= SST; clip the rounding that could break it.
        r2[i] = min(1.0, max(0.0, 1.0 - sse / sst))
    return r2


class MaximumCorrelation(VmSelection):
    """MC: the VM whose utilisation is best explained by the other VMs' (largest R², see
    ``correlation_r2``), on the idea that correlated VMs peak together and overload their host
    (Beloglazov & Buyya 2012, §5). Ties within MC_TIE_TOLERANCE go to the first VM.

    A single candidate is chosen outright. When R² cannot be computed for any VM (too short a common
    history, m <= k, or every history constant) the choice is left to the fallback policy, MMT, as
    in CloudSim's examples. CloudSim falls back in the first case too (its regression library
    refuses zero degrees of freedom); with every history constant it keeps the first VM instead,
    depending on how that library reports a zero total sum of squares. (CloudSim also assumes
    that all candidates have histories of the same length, which holds in its PlanetLab runs where
    every VM records a value at every interval; it fails outright otherwise. Here the last m values
    common to all are used.)
    """

    def __init__(self, fallback: VmSelection | None = None) -> None:
        self.fallback = fallback if fallback is not None else MinimumMigrationTime()

    def __call__(self, ram_bytes: np.ndarray, util: np.ndarray, history: np.ndarray,
                 n_valid: np.ndarray) -> int:
        k = len(_candidates(ram_bytes))
        if k == 1:
            return 0
        history = np.asarray(history, dtype=float)
        if history.shape[0] != k:
            raise ValueError(f"history must have one row per candidate VM ({k}), got "
                             f"{history.shape}")
        r2 = correlation_r2(history, n_valid)
        finite = np.isfinite(r2)
        if not finite.any():
            return self.fallback(ram_bytes, util, history, n_valid)
        best = np.max(r2[finite])
        return int(np.flatnonzero(finite & (r2 >= best - MC_TIE_TOLERANCE))[0])


# name -> (one-line description, factory(rng) -> choose(ram_bytes, util, history, n_valid) -> int)
VM_SELECTION_POLICIES: dict[str, tuple[str, Callable[[np.random.Generator], VmSelection]]] = {
    "mmt": ("minimum migration time: the VM with the least RAM (first on ties)",
            lambda rng: MinimumMigrationTime()),
    "mu": ("minimum utilisation: the VM using the least of its CPU now (first on ties)",
           lambda rng: MinimumUtilisation()),
    "rs": ("random selection: a uniformly random VM (seeded)", RandomSelection),
    "mc": ("maximum correlation: the VM whose utilisation history the others' explain best "
           "(largest R²; MMT when there is too little history)",
           lambda rng: MaximumCorrelation()),
}


def make_vm_selection(name: str, rng: np.random.Generator) -> VmSelection:
    """The VM-selection policy registered as ``name`` (ValueError listing the known names)."""
    if name not in VM_SELECTION_POLICIES:
        raise ValueError(f"unknown VM selection policy {name!r}; known: "
                         f"{', '.join(sorted(VM_SELECTION_POLICIES))}")
    return VM_SELECTION_POLICIES[name][1](rng)
