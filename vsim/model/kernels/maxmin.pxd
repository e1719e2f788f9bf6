# Types of maxmin.py for the compiled build (Cython reads this beside the .py; Python ignores it).
cimport cython

cdef double INF, LEVEL_SLACK

cpdef max_min(const long[:, :] paths, const double[:] caps, const double[:] capacity)

@cython.locals(n_f=cython.Py_ssize_t, n_l=cython.Py_ssize_t, every=cython.bint, r=cython.long,
               rates='double[::1]', left='double[::1]', count='long[::1]', share='double[::1]',
               floor='double[::1]', given='double[::1]', path_min='double[::1]',
               state='signed char[::1]', n_active=cython.Py_ssize_t, link=cython.long,
               f=cython.Py_ssize_t, k=cython.Py_ssize_t, x=cython.double, m=cython.double,
               level=cython.double, frozen=cython.Py_ssize_t, hit=cython.bint)
cpdef max_min_rows(const long[:, :] paths, const long[:] rows, Py_ssize_t width,
                   const double[:] caps, const double[:] capacity)
