"""Compiled kernels of the migration fabric: pre-copy rounds, their decisions and max-min fair rates.

Each is a plain Python module with the arithmetic of its numpy counterpart
(:meth:`vsim.model.precopy.PrecopyRounds._roll`, :func:`vsim.model.network.max_min_rates`) as a
scalar loop, which installing vsim compiles with Cython (see :mod:`vsim.compiled`). Compiled, a
kernel gives the numpy version's results to the last bit in a fraction of its time: one pass over
the migrations instead of a dozen array operations per round. The fabric uses them when
``COMPILED``, and the numpy versions otherwise (interpreted, the scalar loops are slower still).
"""

from vsim.compiled import use_compiled

COMPILED = use_compiled(__name__, __file__, ("rounds", "maxmin"), "migration kernels")

from vsim.model.kernels.maxmin import max_min, max_min_rows  # noqa: E402
from vsim.model.kernels.rounds import FabricState, Rounds, decide, roll  # noqa: E402

__all__ = ["COMPILED", "FabricState", "Rounds", "decide", "max_min", "max_min_rows", "roll"]
