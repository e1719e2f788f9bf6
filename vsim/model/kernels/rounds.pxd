# Types of rounds.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython

cdef double INF, EPS_S, STOP_SLACK
cdef int CONTINUE, STOP, THROTTLE, NO_CONVERGENCE

@cython.locals(best=cython.double, u_a=cython.double, u_b=cython.double, full_at=cython.double)
cdef double fits_in(double left, double elapsed, double rate, double d, double cap,
                    double room) noexcept


cdef class Rounds:
    cdef public double[:] left, rate, elapsed, sent, rbytes, dirty, wws, ram, throttle
    cdef public long[:] rounds, high
    cdef public double downtime, wf, max_ratio, trigger, tmax, tail0, window
    cdef public long max_rounds
    cdef public bint auto, continuous, capped

    @cython.locals(left=cython.double, rate=cython.double, elapsed=cython.double,
                   sent=cython.double, rounds=cython.long, high=cython.long, rbytes=cython.double,
                   used=cython.double, stopped=cython.bint, whole=cython.bint, d=cython.double,
                   cap=cython.double, room=cython.double, to_end=cython.double, u=cython.double,
                   tail=cython.double, rest=cython.double, passes=cython.double, at=cython.double,
                   moved=cython.double, nxt=cython.double, decision=cython.int, hi=cython.long,
                   grew=cython.bint, step=cython.double)
    cdef double roll_one(self, long vm, double h, bint commit) noexcept

    cdef double bound(self, double left, double rate) noexcept

    @cython.locals(i=cython.Py_ssize_t)
    cpdef void roll(self, const long[:] ids, const double[:] horizon, bint commit,
                    double[:] used_a)

    cdef public double nxt
    cdef public long hi

    @cython.locals(nxt=cython.double, early=cython.bint, decision=cython.int, hi=cython.long)
    cdef int decide_one(self, long vm) noexcept


cdef class FabricState(Rounds):
    cdef public double[:] anchor, dirty_max, seen_rate, due, due_min
    cdef public unsigned char[:] phase, fresh, is_timer, is_flat, pending, mark, block_mark
    cdef public long[:] hit, out, rest
    cdef public signed char[:] decision_a
    cdef public double[:] nxt_a
    cdef public bint follows_cpu
    cdef public double initial, increment
    cdef public long block
    cdef public int precopy, setup

    @cython.locals(dt=cython.double, ph=cython.uchar, x=cython.double, moved=cython.double)
    cdef void catch_up_one(self, long vm, double now) noexcept

    @cython.locals(i=cython.Py_ssize_t)
    cpdef void catch_up(self, const long[:] ids, double now)

    @cython.locals(k=cython.Py_ssize_t, i=cython.Py_ssize_t, vm=cython.long, nb=cython.long)
    cpdef long move_rates(self, const long[:] ids, const double[:] new, double now, long[:] out)

    @cython.locals(k=cython.Py_ssize_t, i=cython.Py_ssize_t, vm=cython.long,
                   decision=cython.int, nxt=cython.double, t=cython.double)
    cpdef long step_rounds(self, const long[:] due, long[:] rest, signed char[:] decision_a,
                           double[:] nxt_a)

    @cython.locals(ph=cython.uchar)
    cdef double visible_in(self, long vm) noexcept

    @cython.locals(rate=cython.double, bound=cython.double)
    cdef void predict(self, long vm, double now) noexcept

    @cython.locals(nb=cython.long, i=cython.Py_ssize_t,
                   vm=cython.long, c=cython.double, act=cython.double,
                   dirty=cython.double)
    cpdef void refresh(self, const long[:] ids, double now, const double[:] cpu,
                       const double[:] cap)

    @cython.locals(m=cython.double, x=cython.double, k=cython.long)
    cdef void block_least(self, long b) noexcept

    cdef long mark_block(self, long b, long nb) noexcept

    @cython.locals(j=cython.long)
    cdef void least_of_marked(self, long nb) noexcept

    cpdef void set_due(self, long vm, double when)

    @cython.locals(made=cython.long, b=cython.Py_ssize_t, k=cython.long, moved=cython.bint)
    cpdef long resolve(self, double limit)

    @cython.locals(t=cython.double)
    cpdef double next_due(self)

    @cython.locals(t=cython.double, x=cython.double, b=cython.Py_ssize_t)
    cdef double least_due(self) noexcept

    cdef bint predicted_by(self, double t) noexcept

    @cython.locals(k=cython.Py_ssize_t, r=cython.Py_ssize_t, i=cython.Py_ssize_t)
    cpdef tuple fire(self, double limit, double now)

    @cython.locals(n=cython.long, t=cython.double, k=cython.Py_ssize_t, r=cython.Py_ssize_t,
                   i=cython.Py_ssize_t, vm=cython.long)
    cpdef tuple steps_alone(self, const double[:] frac, double[:] cpu, const double[:] cap)

    @cython.locals(k=cython.Py_ssize_t, b=cython.Py_ssize_t, vm=cython.long)
    cpdef long take_due(self, double limit, long[:] out)
