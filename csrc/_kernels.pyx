# cython: language_level=3
"""skipnet._kernels: the compiled kernels behind skipnet's cython backend.

Every entry point trusts its arguments: shapes, dtypes, contiguity and sizes are validated once by the
Python layer (skipnet.network, skipnet.trainer) before any call, and the module is compiled with
boundscheck/wraparound/initializedcheck off. Cores are ``noexcept nogil``; the ``def`` wrappers release
the GIL around them. Outputs are always passed in, never allocated here.

The source is split into parts glued together with ``include``, so it stays one extension module:

    simd.h           the one choice of SIMD level (baseline, generic512, AVX2, AVX-512) for every kernel
    elementwise.h    the element-wise loops (bias rows, relu, skip additions, bias gradient, optimizer
                     updates) in a version per SIMD level, chosen at run time
    blas.pxi         matmul: register tiles (tile.h) for small products, BLAS gemm from
                     scipy.linalg.cython_blas above a size threshold per SIMD level and product form
    simd.pxi         set_simd / get_simd / simd_levels / simd_report, and a self-test of the AVX2
                     intrinsic loops (check_intrinsic_forms)
    dense.pxi        dense forward and backward
    activations.pxi  relu forward and backward, identity-skip addition
    losses.pxi       l1 / mse / bce-with-logits / cross-entropy: value and gradient in one pass
    optim.pxi        SGD and Adam updates over the flat parameter buffer
    rates.pxi        learning-rate schedules' plans as pieces (schedule_rates), cosines by angle addition
    train.pxi        the fused path: whole epochs of training steps in one call (FusedNet)
    orders.pxi       row orders of shuffled epochs from a NumPy Generator's bit stream (draw_orders)

Cores take pointers and sizes (``*_ptr``), so the fused epoch runs them on slices of one workspace;
the ``def`` wrappers take typed memoryviews and serve the per-op path and the tests. Products sum in
the data's dtype, as BLAS does; loss values and bias gradients accumulate in double.
"""

cimport cython
from cython cimport floating
from libc.math cimport INFINITY, exp, fabs, log, log1p, sqrt
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc

cdef extern from "elementwise.h" nogil:
    enum:
        UPDATE_GRAD_NONZERO
        UPDATE_NONFINITE
    void ew_bias_rows_f(float* Z, const float* b, Py_ssize_t n, Py_ssize_t m, int accumulate)
    void ew_bias_rows_d(double* Z, const double* b, Py_ssize_t n, Py_ssize_t m, int accumulate)
    void ew_relu_fwd_f(const float* Z, float* H, Py_ssize_t size)
    void ew_relu_fwd_d(const double* Z, double* H, Py_ssize_t size)
    void ew_relu_bwd_f(const float* dH, const float* Z, float* dZ, Py_ssize_t size)
    void ew_relu_bwd_d(const double* dH, const double* Z, double* dZ, Py_ssize_t size)
    void ew_add_into_f(float* Y, const float* X, Py_ssize_t size, int accumulate)
    void ew_add_into_d(double* Y, const double* X, Py_ssize_t size, int accumulate)
    void ew_col_sums_f(const float* dZ, float* db, Py_ssize_t n, Py_ssize_t m)
    void ew_col_sums_d(const double* dZ, double* db, Py_ssize_t n, Py_ssize_t m)
    void ew_relu_bwd_col_sums_f(const float* dH, const float* Z, float* dZ, float* db, Py_ssize_t n,
                                Py_ssize_t m)
    void ew_relu_bwd_col_sums_d(const double* dH, const double* Z, double* dZ, double* db, Py_ssize_t n,
                                Py_ssize_t m)
    void ew_cosine_block_d(double* out, Py_ssize_t n, double offset, double scale, double ca, double sa,
                           const double* cb, const double* sb)
    int ew_sgd_f(const float* P, float* P_out, const float* G, float* B, Py_ssize_t size, double lr,
                 double momentum, double dampening, double weight_decay, int nesterov, int first_step)
    int ew_sgd_d(const double* P, double* P_out, const double* G, double* B, Py_ssize_t size, double lr,
                 double momentum, double dampening, double weight_decay, int nesterov, int first_step)
    int ew_adam_f(const float* P, float* P_out, const float* G, float* M, float* V, Py_ssize_t size,
                  double step_size, double sqrt_bc2, double beta1, double beta2, double eps,
                  double weight_decay)
    int ew_adam_d(const double* P, double* P_out, const double* G, double* M, double* V, Py_ssize_t size,
                  double step_size, double sqrt_bc2, double beta1, double beta2, double eps,
                  double weight_decay)

include "blas.pxi"
include "simd.pxi"
include "dense.pxi"
include "activations.pxi"
include "losses.pxi"
include "optim.pxi"
include "rates.pxi"
include "train.pxi"
include "orders.pxi"


def loss_diverged(double value, double first, factor):
    """The divergence rule of every training loop (csrc/scalar.h's fused_loss_diverged, which the fused
    kernels apply): the loss ``value`` is NaN or infinite, or ``factor`` is not None and ``first`` > 0
    and value > factor x first (``first`` the fit's first loss)."""
    return bool(fused_loss_diverged(value, first, 0.0 if factor is None else factor))
