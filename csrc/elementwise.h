/* The element-wise loops of a training step, shared by the per-op kernels (dense.pxi, activations.pxi,
 * optim.pxi) and the fused loop (train.pxi):
 *
 *   ew_bias_rows   Z (n x m) = b in every row, or Z += b (accumulate)
 *   ew_relu_fwd    H = Z where Z > 0, else 0 (NaN -> 0)
 *   ew_relu_bwd    dZ = dH where Z > 0, else 0 (relu'(0) = 0); dZ may be dH
 *   ew_add_into    Y = X, or Y += X (identity skips)
 *   ew_col_sums    db = dZ.sum(0) in double, row by row per column (the bias gradient)
 *   ew_relu_bwd_col_sums  ew_relu_bwd, then ew_col_sums of its dZ, in one pass (the same bits)
 *   ew_sgd/ew_adam the optimizer updates over the flat buffer, in double, rounded once; UPDATE_* flags
 *   ew_cosine_block_d  a block of a cosine phase's learning rates (rates.pxi), double only
 *
 * Each is compiled from elementwise_impl.h for every SIMD level of simd.h: the baseline, generic512
 * (the baseline target again: these loops have no 64-byte source of their own), AVX2 without FMA and
 * AVX-512 with contraction off; the entry points at the bottom run the version of the SIMD level in use.
 * Without contraction, a*b + c is never one rounding, so every version computes the same operations in
 * the same order and agrees to the last bit, NaN and infinity included. Suffixes: _f float, _d double,
 * then the level: _base, _g512, _avx2, _avx512.
 */
#ifndef SKIPNET_ELEMENTWISE_H
#define SKIPNET_ELEMENTWISE_H

#include <math.h>
#include <stddef.h>
#include "simd.h"

enum { UPDATE_GRAD_NONZERO = 1, UPDATE_NONFINITE = 2 };

/* columns of dZ summed per block in ew_col_sums: a stack of doubles, so the sum runs row by row */
#define EW_SUM_BLOCK 256

#define EW_T float
#define EW_S f_base
#define EW_TARGET
#include "elementwise_impl.h"
#undef EW_T
#undef EW_S
#undef EW_TARGET

#define EW_T double
#define EW_S d_base
#define EW_RATES
#define EW_TARGET
#include "elementwise_impl.h"
#undef EW_RATES
#undef EW_T
#undef EW_S
#undef EW_TARGET

#ifdef SIMD_HAVE_X86
/* Plain SGD on floats with AVX2, written out: GCC widens each 8-float load with an extract before the
   conversions to double, and those shuffles bound the loop; converting straight from memory, four
   floats at a time, avoids them (bench/README.md has the timings). Same operations, same bits.
   The flags: p - p is +0 for finite p and NaN otherwise, so OR-ing its bits keeps any NaN. */
SIMD_TARGET_AVX2 static int ew_sgd_plain_f_avx2(const float *P, float *P_out, const float *G, ptrdiff_t size,
                                                double lr)
{
    const __m256d rate = _mm256_set1_pd(lr);
    const __m256 zero = _mm256_setzero_ps();
    __m256 any_nonzero = zero, any_nan = zero;
    ptrdiff_t i = 0;
    for (; i + 8 <= size; i += 8) {
        __m256d lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(P + i)),
                                   _mm256_mul_pd(rate, _mm256_cvtps_pd(_mm_loadu_ps(G + i))));
        __m256d hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(P + i + 4)),
                                   _mm256_mul_pd(rate, _mm256_cvtps_pd(_mm_loadu_ps(G + i + 4))));
        /* != is unordered: a NaN gradient counts as nonzero, as in the plain loop */
        any_nonzero = _mm256_or_ps(any_nonzero, _mm256_cmp_ps(_mm256_loadu_ps(G + i), zero, _CMP_NEQ_UQ));
        __m256 p = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
        any_nan = _mm256_or_ps(any_nan, _mm256_sub_ps(p, p));
        _mm256_storeu_ps(P_out + i, p);
    }
    int nonzero = _mm256_movemask_ps(any_nonzero) != 0;
    int nonfinite = _mm256_movemask_ps(_mm256_cmp_ps(any_nan, zero, _CMP_NEQ_UQ)) != 0;
    for (; i < size; i++) {
        nonzero |= G[i] != 0;
        float p = (float)(P[i] - lr * (double)G[i]);
        nonfinite |= p - p != 0;
        P_out[i] = p;
    }
    return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);
}

#define EW_T float
#define EW_S f_avx2
#define EW_TARGET SIMD_TARGET_AVX2
#define EW_OWN_SGD_PLAIN
#include "elementwise_impl.h"
#undef EW_T
#undef EW_S
#undef EW_TARGET
#undef EW_OWN_SGD_PLAIN

#define EW_T double
#define EW_S d_avx2
#define EW_RATES
#define EW_TARGET SIMD_TARGET_AVX2
#include "elementwise_impl.h"
#undef EW_RATES
#undef EW_T
#undef EW_S
#undef EW_TARGET

#define EW_T float
#define EW_S f_avx512
#define EW_TARGET SIMD_TARGET_AVX512
#include "elementwise_impl.h"
#undef EW_T
#undef EW_S
#undef EW_TARGET

#define EW_T double
#define EW_S d_avx512
#define EW_RATES
#define EW_TARGET SIMD_TARGET_AVX512
#include "elementwise_impl.h"
#undef EW_RATES
#undef EW_T
#undef EW_S
#undef EW_TARGET

#define EW_T float
#define EW_S f_g512
#define EW_TARGET
#include "elementwise_impl.h"
#undef EW_T
#undef EW_S
#undef EW_TARGET

#define EW_T double
#define EW_S d_g512
#define EW_RATES
#define EW_TARGET
#include "elementwise_impl.h"
#undef EW_RATES
#undef EW_T
#undef EW_S
#undef EW_TARGET
#endif

/* The entry points (.pxi files call these names): one branch per call, on loops of thousands of
   elements. */
#define ew_bias_rows_f SIMD_PICK(ew_bias_rows_f)
#define ew_bias_rows_d SIMD_PICK(ew_bias_rows_d)
#define ew_relu_fwd_f SIMD_PICK(ew_relu_fwd_f)
#define ew_relu_fwd_d SIMD_PICK(ew_relu_fwd_d)
#define ew_relu_bwd_f SIMD_PICK(ew_relu_bwd_f)
#define ew_relu_bwd_d SIMD_PICK(ew_relu_bwd_d)
#define ew_add_into_f SIMD_PICK(ew_add_into_f)
#define ew_add_into_d SIMD_PICK(ew_add_into_d)
#define ew_col_sums_f SIMD_PICK(ew_col_sums_f)
#define ew_col_sums_d SIMD_PICK(ew_col_sums_d)
#define ew_relu_bwd_col_sums_f SIMD_PICK(ew_relu_bwd_col_sums_f)
#define ew_relu_bwd_col_sums_d SIMD_PICK(ew_relu_bwd_col_sums_d)
#define ew_sgd_f SIMD_PICK(ew_sgd_f)
#define ew_sgd_d SIMD_PICK(ew_sgd_d)
#define ew_adam_f SIMD_PICK(ew_adam_f)
#define ew_adam_d SIMD_PICK(ew_adam_d)
#define ew_cosine_block_d SIMD_PICK(ew_cosine_block_d)

#endif
