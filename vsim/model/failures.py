"""When hosts fail and come back: failure processes sampled into a schedule before the run.

A failure process covers a failure domain (some hosts, a rack, a power domain, a whole site). Its
hosts either fail one by one, each an alternating renewal process of time to failure and time to
repair, or all together (a correlated failure: the rack's switch, the site's power). Failures come
from a distribution (exponential, Weibull or lognormal times to failure; fixed, exponential,
lognormal or Weibull repairs), at fixed instants, or from a trace of observed outages.

The whole schedule is drawn up front from the run's seeded generator, so the same seed gives the
same failures however the rest of the run unfolds, and two designs compared under the same seed
see the same failures (common random numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DISTRIBUTIONS", "FailureEvent", "FailureProcess", "Lifetimes", "failure_schedule"]

DISTRIBUTIONS = ("exponential", "weibull", "lognormal", "fixed")


@dataclass(frozen=True)
class Lifetimes:
    """A distribution of durations by its mean: ``shape`` is Weibull's k (k < 1: failures cluster
    early, infant mortality; k > 1: wear-out) or lognormal's sigma."""

    distribution: str
    mean_s: float
    shape: float = 1.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {self.distribution!r}; "
                             f"known: {', '.join(DISTRIBUTIONS)}")
        if not self.mean_s > 0:
            raise ValueError("a mean duration must be positive")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        m, k = self.mean_s, self.shape
        if self.distribution == "fixed" or math.isinf(m):
            return np.full(n, m)
        if self.distribution == "exponential":
            return rng.exponential(m, n)
        if self.distribution == "weibull":
            # Scale from the mean: E[X] = scale * Gamma(1 + 1/k).
            return m / math.gamma(1.0 + 1.0 / k) * rng.weibull(k, n)
        # Lognormal with mean m: mu = ln m - sigma^2 / 2.
        return rng.lognormal(math.log(m) - k * k / 2.0, k, n)


@dataclass(frozen=True)
class FailureEvent:
    """``hosts`` fail at ``time_s`` and are repaired ``repair_s`` later (inf: never)."""

    time_s: float
    hosts: np.ndarray
    repair_s: float
    process: str
    kind: str = "host"  # host, domain (several hosts at once) or site


@dataclass(frozen=True)
class FailureProcess:
    """Failures of one domain: ``time_to_failure`` (sampled, renewed after each repair), fixed
    instants ``at``, one instant drawn uniformly ``between`` two times (a loss that will happen,
    at an unknown moment), or a trace's ``outages`` ((start, duration, hosts) each)."""

    name: str
    hosts: np.ndarray
    together: bool = False
    time_to_failure: Lifetimes | None = None
    at: tuple[float, ...] = ()
    repair: Lifetimes | None = None  # None: never repaired
    kind: str = "host"
    outages: tuple[tuple[float, float, np.ndarray], ...] = field(default=())
    between: tuple[float, float] | None = None  # one failure at a uniformly random instant


def _repairs(p: FailureProcess, rng: np.random.Generator, n: int) -> np.ndarray:
    return np.full(n, math.inf) if p.repair is None else p.repair.sample(rng, n)


def _renewals(p: FailureProcess, rng: np.random.Generator, units: int,
              duration_s: float) -> list[tuple[float, int, float]]:
    """(time, unit, repair) of ``units`` independent up/down alternating processes."""
    assert p.time_to_failure is not None
    out: list[tuple[float, int, float]] = []
    t = np.zeros(units)
    alive = np.ones(units, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += p.time_to_failure.sample(rng, idx.size)
        fails = idx[t[idx] < duration_s]
        repair = _repairs(p, rng, idx.size)[t[idx] < duration_s]
        out += list(zip(t[fails].tolist(), fails.tolist(), repair.tolist(), strict=True))
        t[fails] += repair
        alive[:] = False
        alive[fails[np.isfinite(t[fails]) & (t[fails] < duration_s)]] = True
    return out


def failure_schedule(processes: list[FailureProcess], duration_s: float,
                     rng: np.random.Generator) -> list[FailureEvent]:
    """Every failure of the run, in time order (ties: in the order of the processes)."""
    events: list[tuple[float, int, FailureEvent]] = []
    for order, p in enumerate(processes):
        kind = p.kind if p.together or p.hosts.size == 1 else "host"
        at = p.at
        if p.between is not None:
            at = (*at, float(rng.uniform(*p.between)))
        for t in at:
            if t < duration_s:
                repair = float(_repairs(p, rng, 1)[0])
                if p.together:
                    events.append((t, order, FailureEvent(t, p.hosts, repair, p.name, p.kind)))
                else:
                    for host, r in zip(p.hosts.tolist(), _repairs(p, rng, p.hosts.size).tolist(),
                                       strict=True):
                        events.append((t, order, FailureEvent(t, np.array([host]), r, p.name)))
        for start, length, hosts in p.outages:
            if start < duration_s:
                events.append((start, order, FailureEvent(start, hosts, length, p.name,
                                                          "host" if hosts.size == 1 else "domain")))
        if p.time_to_failure is not None:
            units = 1 if p.together else p.hosts.size
            for t, unit, repair in _renewals(p, rng, units, duration_s):
                hosts = p.hosts if p.together else p.hosts[unit:unit + 1]
                events.append((t, order, FailureEvent(t, hosts, repair, p.name, kind)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in events]
