# Row orders of shuffled epochs (csrc/orders.h): the trainer's per-op and fused paths both draw them here,
# so a seed gives one order per epoch whichever path trains.

from cpython.pycapsule cimport PyCapsule_GetPointer

cdef extern from "orders.h" nogil:
    ctypedef struct bitgen_t:
        pass
    void orders_draw(bitgen_t* g, int64_t* out, Py_ssize_t k, Py_ssize_t n)
    long long ORDERS_MAX_ROWS

MAX_ORDER_ROWS = ORDERS_MAX_ROWS
"""The most rows draw_orders permutes (its draws are 32-bit)."""


def draw_orders(generator, out):
    """Fill each row of ``out`` (k, n) int64, C-contiguous and writable, with a uniform permutation of
    0..n-1 (n <= MAX_ORDER_ROWS) drawn from ``generator``'s bit generator (a numpy.random.Generator),
    row after row: k rows in one call are the draws, and leave the generator state, of k calls of one
    row each. The bit generator's lock is held while drawing, so threads sharing a generator take
    turns."""
    bits = getattr(generator, "bit_generator", None)
    if bits is None or not hasattr(bits, "capsule"):
        raise TypeError(f"generator must be a numpy.random.Generator, got {type(generator).__name__}")
    dtype = getattr(out, "dtype", None)
    if dtype is None or dtype.kind != "i" or dtype.itemsize != 8 or out.ndim != 2 or not out.flags.writeable:
        raise TypeError("out must be a writable, C-contiguous 2-D int64 array")
    cdef bitgen_t* g = <bitgen_t*>PyCapsule_GetPointer(bits.capsule, "BitGenerator")
    cdef Py_ssize_t k = out.shape[0], n = out.shape[1]
    if n > ORDERS_MAX_ROWS:
        raise ValueError(f"at most {ORDERS_MAX_ROWS} rows can be shuffled, got {n}: shuffle=False (rows in "
                         "order; shuffle them beforehand) trains on more")
    cdef int64_t* rows = <int64_t*>matrix_ptr(out, "out", b'q', k, n, True)  # ValueError unless C-contiguous
    if k == 0 or n == 0:
        return
    with bits.lock:
        with nogil:
            orders_draw(g, rows, k, n)
