# Types of bottleneck.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython
from vsim.model.kernels.rounds cimport FabricState

cdef double INF, EPS_S


cdef class BottleneckState(FabricState):
    cdef public double[:] key, key_min, banchor, capacity
    cdef public unsigned char[:] counted
    cdef public long[:] lcount
    cdef public long[:, :] paths
    cdef public double cap, zone_s, g_rate, t0, b0
    cdef public long share_from, link, n_flow, n_stale, entered, clock_moves
    cdef public bint shared

    cdef double clock(self, double t) noexcept

    @cython.locals(dt=cython.double, b=cython.double, moved=cython.double)
    cdef void catch_up_one(self, long vm, double now) noexcept

    @cython.locals(rate=cython.double, b=cython.double)
    cdef void predict(self, long vm, double now) noexcept

    cdef void off_clock(self, long vm) noexcept

    @cython.locals(m=cython.double, k=cython.long)
    cdef void key_least(self, long b) noexcept

    cpdef void set_due(self, long vm, double when)

    @cython.locals(m=cython.double, b=cython.Py_ssize_t)
    cdef double least_key(self) noexcept

    @cython.locals(made=cython.long, b=cython.Py_ssize_t, vm=cython.long)
    cpdef long take_off(self, double klim)

    @cython.locals(kmin=cython.double, ta=cython.double, klim=cython.double)
    cdef bint predicted_by(self, double t) noexcept

    cpdef long take_due(self, double limit, long[:] out)

    @cython.locals(ph=cython.uchar, flowing=cython.uchar, step=cython.long, k=cython.long,
                   link=cython.long)
    cdef void count_flow(self, long vm, long width) noexcept

    @cython.locals(i=cython.Py_ssize_t)
    cpdef void count_flows(self, const long[:] vms, long width)

    @cython.locals(i=cython.Py_ssize_t)
    cpdef void uncount(self, const long[:] ids)

    @cython.locals(vm=cython.long, link=cython.long, first=cython.long, i=cython.Py_ssize_t,
                   k=cython.long, nb=cython.long)
    cpdef bint try_share(self, const long[:] ids, long width, double now)

    @cython.locals(i=cython.Py_ssize_t, n=cython.long, s=cython.double, link=cython.long,
                   k=cython.long, m=cython.long, nb=cython.long, vm=cython.long,
                   new=cython.double, rate=cython.double[:], seen=cython.double[:],
                   key=cython.double[:], counted=cython.uchar[:])
    cpdef long shared_rates(self, const long[:] ids, double now, long[:] out, long[:] stale)

    @cython.locals(i=cython.Py_ssize_t, nb=cython.long, vm=cython.long, b=cython.Py_ssize_t)
    cpdef void leave(self, const long[:] ids, double now)
