# Matrix products: register tiles (tile.h) for small ones, BLAS gemm (scipy.linalg.cython_blas) above
# a size threshold. Every product of the library goes through matmul() below.

from scipy.linalg.cython_blas cimport dgemm, sgemm

cdef extern from "tile.h" nogil:
    # entry points that run the version of the SIMD level in use (simd.h)
    void tile_sgemm(int m, int n, int k, const float* A, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* B,
                    ptrdiff_t b_rs, ptrdiff_t b_cs, float* C, ptrdiff_t ldc, int accumulate,
                    const float* bias, float* H, ptrdiff_t ldh)
    void tile_dgemm(int m, int n, int k, const double* A, ptrdiff_t a_rs, ptrdiff_t a_cs, const double* B,
                    ptrdiff_t b_rs, ptrdiff_t b_cs, double* C, ptrdiff_t ldc, int accumulate,
                    const double* bias, double* H, ptrdiff_t ldh)

cdef extern from "simd.h" nogil:
    int simd_select(int want_avx2)
    int simd_avx2_in_use()
    int simd_cpu_has_avx2()

# Products with m*n*k at or above a threshold go to BLAS gemm, smaller ones to the register tiles
# (bench/threshold.py measures where BLAS starts to win; bench/README.md has the numbers). The baseline
# (SSE2) tiles are slower than the AVX2+FMA ones, so BLAS wins earlier and the baseline keeps a lower
# threshold. set_blas_threshold overrides the default (tests force either path with it); a negative
# value restores the default of the SIMD level in use.
cdef enum:
    BLAS_MIN_FLOPS_AVX2 = 4194304      # 2^22
    BLAS_MIN_FLOPS_BASELINE = 131072   # 2^17
simd_select(1)  # the best level this CPU has, for every kernel
cdef Py_ssize_t BLAS_MIN_OVERRIDE = -1
cdef Py_ssize_t BLAS_MIN_FLOPS = BLAS_MIN_FLOPS_AVX2 if simd_avx2_in_use() else BLAS_MIN_FLOPS_BASELINE


cdef void update_blas_threshold() noexcept nogil:
    global BLAS_MIN_FLOPS
    if BLAS_MIN_OVERRIDE >= 0:
        BLAS_MIN_FLOPS = BLAS_MIN_OVERRIDE
    else:
        BLAS_MIN_FLOPS = BLAS_MIN_FLOPS_AVX2 if simd_avx2_in_use() else BLAS_MIN_FLOPS_BASELINE


def set_blas_threshold(Py_ssize_t min_flops):
    """Use BLAS gemm for products with m*n*k >= min_flops (0: always; a huge value: never; negative:
    the default of the SIMD level in use, 2^22 for AVX2, 2^17 for the baseline)."""
    global BLAS_MIN_OVERRIDE
    BLAS_MIN_OVERRIDE = min_flops if min_flops >= 0 else -1
    update_blas_threshold()


def get_blas_threshold():
    """The current m*n*k threshold above which products go to BLAS gemm."""
    return BLAS_MIN_FLOPS


def set_simd(str name):
    """Select the small-product and element-wise code: "avx2" (AVX2+FMA, if this CPU has it) or
    "baseline" (SSE2).

    Returns the name of the code now in use. The default is "avx2" where available. The element-wise
    loops give the same bits either way. Unless set with set_blas_threshold, the BLAS threshold
    follows (see get_blas_threshold)."""
    if name not in ("avx2", "baseline"):
        raise ValueError(f"simd must be 'avx2' or 'baseline', got {name!r}")
    simd_select(name == "avx2")
    update_blas_threshold()
    return get_simd()


def get_simd():
    """"avx2" or "baseline": the small-product and element-wise code in use."""
    return "avx2" if simd_avx2_in_use() else "baseline"


def cpu_has_avx2():
    """Whether this CPU (and OS) supports AVX2 and FMA."""
    return bool(simd_cpu_has_avx2())


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


cdef inline bint blas_operand(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t rs, Py_ssize_t cs,
                              char* trans, int* ld) noexcept nogil:
    """Describe a (rows x cols) operand with strides (rs, cs) as a row-major BLAS operand: 'n' with
    its row length, or 't' (stored transposed). False if the strides fit neither."""
    if cs == 1 and (rs >= cols or rows == 1):
        trans[0] = c'n'
        ld[0] = <int>(rs if rows > 1 else cols)
        return True
    if rs == 1 and (cs >= rows or cols == 1):
        trans[0] = c't'
        ld[0] = <int>(cs if cols > 1 else rows)
        return True
    return False


cdef void matmul(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                 const floating* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                 const floating* B, Py_ssize_t b_rs, Py_ssize_t b_cs,
                 floating* C, Py_ssize_t ldc, bint accumulate) noexcept nogil:
    """C (m x n, row stride ldc) = A @ B, or C += A @ B when accumulate.

    A[i, p] is A[i*a_rs + p*a_cs] and B[p, j] is B[p*b_rs + j*b_cs]: one of each operand's strides
    is 1 (a row-major array or its transpose). Sums over p run in the data's dtype, as in BLAS."""
    matmul_bias_relu(m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, NULL, NULL, 0)


cdef void matmul_bias_relu(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const floating* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                           const floating* B, Py_ssize_t b_rs, Py_ssize_t b_cs,
                           floating* C, Py_ssize_t ldc, bint accumulate,
                           const floating* bias, floating* H, Py_ssize_t ldh) noexcept nogil:
    """matmul, then + bias (n,) in every row of C when bias is not NULL (and not accumulate), and
    H (m x n, row stride ldh) = relu(C) when H is not NULL: the tiles do both in their epilogue, a
    BLAS product as a prefill of C and a pass after. The same bits either way: C = (A @ B) + bias."""
    cdef char ta, tb
    cdef int lda, ldb
    cdef Py_ssize_t i
    if m <= 0 or n <= 0:
        return
    if k > 0 and use_blas(m, n, k) and blas_operand(m, k, a_rs, a_cs, &ta, &lda) \
            and blas_operand(k, n, b_rs, b_cs, &tb, &ldb):
        if bias != NULL and not accumulate:
            for i in range(m):
                memcpy(C + i * ldc, bias, n * sizeof(floating))
            accumulate = True
        gemm_rowmajor(ta, tb, <int>m, <int>n, <int>k, <floating>1, A, lda, B, ldb,
                      <floating>(1 if accumulate else 0), C, <int>ldc)
        if H != NULL:
            for i in range(m):
                relu_fwd_ptr(C + i * ldc, H + i * ldh, n)
    elif floating is float:
        tile_sgemm(<int>m, <int>n, <int>k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, H, ldh)
    else:
        tile_dgemm(<int>m, <int>n, <int>k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, H, ldh)
