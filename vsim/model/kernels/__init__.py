"""Compiled kernels of the migration fabric: its per-instant work and max-min fair rates.

Each is a plain Python module with the arithmetic of its numpy counterpart as scalar loops, which
installing vsim compiles with Cython (see :mod:`vsim.compiled`):

- :mod:`~vsim.model.kernels.rounds`: pre-copy rounds rolled forward
  (:meth:`vsim.model.precopy.PrecopyRounds._roll`), the decisions at round ends, and
  :class:`FabricState`, which does what :class:`vsim.model.migration.MigrationFabric` does per
  instant (catching migrations up to now, predicting their next visible transitions, keeping the
  next one per block of VMs, throttle steps) over the fabric's own arrays;
- :mod:`~vsim.model.kernels.bottleneck`: :class:`BottleneckState`, the same while one link holds
  every flow, with the copies far from a round end kept on that link's byte clock instead of
  being caught up at every change of rate;
- :mod:`~vsim.model.kernels.maxmin`: :func:`vsim.model.network.max_min_rates`.

Compiled, they give the numpy versions' results to the last bit in a fraction of their time: one
pass over the migrations an instant touches instead of a dozen array operations with their
temporaries. The exception is the byte clock of :mod:`~vsim.model.kernels.bottleneck`, kept only
with many flows (``MigrationFabric.share_from``): a copy's bytes are then a difference of two
clock readings rather than a sum of rate x time pieces, and the results agree to rounding. The
fabric uses the kernels when ``COMPILED``, and the numpy versions otherwise (interpreted, the
scalar loops are slower still).
"""

from vsim.compiled import use_compiled

COMPILED = use_compiled(__name__, __file__, ("rounds", "bottleneck", "maxmin"), "migration kernels")

from vsim.model.kernels.bottleneck import BottleneckState  # noqa: E402
from vsim.model.kernels.maxmin import max_min, max_min_rows  # noqa: E402
from vsim.model.kernels.rounds import FabricState, Rounds  # noqa: E402

__all__ = ["COMPILED", "BottleneckState", "FabricState", "Rounds", "max_min", "max_min_rows"]
