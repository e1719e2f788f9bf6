# Types of common.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython
from vsim.model.timeslice.host cimport HostSlicer
from vsim.model.timeslice.parts cimport Vcpu, first_idle

cdef int RUNNING

cdef class Caps:
    cdef public HostSlicer host
    cdef public long long period_ns
    cdef public list quota, used
    cdef public bint any

    @cython.locals(used=cython.double, sharing=cython.int, s=Vcpu, now=cython.longlong)
    cpdef double budget(self, Vcpu v) except? -1
    cpdef charge(self, Vcpu v, long long ran)


@cython.locals(idle=cython.int)
cpdef int choose_cpu(HostSlicer host, Vcpu v) except? -1
