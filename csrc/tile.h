/* Small dense products in registers, for the sizes where a BLAS call costs more than the arithmetic.
 *
 *   tile_sgemm / tile_dgemm (m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, H, ldh)
 *       C (m x n, row stride ldc) = A @ B  (+ C when accumulate, else + bias (n,) in every row when
 *       bias is not NULL), with A[i, p] = A[i*a_rs + p*a_cs] and B[p, j] = B[p*b_rs + j*b_cs]; then
 *       H (m x n, row stride ldh) = relu(C) when H is not NULL. See tile_impl.h for the method.
 *
 * Written with GCC vector types, so one source gives an SSE2 version (the x86-64 baseline the wheels
 * are built for) and an AVX2+FMA version compiled with __attribute__((target)); tile_select() picks one
 * at run time with __builtin_cpu_supports. No -march=native, no fast-math: the AVX2 clone differs from
 * the baseline only by fused multiply-adds (one rounding instead of two). Compilers without GNU vector
 * extensions get plain loops.
 */
#ifndef SKIPNET_TILE_H
#define SKIPNET_TILE_H

#include <stddef.h>
#include <string.h>

typedef void (*tile_sgemm_fn)(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *,
                              ptrdiff_t, ptrdiff_t, float *, ptrdiff_t, int, const float *, float *,
                              ptrdiff_t);
typedef void (*tile_dgemm_fn)(int, int, int, const double *, ptrdiff_t, ptrdiff_t, const double *,
                              ptrdiff_t, ptrdiff_t, double *, ptrdiff_t, int, const double *, double *,
                              ptrdiff_t);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#define TILE_T float
#define TILE_IT int /* an integer of the same size, for shuffle masks */
#define TILE_TBYTES 4
#define TILE_VBYTES 16
#define TILE_NAME tile_sgemm_sse2
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
#define TILE_NAME tile_dgemm_sse2
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
#define TILE_TARGET __attribute__((target("avx2,fma")))
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
#define TILE_TARGET __attribute__((target("avx2,fma")))
#include "tile_impl.h"
#undef TILE_T
#undef TILE_IT
#undef TILE_TBYTES
#undef TILE_VBYTES
#undef TILE_NAME
#undef TILE_TARGET

static int tile_have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#else /* no GNU vector extensions: plain loops, one version */

#define TILE_PLAIN(NAME, T)                                                                          \
    static void NAME(int m, int n, int k, const T *A, ptrdiff_t a_rs, ptrdiff_t a_cs, const T *B,    \
                     ptrdiff_t b_rs, ptrdiff_t b_cs, T *C, ptrdiff_t ldc, int accumulate,            \
                     const T *bias, T *H, ptrdiff_t ldh)                                             \
    {                                                                                                \
        for (int i = 0; i < m; i++)                                                                  \
            for (int j = 0; j < n; j++) {                                                            \
                T acc = 0;                                                                           \
                for (int p = 0; p < k; p++)                                                          \
                    acc += A[i * a_rs + p * a_cs] * B[p * b_rs + j * b_cs];                          \
                T z = accumulate ? C[i * ldc + j] + acc : bias ? acc + bias[j] : acc;                \
                C[i * ldc + j] = z;                                                                  \
                if (H)                                                                               \
                    H[i * ldh + j] = z > 0 ? z : 0;                                                  \
            }                                                                                        \
    }
TILE_PLAIN(tile_sgemm_sse2, float)
TILE_PLAIN(tile_dgemm_sse2, double)
#define tile_sgemm_avx2 tile_sgemm_sse2
#define tile_dgemm_avx2 tile_dgemm_sse2
static int tile_have_avx2(void) { return 0; }

#endif

static tile_sgemm_fn tile_sgemm = tile_sgemm_sse2;
static tile_dgemm_fn tile_dgemm = tile_dgemm_sse2;

/* Choose the implementation: want_avx2 = 1 uses AVX2+FMA when the CPU has it. Returns 1 if chosen. */
static int tile_select(int want_avx2)
{
    int avx2 = want_avx2 && tile_have_avx2();
    tile_sgemm = avx2 ? tile_sgemm_avx2 : tile_sgemm_sse2;
    tile_dgemm = avx2 ? tile_dgemm_avx2 : tile_dgemm_sse2;
    return avx2;
}

static int tile_cpu_has_avx2(void) { return tile_have_avx2(); }

#endif
