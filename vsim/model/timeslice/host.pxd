# Types of host.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython
from vsim.model.timeslice.parts cimport Policy, Vcpu, first_idle

cdef int RUNNING, READY, SLEEPING, THROTTLED, COSTOPPED, _WAKE, _TICK
cdef long long FOREVER, _NO_TIMER
cdef double _INF

@cython.final
cdef class HostSlicer:
    cdef public int n_pcpus
    cdef public object profile, rng, _extra, _extra_host
    cdef public Policy policy
    cdef public list vms, vcpus, vm_vcpus, cur, last, heap
    cdef public long long[::1] smp_vms
    cdef long long[::1] end, timer_at, timer_seq, idle_since, idle_ns, cos_at, cos_due, cos_seq, switched_in
    cdef public long long seq, now, overhead, dispatches, measure_from, switch_ns, skew_limit, _skipped
    cdef public double interference
    cdef public bint relaxed, _measuring, closed
    cdef public dict _fingerprints
    cdef public list trace

    cdef _push(self, long long t, int kind, int arg)
    cdef _arm(self, int p, long long t)

    @cython.locals(t=cython.longlong, kind=cython.int, arg=cython.int, tok=cython.longlong, s=cython.longlong, q=cython.int, n=cython.int, tq=cython.longlong, top=tuple, heap=list, smp='long long[::1]', n_smp=cython.int, k=cython.int, m=cython.int, c=cython.int, vcpus=list, cur=list, pol=Policy,
                   v=Vcpu, p=cython.int)
    cdef _loop(self, long long end)

    @cython.locals(now=cython.longlong, b=cython.double)
    cdef _wake(self, Vcpu v, bint woken)

    @cython.locals(now=cython.longlong, p=cython.int, allowed=cython.longlong, idle=cython.int)
    cdef _ready(self, Vcpu v, bint woken)

    @cython.locals(now=cython.longlong, v=Vcpu, start=cython.longlong, rate=cython.double,
                   length=cython.longlong, burst=cython.longlong, t=cython.longlong,
                   tok=cython.longlong, waiting=cython.int)
    cdef _dispatch(self, int p)

    @cython.locals(v=Vcpu, now=cython.longlong, ran=cython.longlong, done=cython.double)
    cdef Vcpu _stop(self, int p)

    @cython.locals(v=Vcpu, now=cython.longlong, d=cython.double)
    cdef _slice_end(self, int p)

    @cython.locals(v=Vcpu)
    cdef _preempt(self, int p)

    @cython.locals(now=cython.longlong, dt=cython.longlong, v=Vcpu, s=cython.int,
                   running=cython.bint, stopped=cython.bint, vs=list)
    cdef _skew_advance(self, int m)

    @cython.locals(now=cython.longlong, limit=cython.longlong, half=cython.longlong,
                   stopped=cython.bint, running=cython.bint, lag=cython.longlong,
                   lead=cython.longlong, s=cython.int, catch=cython.longlong, p=cython.int, vs=list,
                   held=list, leaders=list, v=Vcpu)
    cdef _cosched(self, int m)
