/* Small dense products in registers, for the sizes where a BLAS call costs more than the arithmetic.
 *
 *   tile_sgemm / tile_dgemm (m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, H, ldh)
 *       C (m x n, row stride ldc) = A @ B  (+ C when accumulate, else + bias (n,) in every row when
 *       bias is not NULL), with A[i, p] = A[i*a_rs + p*a_cs] and B[p, j] = B[p*b_rs + j*b_cs]; then
 *       H (m x n, row stride ldh) = relu(C) when H is not NULL. See tile_impl.h for the method.
 *
 * Written with GCC vector types, so one source gives a baseline version (SSE2, the x86-64 baseline the
 * wheels are built for: tile_sgemm_base) and an AVX2+FMA version (tile_sgemm_avx2); the SIMD level in
 * use (simd.h) picks one at each call. No -march=native, no fast-math: the AVX2 version differs from the
 * baseline only by fused multiply-adds (one rounding instead of two). Compilers without GNU vector
 * extensions get plain loops (tile_plain_impl.h).
 */
#ifndef SKIPNET_TILE_H
#define SKIPNET_TILE_H

#include <stddef.h>
#include <string.h>
#include "simd.h"

typedef void (*tile_sgemm_fn)(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *,
                              ptrdiff_t, ptrdiff_t, float *, ptrdiff_t, int, const float *, float *,
                              ptrdiff_t);
typedef void (*tile_dgemm_fn)(int, int, int, const double *, ptrdiff_t, ptrdiff_t, const double *,
                              ptrdiff_t, ptrdiff_t, double *, ptrdiff_t, int, const double *, double *,
                              ptrdiff_t);

#ifdef SIMD_HAVE_AVX2 /* GCC or clang on x86: vector types and target attributes */

#define TILE_T float
#define TILE_IT int /* an integer of the same size, for shuffle masks */
#define TILE_TBYTES 4
#define TILE_VBYTES 16
#define TILE_NAME tile_sgemm_base
#define TILE_TARGET
#include "tile_impl.h"
#undef TILE_T
#undef TILE_IT
#undef TILE_TBYTES
#undef TILE_VBYTES
#undef TILE_NAME
#undef TILE_TARGET

#define TILE_T double
#define TILE_IT long long
#define TILE_TBYTES 8
#define TILE_VBYTES 16
#define TILE_NAME tile_dgemm_base
#define TILE_TARGET
#include "tile_impl.h"
#undef TILE_T
#undef TILE_IT
#undef TILE_TBYTES
#undef TILE_VBYTES
#undef TILE_NAME
#undef TILE_TARGET

#define TILE_T float
#define TILE_IT int /* an integer of the same size, for shuffle masks */
#define TILE_TBYTES 4
#define TILE_VBYTES 32
#define TILE_NAME tile_sgemm_avx2
#define TILE_TARGET SIMD_TARGET_AVX2_FMA
#include "tile_impl.h"
#undef TILE_T
#undef TILE_IT
#undef TILE_TBYTES
#undef TILE_VBYTES
#undef TILE_NAME
#undef TILE_TARGET

#define TILE_T double
#define TILE_IT long long
#define TILE_TBYTES 8
#define TILE_VBYTES 32
#define TILE_NAME tile_dgemm_avx2
#define TILE_TARGET SIMD_TARGET_AVX2_FMA
#include "tile_impl.h"
#undef TILE_T
#undef TILE_IT
#undef TILE_TBYTES
#undef TILE_VBYTES
#undef TILE_NAME
#undef TILE_TARGET

#else /* no GNU vector extensions: plain loops, one version */

#define TILE_T float
#define TILE_NAME tile_sgemm_base
#include "tile_plain_impl.h"
#undef TILE_T
#undef TILE_NAME

#define TILE_T double
#define TILE_NAME tile_dgemm_base
#include "tile_plain_impl.h"
#undef TILE_T
#undef TILE_NAME

#endif

/* The entry points (blas.pxi calls these names). */
#define tile_sgemm SIMD_PICK(tile_sgemm)
#define tile_dgemm SIMD_PICK(tile_dgemm)

#endif
