"""The quantum-level CPU model: vCPUs on physical CPUs, timeslice by timeslice, under a Xen
credit or Linux CFS policy (see :mod:`.host`).

The modules of the slice loop are plain Python, and installing vsim also compiles them with
Cython (their ``.pxd`` files give the C types), which makes the loop several times faster and
changes no result. The compiled modules are used when present and built from the source that is
here (see :mod:`vsim.compiled`); ``VSIM_PURE_PYTHON=1`` in the environment forces the Python
ones (for a debugger or a profiler). ``COMPILED`` says which are running.
"""

from vsim.compiled import use_compiled

COMPILED = use_compiled(__name__, __file__, ("parts", "host", "common", "credit", "fair"),
                        "time-slicing model")

from vsim.model.timeslice.credit import Credit  # noqa: E402
from vsim.model.timeslice.fair import Fair  # noqa: E402
from vsim.model.timeslice.host import HostSlicer  # noqa: E402
from vsim.model.timeslice.parts import (  # noqa: E402
    COUNTERS,
    Policy,
    Profile,
    SliceResult,
    VcpuLoad,
    VmLoad,
)

__all__ = ["COMPILED", "COUNTERS", "Credit", "Fair", "HostSlicer", "Policy", "Profile",
           "SliceResult", "VcpuLoad", "VmLoad"]
