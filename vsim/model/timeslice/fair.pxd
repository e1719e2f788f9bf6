# Types of fair.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython
from vsim.model.timeslice.common cimport Caps
from vsim.model.timeslice.host cimport HostSlicer
from vsim.model.timeslice.parts cimport Policy, Vcpu

cdef long long NICE_0, FOREVER
cdef int RUNNING, THROTTLED

cdef class Fair(Policy):
    cdef public tuple base
    cdef public object scaling
    cdef public long long quota_ticks, balance_ticks, ticks
    cdef public bint hrtick
    cdef public HostSlicer h
    cdef public long long latency, min_gran, wakeup_gran, nr_latency
    cdef public list q
    cdef long long[::1] load, minv
    cdef public Caps caps

    cpdef _move(self, Vcpu v, int p)

    @cython.locals(floor=cython.longlong)
    cpdef int enqueue(self, Vcpu v, long long now, bint woken) except? -1

    @cython.locals(q=list, vruntime=cython.longlong, v=Vcpu, busiest=cython.int, most=cython.Py_ssize_t, k=cython.int)
    cpdef Vcpu pick(self, int p, long long now)

    @cython.locals(nr=cython.longlong, period=cython.longlong)
    cpdef long long _ideal(self, Vcpu v, int p) except? -1

    cpdef long long _vruntime_now(self, Vcpu v, long long now) except? -1

    @cython.locals(q=list, low=cython.longlong, leftmost=cython.longlong)
    cpdef charge(self, Vcpu v, long long ran, long long now)

    @cython.locals(ran=cython.longlong, ahead=cython.longlong)
    cpdef bint preempts(self, Vcpu v, Vcpu cur, int p, long long now) except? -1

    @cython.locals(p=cython.int, c=Vcpu, q=list, ran=cython.longlong, ideal=cython.longlong)
    cpdef tuple tick(self, long long now)
