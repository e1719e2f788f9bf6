# Types of parts.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython

cdef class Vcpu:
    cdef public double burst_left, burst_mean, sleep_mean, work, rate
    cdef public bint capped, cos, fixed
    cdef public long long since, woke, run, ready, idle, throttled, costop, dispatches, switches
    cdef public long long skew, credit, charged, vruntime, weight
    cdef public int id, vm, pin, index, state, pri, rq
    cdef public list lat, draws


@cython.locals(p=cython.int, c=object)
cpdef int first_idle(list cur) except? -2


cdef class Policy:
    cdef public long long tick_ns, ratelimit_ns
    cdef public int epoch_ticks
    cdef public bint slice_includes_switch

    cpdef int enqueue(self, Vcpu v, long long now, bint woken) except? -1
    cpdef requeue(self, Vcpu v, int p, long long now)
    cpdef Vcpu pick(self, int p, long long now)
    cpdef int waiting(self, int p) except? -1
    cpdef long long slice_ns(self, Vcpu v, int p, long long now) except? -1
    cpdef charge(self, Vcpu v, long long ran, long long now)
    cpdef double budget_ns(self, Vcpu v) except? -1
    cpdef bint preempts(self, Vcpu v, Vcpu cur, int p, long long now) except? -1
    cpdef tuple tick(self, long long now)
