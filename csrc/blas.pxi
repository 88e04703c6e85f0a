# Matrix products: register tiles (tile.h) for small ones, BLAS gemm (scipy.linalg.cython_blas) above
# a size threshold. Every product of the library goes through matmul() below.

from scipy.linalg.cython_blas cimport dgemm, sgemm

cdef extern from "tile.h" nogil:
    # entry points that run the version of the SIMD level in use (simd.h)
    void tile_sgemm(int m, int n, int k, const float* A, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* B,
                    ptrdiff_t b_rs, ptrdiff_t b_cs, float* C, ptrdiff_t ldc, int accumulate,
                    const float* bias, const float* res, ptrdiff_t ldres, float* H, ptrdiff_t ldh,
                    const float* mask, ptrdiff_t ldmask, double* colsum)
    void tile_dgemm(int m, int n, int k, const double* A, ptrdiff_t a_rs, ptrdiff_t a_cs, const double* B,
                    ptrdiff_t b_rs, ptrdiff_t b_cs, double* C, ptrdiff_t ldc, int accumulate,
                    const double* bias, const double* res, ptrdiff_t ldres, double* H, ptrdiff_t ldh,
                    const double* mask, ptrdiff_t ldmask, double* colsum)

cdef extern from "simd.h" nogil:
    enum simd_level:
        SIMD_BASELINE
        SIMD_GENERIC512
        SIMD_AVX2
        SIMD_AVX512
    simd_level simd_select(simd_level level)
    simd_level simd_level_in_use()
    simd_level simd_cpu_level()
    int simd_cpu_is_intel()
    int simd_level_available(simd_level level)

simd_select(simd_cpu_level())  # the best level this CPU has, for every kernel (simd.pxi: set_simd)


# The three products of a dense layer, told apart by their strides in matmul_bias_relu.
cdef enum ProductForm:
    FORM_FORWARD = 0      # Z = X @ W.T: B is W read transposed (b_rs == 1)
    FORM_WEIGHT_GRAD = 1  # dW = dZ.T @ X: A is dZ read transposed (a_rs == 1)
    FORM_INPUT_GRAD = 2   # dX = dZ @ W: both operands row-major
    N_FORMS = 3

PRODUCT_FORMS = ("X@W.T", "dZ.T@X", "dZ@W")  # names, indexed by ProductForm


cdef inline ProductForm product_form(Py_ssize_t a_rs, Py_ssize_t a_cs, Py_ssize_t b_rs,
                                     Py_ssize_t b_cs) noexcept nogil:
    if b_rs == 1 and b_cs != 1:
        return FORM_FORWARD
    if a_rs == 1 and a_cs != 1:
        return FORM_WEIGHT_GRAD
    return FORM_INPUT_GRAD  # also the degenerate strides of a width-1 operand: any form, always the same


# Products with m*n*k at or above a threshold go to BLAS gemm, smaller ones to the register tiles. The
# threshold depends on the tiles' level in use, on the CPU's best level (OpenBLAS picks its kernels
# from the CPU: on an AVX-512 CPU it runs AVX-512 kernels whatever skipnet's level), on whether an
# AVX-512 CPU is Intel's (full-width 512-bit units) or AMD's (Zen 4: two 256-bit halves) and on the
# product form, and on nothing else: one seed on one host gives the same bits from run to run. Each measured
# one is the power of two that kept every product of bench/threshold.py closest to the better of the
# two paths (float32, one BLAS thread; bench/README.md, "The BLAS threshold", has the runs per host).
# set_blas_threshold overrides all of them.
cdef Py_ssize_t default_blas_min_flops(simd_level level, simd_level cpu, bint intel,
                                       ProductForm form) noexcept nogil:
    if level == SIMD_GENERIC512:
        # measured on Zen 3: 64-byte vectors on SSE2 lose to BLAS from a few thousand m*n*k
        return 1 << 11
    if level == SIMD_BASELINE:
        if cpu == SIMD_BASELINE:
            return 1 << 17  # OpenBLAS's SSE kernels against the SSE2 tiles: the tiles' earlier threshold
        # measured against OpenBLAS's AVX2 kernels on Zen 3; its AVX-512 kernels would win no later
        return three_forms(form, 1 << 15, 1 << 16, 1 << 12)
    if cpu == SIMD_AVX2:
        # measured on Zen 3 (AVX2 tiles against OpenBLAS's Haswell kernels; worst product 1.10-1.13x
        # the better path): the forward never lost up to 2^28, so BLAS only above the measured range
        return three_forms(form, 1 << 29, 1 << 23, 1 << 26)
    if not intel:
        # measured on AMD Zen 4 (OpenBLAS's SkylakeX kernels, whose 512-bit operations Zen 4 runs as
        # two 256-bit halves; worst product of a layer of 16 units or more 1.09-1.14x the better path):
        # the tiles of either level won every such forward up to 2^28, and the 64-byte tiles every
        # product of the three forms since rows of A 4 KiB apart run in blocks of 8 (tile_impl.h)
        if level == SIMD_AVX2:
            return three_forms(form, 1 << 29, 1 << 23, 1 << 25)
        return three_forms(form, 1 << 29, 1 << 29, 1 << 29)
    # An Intel CPU with AVX-512 (full-width 512-bit multiply-adds), not timed on this project's
    # machines yet. Figures of an Intel Xeon with AVX-512 (AVX2 tiles against OpenBLAS sgemm, GFLOP/s):
    # 128x64x64 dZ.T@X 72 vs 160 and X@W.T 78 vs 96, 64x128x128 X@W.T 76 vs 90 and dZ@W 63 vs 68,
    # 256x1024x1024 X@W.T 73 vs 124.
    if level == SIMD_AVX2:
        # BLAS from the smallest measured size where it won (2^19: 1.2x and 2.2x faster); the input
        # gradient, still within 10% at 2^20, from 2^21
        return three_forms(form, 1 << 19, 1 << 18, 1 << 21)
    # avx512: an estimate until timed on an Intel host. The 12 x 32 tiles do twice the AVX2 tiles'
    # work per instruction there; taken at 1.5x their speed (about 110 GFLOP/s) they stay ahead of
    # OpenBLAS's forward and input gradient up to sizes where its cache blocking pays (2^24), and lose
    # the weight gradient (OpenBLAS 160 GFLOP/s at 2^19) as early as the AVX2 tiles do.
    return three_forms(form, 1 << 24, 1 << 18, 1 << 24)


cdef inline Py_ssize_t three_forms(ProductForm form, Py_ssize_t forward, Py_ssize_t weight_grad,
                                   Py_ssize_t input_grad) noexcept nogil:
    if form == FORM_FORWARD:
        return forward
    return weight_grad if form == FORM_WEIGHT_GRAD else input_grad


cdef Py_ssize_t BLAS_MIN_OVERRIDE = -1
cdef Py_ssize_t BLAS_MIN_FLOPS[3]  # per ProductForm, for the level in use (update_blas_threshold)


cdef void update_blas_threshold() noexcept nogil:
    cdef int form
    for form in range(<int>N_FORMS):
        if BLAS_MIN_OVERRIDE >= 0:
            BLAS_MIN_FLOPS[form] = BLAS_MIN_OVERRIDE
        else:
            BLAS_MIN_FLOPS[form] = default_blas_min_flops(simd_level_in_use(), simd_cpu_level(),
                                                          simd_cpu_is_intel(), <ProductForm>form)


update_blas_threshold()


def set_blas_threshold(Py_ssize_t min_flops):
    """Use BLAS gemm for every product with m*n*k >= min_flops, whatever its form (0: always; a huge
    value: never; negative: back to the defaults, per SIMD level and product form: blas_thresholds)."""
    global BLAS_MIN_OVERRIDE
    BLAS_MIN_OVERRIDE = min_flops if min_flops >= 0 else -1
    update_blas_threshold()


def get_blas_threshold():
    """The m*n*k threshold set with set_blas_threshold, or -1 when the defaults per SIMD level and
    product form apply (blas_thresholds() lists them). Passing the value back to set_blas_threshold
    restores the setting either way."""
    return BLAS_MIN_OVERRIDE


def blas_thresholds():
    """{product form: m*n*k threshold} in effect now: "X@W.T" (forward), "dZ.T@X" (weight gradient),
    "dZ@W" (input gradient); a product of that form goes to BLAS gemm when m*n*k >= its threshold,
    else to the register tiles."""
    return {name: BLAS_MIN_FLOPS[form] for form, name in enumerate(PRODUCT_FORMS)}


cdef inline bint use_blas(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, ProductForm form) noexcept nogil:
    return m * n * k >= BLAS_MIN_FLOPS[<int>form]


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
    matmul_bias_relu(m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, NULL, NULL, 0, NULL, 0)


cdef void matmul_bias_relu(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const floating* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                           const floating* B, Py_ssize_t b_rs, Py_ssize_t b_cs,
                           floating* C, Py_ssize_t ldc, bint accumulate,
                           const floating* bias, const floating* res, Py_ssize_t ldres,
                           floating* H, Py_ssize_t ldh) noexcept nogil:
    """matmul, then + bias (n,) in every row of C when bias is not NULL (and not accumulate), then
    + res (m x n, row stride ldres: a residual) when res is not NULL, and H (m x n, row stride ldh) =
    relu(C) when H is not NULL: the tiles do all three in their epilogue, a BLAS product the bias as a
    prefill of C and the rest in a pass after. The same bits either way: C = ((A @ B) + bias) + res,
    what the product, ew_add_into and ew_relu_fwd one after the other give."""
    cdef char ta, tb
    cdef int lda, ldb
    cdef Py_ssize_t i
    if m <= 0 or n <= 0:
        return
    if k > 0 and use_blas(m, n, k, product_form(a_rs, a_cs, b_rs, b_cs)) \
            and blas_operand(m, k, a_rs, a_cs, &ta, &lda) \
            and blas_operand(k, n, b_rs, b_cs, &tb, &ldb):
        if bias != NULL and not accumulate:
            for i in range(m):
                memcpy(C + i * ldc, bias, n * sizeof(floating))
            accumulate = True
        gemm_rowmajor(ta, tb, <int>m, <int>n, <int>k, <floating>1, A, lda, B, ldb,
                      <floating>(1 if accumulate else 0), C, <int>ldc)
        for i in range(m):
            if res != NULL:
                add_into_ptr(C + i * ldc, res + i * ldres, n, True)
            if H != NULL:
                relu_fwd_ptr(C + i * ldc, H + i * ldh, n)
    elif floating is float:
        tile_sgemm(<int>m, <int>n, <int>k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, res, ldres,
                   H, ldh, NULL, 0, NULL)
    else:
        tile_dgemm(<int>m, <int>n, <int>k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, res, ldres,
                   H, ldh, NULL, 0, NULL)


# the widest layer whose bias gradient the tiles sum on the stack as the input gradient leaves them
cdef enum:
    TILE_COLSUM_MAX = 1024


cdef void matmul_relu_bwd(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                          const floating* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                          const floating* B, Py_ssize_t b_rs, Py_ssize_t b_cs,
                          floating* C, bint accumulate, const floating* Z, floating* db) noexcept nogil:
    """matmul into C (m x n, contiguous rows), then the backward of the ReLU whose pre-activation is Z
    (m x n, contiguous rows): C = where(Z > 0, C, +0), and db (n,) = C.sum(0) when db is not NULL. The
    bits of matmul then relu_bwd_bias_grad_ptr (relu_bwd_ptr without db): the tiles do it as C leaves
    their registers, after a BLAS product (or for a layer wider than TILE_COLSUM_MAX) a pass follows."""
    cdef double colsum[TILE_COLSUM_MAX]
    cdef double* sums = colsum if db != NULL else NULL
    cdef char ta, tb
    cdef int lda, ldb
    cdef Py_ssize_t j
    if m <= 0 or n <= 0:
        return
    if n > TILE_COLSUM_MAX or (k > 0 and use_blas(m, n, k, product_form(a_rs, a_cs, b_rs, b_cs))
                               and blas_operand(m, k, a_rs, a_cs, &ta, &lda)
                               and blas_operand(k, n, b_rs, b_cs, &tb, &ldb)):
        matmul(m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, n, accumulate)
        relu_bwd_pass_ptr(C, Z, C, db, m, n)
        return
    if sums != NULL:
        memset(sums, 0, n * sizeof(double))
    if floating is float:
        tile_sgemm(<int>m, <int>n, <int>k, A, a_rs, a_cs, B, b_rs, b_cs, C, n, accumulate, NULL, NULL, 0,
                   NULL, 0, Z, n, sums)
    else:
        tile_dgemm(<int>m, <int>n, <int>k, A, a_rs, a_cs, B, b_rs, b_cs, C, n, accumulate, NULL, NULL, 0,
                   NULL, 0, Z, n, sums)
    if db != NULL:
        for j in range(n):
            db[j] = <floating>sums[j]


def matmul_views(const floating[:, :] A, const floating[:, :] B, floating[:, ::1] C, bint accumulate):
    """C (m, n) = A (m, k) @ B (k, n), or C += A @ B when accumulate, through the library's dispatch
    (the register tiles, or BLAS gemm from blas_thresholds() up): the product form follows from the
    strides, so A = dZ.T (a transposed view) is the weight gradient's form and B = W.T the forward's.
    Each of A and B needs one unit stride (a C-contiguous array or the transpose of one). For
    benchmarks (bench/threshold.py) and tests."""
    cdef Py_ssize_t m = A.shape[0], k = A.shape[1], n = B.shape[1]
    cdef Py_ssize_t item = sizeof(floating)
    if B.shape[0] != k or C.shape[0] != m or C.shape[1] != n:
        raise ValueError(f"shapes must be A (m, k), B (k, n), C (m, n); got A {(m, k)}, B "
                         f"{(B.shape[0], n)}, C {(C.shape[0], C.shape[1])}")
    unit_strides = item in (A.strides[0], A.strides[1]) and item in (B.strides[0], B.strides[1])
    if not unit_strides:
        raise ValueError("A and B each need one unit stride (C-contiguous, or the transpose of such an array)")
    if m == 0 or n == 0:
        return
    if k == 0:
        if not accumulate:
            C[:, :] = 0
        return
    with nogil:
        matmul(m, n, k, &A[0, 0], A.strides[0] // item, A.strides[1] // item,
               &B[0, 0], B.strides[0] // item, B.strides[1] // item, &C[0, 0], n, accumulate)
