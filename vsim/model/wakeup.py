"""The one pending wake-up of a model component that knows when it next has something to do."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vsim.model.simulation import Simulation

__all__ = ["Wakeup"]


class Wakeup:
    """The one pending wake-up of a model that says when it next has something to do
    (``next_at``): scheduling again voids the wake-up before, which the model's state no longer
    warrants."""

    def __init__(self, sim: Simulation, next_at: Callable[[], float],
                 fire: Callable[[], None]) -> None:
        self.sim, self.next_at, self.fire = sim, next_at, fire
        self.token = 0

    def schedule(self) -> None:
        self.token += 1
        when = self.next_at()
        if math.isfinite(when):
            self.sim.engine.at(max(when, self.sim.engine.now), partial(self._wake, self.token))

    def _wake(self, token: int) -> None:
        if token == self.token:
            self.fire()
