"""The hybrid engine: simpy drives discrete events; between two events, state is integrated at once.

Discrete things (arrivals, departures, trace sample boundaries, policy ticks, host power changes,
job completions) are simpy events. Nothing discrete changes between two of them, so whatever is
continuous (CPU sharing, energy, work done) is computed once per stretch, for every host and VM at
once, by the ``integrate(t0, t1)`` callback the model supplies.

Every handler the engine dispatches runs as ``split(); handler()``: the open interval is closed
(integrated with the state as it was) before the handler changes anything. After the handlers of an
instant have run, ``settle()`` runs once so the model can recompute rates and schedule what follows
from them (the next job completion, say).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import simpy

__all__ = ["Engine"]

Handler = Callable[[], None]


class Engine:
    """A simpy environment plus the interval bookkeeping of the hybrid loop."""

    def __init__(self, integrate: Callable[[float, float], None], settle: Handler) -> None:
        self.env = simpy.Environment()
        self._integrate = integrate
        self._settle = settle
        self._t0 = 0.0
        self._settle_pending = False
        self.intervals = 0  # integrated stretches, for diagnostics and benchmarks
        self.events = 0  # dispatched handlers
        self.pending = 0  # one-shot handlers scheduled and not yet run (periodic ticks excluded)

    @property
    def now(self) -> float:
        return float(self.env.now)

    def split(self) -> None:
        """Integrate the open interval up to now and open the next one."""
        now = self.env.now
        if now > self._t0:
            self._integrate(self._t0, now)
            self.intervals += 1
            self._t0 = now

    def _dispatch(self, handler: Handler, periodic: bool) -> Callable[[simpy.Event], None]:
        def run(_event: simpy.Event) -> None:
            if not periodic:
                self.pending -= 1
            self.split()
            self.events += 1
            handler()
            self.request_settle()

        return run

    def request_settle(self) -> None:
        """Ask for ``settle`` to run once after the handlers scheduled for this instant."""
        if not self._settle_pending:
            self._settle_pending = True
            self.env.timeout(0).callbacks.append(self._run_settle)

    def _run_settle(self, _event: simpy.Event) -> None:
        self._settle_pending = False
        self._settle()

    def at(self, time: float, handler: Handler, *, periodic: bool = False) -> None:
        """Run ``handler`` at absolute simulated ``time`` (now if ``time`` is in the past)."""
        if math.isinf(time):
            return
        if not periodic:
            self.pending += 1
        delay = max(0.0, time - self.env.now)
        self.env.timeout(delay).callbacks.append(self._dispatch(handler, periodic))

    def every(self, period: float, handler: Callable[[int], None], start: float = 0.0,
              count: int | None = None) -> None:
        """Run ``handler(k)`` at ``start + k * period`` for k = 0, 1, ... (``count`` times)."""
        if period <= 0:
            raise ValueError("period must be positive")

        def tick(k: int) -> None:
            handler(k)
            if count is None or k + 1 < count:
                # Multiply rather than accumulate so that tick k lands exactly on start + k*period.
                self.at(start + (k + 1) * period, lambda: tick(k + 1), periodic=True)

        self.at(start, lambda: tick(0), periodic=True)

    def run(self, until: float) -> None:
        """Advance to ``until`` (or until ``stop`` is called) and integrate the last stretch."""
        self._stop = self.env.event()
        self.env.run(until=self.env.any_of([self._stop, self.env.timeout(max(0.0, until - self.now))]))
        self.split()

    def stop(self) -> None:
        """End the run at the current instant (after the current handler)."""
        if not self._stop.triggered:
            self._stop.succeed()
