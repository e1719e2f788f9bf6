"""The quantum-level CPU model: vCPUs on physical CPUs, timeslice by timeslice, under a Xen
credit or Linux CFS policy (see :mod:`.host`)."""

from vsim.model.timeslice.credit import Credit
from vsim.model.timeslice.fair import Fair
from vsim.model.timeslice.host import (
    COUNTERS,
    HostSlicer,
    Policy,
    Profile,
    SliceResult,
    VcpuLoad,
    VmLoad,
)

__all__ = ["COUNTERS", "Credit", "Fair", "HostSlicer", "Policy", "Profile", "SliceResult",
           "VcpuLoad", "VmLoad"]
