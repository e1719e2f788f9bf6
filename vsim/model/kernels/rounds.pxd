# Types of rounds.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython

cdef double INF, EPS_S, STOP_SLACK
cdef int CONTINUE, STOP, THROTTLE, NO_CONVERGENCE

@cython.locals(best=cython.double, u_a=cython.double, u_b=cython.double, full_at=cython.double)
cdef double fits_in(double left, double elapsed, double rate, double d, double cap, double room)

@cython.locals(downtime=cython.double, wf=cython.double, max_rounds=cython.long,
               max_ratio=cython.double, trigger=cython.double, auto=cython.bint,
               tmax=cython.double, continuous=cython.bint, tail0=cython.double,
               window=cython.double, n=cython.Py_ssize_t, i=cython.Py_ssize_t, vm=cython.long,
               h=cython.double, left=cython.double, rate=cython.double, elapsed=cython.double,
               sent=cython.double, rounds=cython.long, high=cython.long, rbytes=cython.double,
               used=cython.double, stopped=cython.bint, d=cython.double, cap=cython.double,
               room=cython.double, to_end=cython.double, u=cython.double, tail=cython.double,
               rest=cython.double, passes=cython.double, at=cython.double,
               moved=cython.double, nxt=cython.double, decision=cython.int, hi=cython.long,
               step=cython.double,
               capped=cython.bint, whole=cython.bint, grew=cython.bint)
cpdef void roll(const long[:] ids, const double[:] horizon, bint commit, double[:] left_a,
                const double[:] rate_a, double[:] elapsed_a, double[:] sent_a, long[:] round_a,
                long[:] high_a, double[:] rbytes_a, const double[:] dirty_a,
                const double[:] wws_a, const double[:] ram_a, const double[:] throttle_a,
                double[:] used_a, tuple p)

@cython.locals(downtime=cython.double, wf=cython.double, max_rounds=cython.long,
               max_ratio=cython.double, trigger=cython.double, auto=cython.bint,
               tmax=cython.double, n=cython.Py_ssize_t, i=cython.Py_ssize_t, vm=cython.long,
               nxt=cython.double, early=cython.bint, decision=cython.int, hi=cython.long)
cpdef void decide(const long[:] ids, const double[:] left_a, const double[:] rate_a,
                  const double[:] elapsed_a, const double[:] sent_a, const long[:] round_a,
                  const long[:] high_a, const double[:] rbytes_a, const double[:] dirty_a,
                  const double[:] wws_a, const double[:] ram_a, const double[:] throttle_a,
                  signed char[:] decision_a, double[:] nxt_a, long[:] hi_a, tuple p)

@cython.locals(k=cython.Py_ssize_t, n=cython.Py_ssize_t, i=cython.Py_ssize_t, vm=cython.long,
               dt=cython.double, ph=cython.uchar, x=cython.double, moved=cython.double)
cpdef Py_ssize_t advance(const long[:] ids, double now, double[:] anchor_a,
                         const unsigned char[:] phase_a, double[:] left_a, const double[:] rate_a,
                         double[:] sent_a, const unsigned char[:] is_timer,
                         const unsigned char[:] is_flat, int precopy, long[:] pre_a,
                         double[:] dt_a)
