/* Small dense products in registers, for the sizes where a BLAS call costs more than the arithmetic.
 *
 *   tile_sgemm / tile_dgemm (m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, res, ldres,
 *                            H, ldh, mask, ldmask, colsum)
 *       C (m x n, row stride ldc) = A @ B  (+ C when accumulate, else + bias (n,) in every row when
 *       bias is not NULL) (+ res), with A[i, p] = A[i*a_rs + p*a_cs] and B[p, j] = B[p*b_rs + j*b_cs];
 *       then C = where(mask > 0, C, +0) when mask is not NULL (a ReLU's backward, mask its z), H (m x n,
 *       row stride ldh) = relu(C) when H is not NULL, and colsum (n, double) += C's rows in order when
 *       colsum is not NULL (the bias gradient). See tile_impl.h for the method.
 *
 * Written with GCC vector types, so one source gives every SIMD level of simd.h: the baseline (16-byte
 * vectors, SSE2, the x86-64 baseline the wheels are built for: tile_sgemm_base), AVX2+FMA (32 bytes:
 * tile_sgemm_avx2), AVX-512+FMA (64 bytes: tile_sgemm_avx512) and generic512 (the AVX-512 version's
 * 64-byte source for the baseline target, for tests: tile_sgemm_g512); the SIMD level in use picks one
 * at each call. No -march, no fast-math: the versions of one vector width differ only by fused
 * multiply-adds (one rounding instead of two); different widths also block the sums over k differently
 * (TILE_KC). Compilers without GNU vector extensions get plain loops (tile_plain_impl.h).
 */
#ifndef SKIPNET_TILE_H
#define SKIPNET_TILE_H

#include <stddef.h>
#include <string.h>
#include "simd.h"

typedef void (*tile_sgemm_fn)(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *,
                              ptrdiff_t, ptrdiff_t, float *, ptrdiff_t, int, const float *, const float *,
                              ptrdiff_t, float *, ptrdiff_t, const float *, ptrdiff_t, double *);
typedef void (*tile_dgemm_fn)(int, int, int, const double *, ptrdiff_t, ptrdiff_t, const double *,
                              ptrdiff_t, ptrdiff_t, double *, ptrdiff_t, int, const double *, const double *,
                              ptrdiff_t, double *, ptrdiff_t, const double *, ptrdiff_t, double *);

#ifdef SIMD_HAVE_X86 /* GCC or clang on x86: vector types and target attributes */

/* tile_impl.h undefines its parameters at its end */
#define TILE_T float
#define TILE_IT int
#define TILE_TBYTES 4
#define TILE_VBYTES 16
#define TILE_NAME tile_sgemm_base
#define TILE_TARGET
#define TILE_MR 6
#define TILE_KC 256
#define TILE_PUNROLL 4
#include "tile_impl.h"

#define TILE_T double
#define TILE_IT long long
#define TILE_TBYTES 8
#define TILE_VBYTES 16
#define TILE_NAME tile_dgemm_base
#define TILE_TARGET
#define TILE_MR 6
#define TILE_KC 256
#define TILE_PUNROLL 4
#include "tile_impl.h"

#define TILE_T float
#define TILE_IT int
#define TILE_TBYTES 4
#define TILE_VBYTES 32
#define TILE_NAME tile_sgemm_avx2
#define TILE_TARGET SIMD_TARGET_AVX2_FMA
#define TILE_MR 6
#define TILE_KC 256
#define TILE_PUNROLL 4
#include "tile_impl.h"

#define TILE_T double
#define TILE_IT long long
#define TILE_TBYTES 8
#define TILE_VBYTES 32
#define TILE_NAME tile_dgemm_avx2
#define TILE_TARGET SIMD_TARGET_AVX2_FMA
#define TILE_MR 6
#define TILE_KC 256
#define TILE_PUNROLL 4
#include "tile_impl.h"

/* 64-byte vectors: a 12 x (2 vectors) tile for the 32 zmm registers and kc = 256 (tile_impl.h says
   why); the same source once for AVX-512 and once for the baseline target (generic512, simd.h) */
#define TILE_T float
#define TILE_IT int
#define TILE_TBYTES 4
#define TILE_VBYTES 64
#define TILE_NAME tile_sgemm_avx512
#define TILE_TARGET SIMD_TARGET_AVX512_FMA
#define TILE_MR 12
#define TILE_KC 256
#define TILE_PUNROLL 4
#include "tile_impl.h"

#define TILE_T double
#define TILE_IT long long
#define TILE_TBYTES 8
#define TILE_VBYTES 64
#define TILE_NAME tile_dgemm_avx512
#define TILE_TARGET SIMD_TARGET_AVX512_FMA
#define TILE_MR 12
#define TILE_KC 256
#define TILE_PUNROLL 4
#include "tile_impl.h"

#define TILE_T float
#define TILE_IT int
#define TILE_TBYTES 4
#define TILE_VBYTES 64
#define TILE_NAME tile_sgemm_g512
#define TILE_TARGET SIMD_TARGET_GENERIC512_TILES
#define TILE_MR 12
#define TILE_KC 256
#define TILE_PUNROLL 1
#include "tile_impl.h"

#define TILE_T double
#define TILE_IT long long
#define TILE_TBYTES 8
#define TILE_VBYTES 64
#define TILE_NAME tile_dgemm_g512
#define TILE_TARGET SIMD_TARGET_GENERIC512_TILES
#define TILE_MR 12
#define TILE_KC 256
#define TILE_PUNROLL 1
#include "tile_impl.h"

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
