/* The one choice of SIMD level for every kernel: the register tiles (tile.h), the element-wise loops
 * (elementwise.h) and the batch losses (loss_terms.h) all ask simd_avx2_in_use(), so one training step
 * never mixes levels (skipnet._kernels.set_simd / get_simd).
 *
 * Each kernel is compiled twice from one source: for the x86-64 baseline (SSE2, what wheels are built
 * for) and for AVX2 through a function attribute (no -march=native). The level is "avx2" when the CPU
 * has AVX2 and FMA (the tiles' AVX2 version uses both), else "baseline". Compilers other than GCC and
 * clang on x86 get the baseline only.
 *
 *   SIMD_TARGET_AVX2      AVX2 without FMA: a*b + c is never contracted into one rounding, so the
 *                         element-wise loops give the baseline's bits
 *   SIMD_TARGET_AVX2_FMA  AVX2 with FMA, for the tiles (products round like BLAS's, not bit for bit)
 *   SIMD_PICK(NAME)       NAME_avx2 or NAME_base, whichever the level in use runs
 */
#ifndef SKIPNET_SIMD_H
#define SKIPNET_SIMD_H

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SIMD_HAVE_AVX2 1
#define SIMD_TARGET_AVX2 __attribute__((target("avx2")))
#define SIMD_TARGET_AVX2_FMA __attribute__((target("avx2,fma")))
#include <immintrin.h>

/* Whether this CPU (and OS) supports AVX2 and FMA. */
static int simd_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
static int simd_cpu_has_avx2(void) { return 0; }
#endif

static int simd_avx2 = 0;

/* Use the AVX2 versions (want_avx2 = 1, if the CPU has AVX2 and FMA) or the baseline everywhere.
   Returns 1 if AVX2 is now in use. */
static int simd_select(int want_avx2)
{
    simd_avx2 = want_avx2 && simd_cpu_has_avx2();
    return simd_avx2;
}

static inline int simd_avx2_in_use(void) { return simd_avx2; }

/* One branch per call, on loops of thousands of elements or whole products. */
#ifdef SIMD_HAVE_AVX2
#define SIMD_PICK(NAME) (simd_avx2_in_use() ? NAME##_avx2 : NAME##_base)
#else
#define SIMD_PICK(NAME) NAME##_base
#endif

#endif
