/* The one choice of SIMD level for every kernel: the register tiles (tile.h), the element-wise loops
 * (elementwise.h) and the batch losses (loss_terms.h) all ask simd_level_in_use(), so one training step
 * never mixes levels (skipnet._kernels.set_simd / get_simd / simd_levels).
 *
 * Each kernel is compiled several times from one source, through function attributes (no -march, so
 * the wheel stays x86-64 baseline):
 *   SIMD_BASELINE    the x86-64 baseline (SSE2), 16-byte vectors
 *   SIMD_GENERIC512  the AVX-512 level's source (64-byte GCC vectors, the same register tile and lane
 *                    count) compiled for the baseline target: the compiler lowers each 64-byte vector
 *                    to four SSE2 registers. Slow; it exists so that the 64-byte code paths (tile
 *                    edges, the 16-lane transpose) run in the test suite on any x86-64. Never the
 *                    default.
 *   SIMD_AVX2        AVX2 (+FMA in the tiles), 32-byte vectors; needs AVX2 and FMA
 *   SIMD_AVX512      AVX-512 F/VL/BW/DQ (+FMA in the tiles), 64-byte vectors; needs all five
 * The default is the best level the CPU has: avx512 > avx2 > baseline. Compilers other than GCC and
 * clang on x86 get the baseline only.
 *
 *   SIMD_TARGET_AVX2        AVX2 without FMA: a*b + c is never contracted into one rounding, so the
 *                           element-wise loops give the baseline's bits
 *   SIMD_TARGET_AVX2_FMA    AVX2 with FMA, for the tiles (products round like BLAS's, not bit for bit)
 *   SIMD_TARGET_AVX512_FMA  AVX-512 with FMA, for the tiles
 *   SIMD_TARGET_AVX512      AVX-512 for the element-wise loops. GCC's avx512f implies fma, so these
 *                           functions also switch contraction off (optimize("fp-contract=off")): the
 *                           same bits as the baseline, checked by tests/test_simd_levels.py and by
 *                           `objdump -d` showing no vfmadd in them.
 *   SIMD_TARGET_GENERIC512_TILES  no target (the baseline's), two slow optimisation passes off
 *   SIMD_PICK(NAME)         NAME_base, NAME_g512, NAME_avx2 or NAME_avx512, whichever the level in
 *                           use runs
 */
#ifndef SKIPNET_SIMD_H
#define SKIPNET_SIMD_H

enum simd_level { SIMD_BASELINE = 0, SIMD_GENERIC512 = 1, SIMD_AVX2 = 2, SIMD_AVX512 = 3 };
#define SIMD_N_LEVELS 4

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SIMD_HAVE_X86 1
#define SIMD_TARGET_AVX2 __attribute__((target("avx2")))
#define SIMD_TARGET_AVX2_FMA __attribute__((target("avx2,fma")))
#define SIMD_TARGET_AVX512_FMA __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define SIMD_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), optimize("fp-contract=off")))
/* generic512's tiles: 64-byte vectors on SSE2 spill most of the 12 x 2 tile, and on such functions
   GCC's RTL global CSE / PRE (-fgcse) and load CSE after reload took most of a minute per type;
   the level is for tests, so those two passes are off for it */
#define SIMD_TARGET_GENERIC512_TILES __attribute__((optimize("no-gcse", "no-gcse-after-reload")))
#include <immintrin.h>

/* The best level this CPU (and OS: __builtin_cpu_supports checks the saved register state too) runs. */
static enum simd_level simd_cpu_level(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma"))
        return SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return SIMD_AVX2;
    return SIMD_BASELINE;
}

/* Whether the CPU is Intel's: its AVX-512 cores run 512-bit multiply-adds at full width, while AMD's
   Zen 4 splits each into two 256-bit halves, so the BLAS thresholds differ (blas.pxi). */
static int simd_cpu_is_intel(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
}

/* Whether this build and CPU can run `level`. */
static int simd_level_available(enum simd_level level)
{
    switch (level) {
    case SIMD_BASELINE:
    case SIMD_GENERIC512:
        return 1;
    case SIMD_AVX2:
        return simd_cpu_level() >= SIMD_AVX2;
    case SIMD_AVX512:
        return simd_cpu_level() >= SIMD_AVX512;
    }
    return 0;
}
#else
static enum simd_level simd_cpu_level(void) { return SIMD_BASELINE; }
static int simd_cpu_is_intel(void) { return 0; }
static int simd_level_available(enum simd_level level) { return level == SIMD_BASELINE; }
#endif

/* The level every kernel runs; set once at import (simd_select(simd_cpu_level())). */
static enum simd_level simd_level = SIMD_BASELINE;

/* The level that runs when `level` is asked for: `level` if available, else the best available one
   below it (avx512 -> avx2 -> baseline; generic512 -> baseline). */
static enum simd_level simd_fallback(enum simd_level level)
{
    while (level != SIMD_BASELINE && !simd_level_available(level))
        level = level == SIMD_AVX512 ? SIMD_AVX2 : SIMD_BASELINE;
    return level;
}

/* Run `level` (or its fallback) everywhere; returns the level now in use. */
static enum simd_level simd_select(enum simd_level level)
{
    simd_level = simd_fallback(level);
    return simd_level;
}

static inline enum simd_level simd_level_in_use(void) { return simd_level; }

/* One branch per call, on loops of thousands of elements or whole products. */
#ifdef SIMD_HAVE_X86
#define SIMD_PICK(NAME)                                                                   \
    (simd_level == SIMD_AVX2 ? NAME##_avx2 : simd_level == SIMD_AVX512 ? NAME##_avx512 \
                                           : simd_level == SIMD_GENERIC512 ? NAME##_g512 \
                                                                           : NAME##_base)
#else
#define SIMD_PICK(NAME) NAME##_base
#endif

#endif
