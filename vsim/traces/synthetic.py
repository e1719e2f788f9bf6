"""Synthetic CPU demand: per-VM means, a daily cycle, AR(1) noise, bursts, arrivals and lifetimes.

Everything is generated as whole arrays over all VMs and samples, never one VM at a time, so tens
of thousands of VMs over a day take a fraction of a second.

Randomness: the caller's generator gives one 128-bit seed, and from it every feature gets its own
child stream (``numpy.random.SeedSequence`` with spawn key ``(i,)``), in the order of ``_STREAMS``.
Switching one feature on or off therefore never changes what another draws, and a new feature is
added by appending a name to ``_STREAMS``, which leaves every existing output unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vsim.traces.table import DemandTable

__all__ = ["LIFETIME_DISTRIBUTIONS", "SyntheticSpec", "generate"]

LIFETIME_DISTRIBUTIONS = ("exponential", "lognormal", "fixed")
_DAY_S = 86400.0
# One child stream per feature, by position. Append only: reordering changes every output.
_STREAMS = ("mean_spread", "noise", "bursts", "arrivals", "lifetimes")


@dataclass(frozen=True)
class SyntheticSpec:
    """How a synthetic VM's CPU demand (fraction of its capacity, clipped to [0, 1]) behaves."""

    mean: float = 0.3  # mean CPU utilisation (fraction of VM capacity)
    mean_spread: float = 0.0  # per-VM mean = mean * (1 + spread * U(-1, 1)), heterogeneity
    diurnal_amplitude: float = 0.0  # level(t) = vm_mean * (1 + A cos(2π (t - peak_time_s) / 1 day))
    peak_time_s: float = 14 * 3600.0
    noise_sd: float = 0.0  # stationary sd of the additive AR(1) noise (fraction units)
    noise_corr: float = 0.0  # AR(1) coefficient between consecutive samples, in [0, 1)
    burst_rate_per_s: float = 0.0  # Poisson rate of bursts per VM
    burst_height: float = 0.0  # utilisation added while a burst lasts
    burst_duration_s: float = 0.0
    arrival_rate_per_s: float = 0.0  # 0: every VM present at t=0; else Poisson arrivals
    lifetime_mean_s: float = math.inf  # inf: VMs stay to the end
    lifetime_distribution: str = "exponential"  # "exponential" | "lognormal" | "fixed"
    lifetime_sigma: float = 1.0  # lognormal shape (sigma of the log)

    def __post_init__(self) -> None:
        # `not lo <= x <= hi` is also true for NaN, so NaN is rejected everywhere below.
        def require(ok: bool, field: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"SyntheticSpec.{field} {rule}, got {getattr(self, field)!r}")

        finite = math.isfinite
        require(0.0 <= self.mean <= 1.0, "mean", "must be in [0, 1]")
        # Above 1 a VM's mean could go negative; above 1 the daily level could too.
        require(0.0 <= self.mean_spread <= 1.0, "mean_spread", "must be in [0, 1]")
        require(0.0 <= self.diurnal_amplitude <= 1.0, "diurnal_amplitude", "must be in [0, 1]")
        require(finite(self.peak_time_s), "peak_time_s", "must be a finite number of seconds")
        require(0.0 <= self.noise_sd < math.inf, "noise_sd", "must be finite and >= 0")
        require(0.0 <= self.noise_corr < 1.0, "noise_corr", "must be in [0, 1)")
        require(0.0 <= self.burst_rate_per_s < math.inf, "burst_rate_per_s", "must be finite, >= 0")
        require(0.0 <= self.burst_height <= 1.0, "burst_height", "must be in [0, 1]")
        require(0.0 <= self.burst_duration_s < math.inf, "burst_duration_s", "must be finite, >= 0")
        require(
            0.0 <= self.arrival_rate_per_s < math.inf, "arrival_rate_per_s", "must be finite, >= 0"
        )
        require(self.lifetime_mean_s > 0.0, "lifetime_mean_s", "must be > 0 (inf: no departures)")
        require(
            self.lifetime_distribution in LIFETIME_DISTRIBUTIONS,
            "lifetime_distribution",
            f"must be one of {', '.join(LIFETIME_DISTRIBUTIONS)}",
        )
        require(0.0 <= self.lifetime_sigma < math.inf, "lifetime_sigma", "must be finite, >= 0")


def _streams(rng: np.random.Generator) -> dict[str, np.random.Generator]:
    entropy = rng.integers(0, 2**32, size=4, dtype=np.uint64)  # the only draw from `rng`
    return {
        name: np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))
        for i, name in enumerate(_STREAMS)
    }


def _ar1(spec: SyntheticSpec, n: int, t: int, g: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise, (t, n): x_0 = sd ε_0, x_k = φ x_{k-1} + sd √(1-φ²) ε_k."""
    x = g.standard_normal((t, n), dtype=np.float64)
    phi = spec.noise_corr
    if phi == 0.0 or t == 0:
        x *= np.float64(spec.noise_sd)
        return x
    x *= np.float64(spec.noise_sd * math.sqrt(1.0 - phi * phi))
    x[0] /= np.float64(math.sqrt(1.0 - phi * phi))  # start in the stationary distribution
    # The recursion runs over time with whole rows of n VMs at once: t vector steps, no per-VM loop.
    carry = np.empty(n, dtype=np.float64)
    for k in range(1, t):
        np.multiply(x[k - 1], np.float64(phi), out=carry)
        x[k] += carry
    return x


def _bursts(
    spec: SyntheticSpec, n: int, t: int, step_s: float, g: np.random.Generator
) -> np.ndarray:
    """Utilisation added by Poisson bursts, (t, n), averaged exactly over each sample interval.

    Bursts that start up to one duration before time 0 are included, so the first samples see as
    many bursts as later ones. Each burst is a +1 edge at its start and a -1 edge at its end; an
    edge at time x in sample k covers the fraction ((k+1)·step - x)/step of sample k and all of
    every later sample. Overlapping bursts add up (clipping happens at the end).
    """
    d = spec.burst_duration_s
    counts = g.poisson(spec.burst_rate_per_s * (t * step_s + d), size=n)
    vm = np.repeat(np.arange(n), counts)
    starts = g.uniform(-d, t * step_s, size=vm.size)
    edges = np.concatenate([starts, starts + d])
    signs = np.concatenate([np.ones(vm.size), -np.ones(vm.size)])
    vm = np.concatenate([vm, vm])
    first_full = np.maximum(np.ceil(edges / step_s), 0).astype(np.int64)  # first sample after x
    keep = first_full <= t
    vm, edges, signs, first_full = vm[keep], edges[keep], signs[keep], first_full[keep]
    inside = signs * (first_full * step_s - edges) / step_s
    full = np.zeros((t + 1, n), dtype=np.float64)
    partial = np.zeros((t + 1, n), dtype=np.float64)
    at = first_full * n + vm  # flat index: 1-D np.add.at is several times faster than 2-D
    np.add.at(full.reshape(-1), at, signs.astype(np.float64))
    np.add.at(partial.reshape(-1), at, inside.astype(np.float64))
    # Sample k: the edges wholly before it (running count) plus the fractions of those inside it.
    np.cumsum(full, axis=0, out=full)
    covered = full[:t]
    covered += partial[1:]
    covered *= np.float64(spec.burst_height)
    return covered


def _lifetimes(spec: SyntheticSpec, n: int, g: np.random.Generator) -> np.ndarray:
    m = spec.lifetime_mean_s
    if math.isinf(m):
        return np.full(n, np.inf)
    if spec.lifetime_distribution == "fixed":
        return np.full(n, m)
    if spec.lifetime_distribution == "lognormal":
        s = spec.lifetime_sigma
        return g.lognormal(math.log(m) - s * s / 2.0, s, size=n)  # E = exp(mu + s²/2) = m
    return g.exponential(m, size=n)


def generate(
    spec: SyntheticSpec,
    n: int,
    duration_s: float,
    step_s: float,
    rng: np.random.Generator,
    name: str = "synthetic",
) -> DemandTable:
    """``n`` synthetic VMs over ``duration_s`` at ``step_s`` samples, drawn only from ``rng``.

    Sample ``k`` is the demand over ``[k*step_s, (k+1)*step_s)``; the daily cycle is evaluated at
    its start ``k*step_s``, so with a step that divides the day the peak falls exactly on the
    sample at ``peak_time_s``. VMs arrive as a Poisson process (first arrival one exponential gap
    after 0; arrivals may fall after the end) and stay for their lifetime; samples entirely outside
    a VM's stay are 0, so column sums are the demand actually present.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not (step_s > 0 and math.isfinite(step_s)):
        raise ValueError(f"step_s must be a positive number of seconds, got {step_s!r}")
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    # Round first so that e.g. 1 s / 0.1 s gives 10 samples, not 11 from float error.
    t = math.ceil(round(duration_s / step_s, 9))
    streams = _streams(rng)
    times = np.arange(t) * step_s

    # Arrays are (time, VM) while generating, so that every step of the AR(1) recursion and the
    # running sums over time work on contiguous rows; the table gets the (VM, time) transpose.
    vm_mean = np.full(n, spec.mean)
    if spec.mean_spread > 0:
        vm_mean *= 1.0 + spec.mean_spread * streams["mean_spread"].uniform(-1.0, 1.0, size=n)
    daily = 1.0 + spec.diurnal_amplitude * np.cos(2 * np.pi * (times - spec.peak_time_s) / _DAY_S)
    cpu = daily.astype(np.float64)[:, None] * vm_mean.astype(np.float64)[None, :]

    if spec.noise_sd > 0:
        cpu += _ar1(spec, n, t, streams["noise"])
    if spec.burst_rate_per_s > 0 and spec.burst_duration_s > 0 and spec.burst_height > 0:
        cpu += _bursts(spec, n, t, step_s, streams["bursts"])

    if spec.arrival_rate_per_s > 0:
        gaps = streams["arrivals"].exponential(1.0 / spec.arrival_rate_per_s, size=n)
        start = np.cumsum(gaps)
    else:
        start = np.zeros(n)
    lifetime = _lifetimes(spec, n, streams["lifetimes"])
    if spec.arrival_rate_per_s > 0 or not math.isinf(spec.lifetime_mean_s):
        end = start + lifetime
        cpu *= (times[:, None] + step_s > start[None, :]) & (times[:, None] < end[None, :])

    np.clip(cpu, 0.0, 1.0, out=cpu)
    return DemandTable(
        step_s=float(step_s),
        cpu=cpu.T,
        names=tuple(f"{name}-{i}" for i in range(n)),
        source=f"synthetic:{name}",
        start_s=start,
        lifetime_s=lifetime,
    )
