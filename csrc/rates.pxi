# The cosine phases of learning-rate schedules (skipnet.schedules: CosineLR, OneCycle), at about a
# nanosecond a step instead of a libm cosine each.
#
# The angle of step u of a phase is theta0 + u * delta. With h, l = divmod(u, block) it splits into
# theta0 + (h * block) * delta and l * delta, so by angle addition
#     cos(angle) = cos(A_h) cos(B_l) - sin(A_h) sin(B_l),   A_h = theta0 + (h * block) * delta,
#                                                           B_l = l * delta:
# a table of cos/sin of B_l (block entries) and one cos/sin per block of steps. cosine_rates (a run of
# consecutive steps) and cosine_rates_at (any steps) evaluate the same expression from the same libm
# values, so a step's rate has the same bits whichever is asked. block ~ sqrt(phase length) keeps both
# tables small; it is part of the schedule's definition (a pure function of its settings).

from libc.math cimport cos, sin


cdef void angle_cos_sin(double angle, double* c, double* s) noexcept nogil:
    """cos and sin of one angle: the one place both functions below take them from."""
    c[0] = cos(angle)
    s[0] = sin(angle)


cdef inline double cosine_rate(double offset, double scale, double ca, double sa, double cb,
                               double sb) noexcept nogil:
    # ew_cosine_block_d's formula (elementwise.h), operation for operation: the same bits as a run's.
    # 1 + cos may round below 0 near an angle of pi: held at 0, so a rate never falls below offset
    cdef double rise = 1.0 + (ca * cb - sa * sb)
    return offset + scale * (rise if rise > 0.0 else 0.0)


cdef void cosine_rates_ptr(double* out, Py_ssize_t n, Py_ssize_t first, double offset, double scale,
                           double theta0, double delta, Py_ssize_t block, double* cb,
                           double* sb) noexcept nogil:
    """cb, sb: room for the table of B_l of every l the run reaches (l < min(block, first % block + n))."""
    cdef Py_ssize_t k = 0, u, h, l, l0 = first % block, stop
    cdef double ca, sa
    # the l values the run reaches: l0 .. l0 + n - 1 when it stays in one block, else all
    for l in range(l0 if l0 + n <= block else 0, min(block, l0 + n)):
        angle_cos_sin(<double>l * delta, &cb[l], &sb[l])
    while k < n:
        u = first + k
        h = u // block
        l = u - h * block
        angle_cos_sin(theta0 + <double>(h * block) * delta, &ca, &sa)
        stop = min(n - k, block - l)
        ew_cosine_block_d(out + k, stop, offset, scale, ca, sa, cb + l, sb + l)  # elementwise.h
        k += stop


def _check_phase(Py_ssize_t block, double delta):
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if not delta == delta:
        raise ValueError("delta must not be NaN")


def cosine_rates(double[::1] out, Py_ssize_t first, double offset, double scale, double theta0,
                 double delta, Py_ssize_t block):
    """out[k] = offset + scale * (1 + cos(theta0 + (first + k) * delta)) for every k, the cosine by
    angle addition over blocks of ``block`` steps (see this file's head). out: float64 (n,);
    first >= 0; block >= 1."""
    cdef Py_ssize_t n = out.shape[0], size
    cdef double* table
    _check_phase(block, delta)
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    if n == 0:
        return
    size = min(block, n + first % block)  # the l values this run reaches are below it
    table = <double*>PyMem_Malloc(2 * size * sizeof(double))
    if table == NULL:
        raise MemoryError()
    with nogil:
        cosine_rates_ptr(&out[0], n, first, offset, scale, theta0, delta, block, table, table + size)
    PyMem_Free(table)


def cosine_rates_at(const int64_t[::1] steps, double[::1] out, double offset, double scale,
                    double theta0, double delta, Py_ssize_t block):
    """out[i] = cosine_rates' value at step steps[i] (each >= 0), bit for bit. steps: int64 (n,),
    out: float64 (n,)."""
    cdef Py_ssize_t i, u, h, l, n = steps.shape[0]
    cdef double ca, sa, cb, sb
    _check_phase(block, delta)
    if out.shape[0] != n:
        raise ValueError(f"out must have {n} entries like steps, got {out.shape[0]}")
    for i in range(n):
        if steps[i] < 0:
            raise ValueError(f"steps must be >= 0, got {steps[i]}")
    with nogil:
        for i in range(n):
            u = steps[i]
            h = u // block
            l = u - h * block
            angle_cos_sin(theta0 + <double>(h * block) * delta, &ca, &sa)
            angle_cos_sin(<double>l * delta, &cb, &sb)
            out[i] = cosine_rate(offset, scale, ca, sa, cb, sb)
