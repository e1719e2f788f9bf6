# Types of credit.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython
from vsim.model.timeslice.common cimport Caps
from vsim.model.timeslice.host cimport HostSlicer
from vsim.model.timeslice.parts cimport Policy, Vcpu

cdef int BOOST, UNDER, OVER, IDLE, RUNNING, THROTTLED

cdef class Credit(Policy):
    cdef public long long slice, period, ticks
    cdef public bint boost
    cdef public HostSlicer h
    cdef public list q
    cdef public Caps caps
    cdef public set active
    cdef public dict _earned

    @cython.locals(q=list, pri=cython.int, i=cython.Py_ssize_t, ahead=Vcpu)
    cpdef _insert(self, Vcpu v, int p)

    @cython.locals(q=list, best=cython.int, k=cython.int, peer=list, i=cython.Py_ssize_t, v=Vcpu, head=Vcpu)
    cpdef Vcpu pick(self, int p, long long now)

    @cython.locals(v=Vcpu, active=set)
    cpdef tuple tick(self, long long now)
