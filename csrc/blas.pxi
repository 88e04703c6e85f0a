# Row-major GEMM on top of Fortran BLAS, and the size below which plain loops win.

from scipy.linalg.cython_blas cimport dgemm, sgemm

# Products with m*n*k below this go through plain loops: a BLAS call costs more than the arithmetic
# of a small product. Measured on a 2-core Zen 3 (OpenBLAS 1 thread, dense_fwd/dense_bwd per call):
# loops and gemm tie near m*n*k = 512-1024 (e.g. 32x16x1: 2.5 vs 3.3 us; 32x2x16: 2.7 vs 1.6 us), and
# gemm is 3-5x faster at 8192. Settable from Python (set_blas_threshold) so tests can force either path.
cdef Py_ssize_t BLAS_MIN_FLOPS = 1024


def set_blas_threshold(Py_ssize_t min_flops):
    """Use BLAS gemm for products with m*n*k >= min_flops (0: always; a huge value: never)."""
    global BLAS_MIN_FLOPS
    BLAS_MIN_FLOPS = min_flops


def get_blas_threshold():
    """The current m*n*k threshold above which products go to BLAS gemm."""
    return BLAS_MIN_FLOPS


cdef inline bint use_blas(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    return m * n * k >= BLAS_MIN_FLOPS


cdef inline void gemm_rowmajor(char ta, char tb, int m, int n, int k, floating alpha,
                               const floating* A, int lda, const floating* B, int ldb,
                               floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major C (m x n) := alpha * op(A) @ op(B) + beta * C, op given by 'n' / 't'.

    A C-contiguous (m x n) array is the column-major (n x m) transpose, so this is the column-major
    product C^T = op(B)^T op(A)^T: operands and m/n swap, each trans flag stays with its operand.
    Leading dimensions are row lengths of the row-major arrays.
    """
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)
