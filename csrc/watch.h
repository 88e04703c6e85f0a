/* What the training diagnostics read from a fused chunk, so that they need no Python between epochs
 * (skipnet.diagnostics.TrainingMonitor, skipnet/trainer.py):
 *
 *   plateau_begins(tail, n, window, rtol, level)
 *       the plateau rule over the last n (<= window) epoch losses, oldest first: true when the last
 *       ``window`` of them are finite and lie within rtol of their mean (relative; absolute at a mean
 *       of 0) while no plateau is being reported; *level (NaN: none) is the level of the plateau
 *       reported last (the |mean| of its window), forgotten here once the last loss has left it by more
 *       than 10 rtol (relative), and set when a plateau begins.
 *       The Python monitor calls this rule too (skipnet._kernels.plateau_begins): it is written once.
 *   plateau_watch
 *       the rule applied by a chunk to each epoch it completes. The monitor explains a plateau with the
 *       weights of the epoch where it begins: the chunk copies them into a snapshot buffer (fused_chunk's
 *       plateau_params) and runs on, and stops after the epoch where a second one begins (or, without a
 *       snapshot buffer, the first).
 *
 * The dead-unit statistics (the largest pre-activation z of every hidden ReLU unit over an epoch's
 * training steps) are kept by the loops themselves (train.pxi, scalar_impl.h).
 */
#ifndef SKIPNET_WATCH_H
#define SKIPNET_WATCH_H

#include <math.h>
#include <stddef.h>
#include "simd.h"

enum { WATCH_MAX_WINDOW = 64 };

static inline int plateau_begins(const double *tail, int n, int window, double rtol, double *level)
{
    int flat = 0;
    double mean = 0.0;
    if (n == window) {
        double sum = 0.0, lo = tail[0], hi = tail[0];
        int finite = 1;
        for (int i = 0; i < n; i++) {
            finite = finite && isfinite(tail[i]);
            sum += tail[i];
            lo = tail[i] < lo ? tail[i] : lo;
            hi = tail[i] > hi ? tail[i] : hi;
        }
        if (finite) {
            mean = fabs(sum / n);
            flat = (mean > 0 ? (hi - lo) / mean : hi - lo) <= rtol;
        }
    }
    if (!isnan(*level) && n > 0 && fabs(tail[n - 1] - *level) > 10 * rtol * fabs(*level))
        *level = NAN;  /* the loss left the reported plateau: a new one may be reported */
    if (!flat || !isnan(*level))
        return 0;
    *level = mean;  /* the plateau now reported, until the loss leaves it */
    return 1;
}

/* The rule over a chunk's epochs: tail holds the fit's last n_tail epoch losses (oldest first);
   epoch loss = the epoch's total / weight_total, as the Trainer computes it. */
typedef struct {
    int window, n_tail;
    double rtol, level;  /* the level of the plateau being reported (NaN: none), after the last epoch seen */
    double weight_total;
    double tail[WATCH_MAX_WINDOW];
} plateau_watch;

/* After an epoch with sum of loss x rows ``total``: true when a plateau begins with it. */
static inline int plateau_watch_epoch(plateau_watch *w, double total)
{
    const double loss = total / w->weight_total;
    if (w->n_tail == w->window) {
        for (int i = 1; i < w->n_tail; i++)
            w->tail[i - 1] = w->tail[i];
        w->n_tail--;
    }
    w->tail[w->n_tail++] = loss;
    return plateau_begins(w->tail, w->n_tail, w->window, w->rtol, &w->level);
}

/* unit_max (m) = the larger of itself and each column of Z (n x m, rows ld apart); a NaN in Z is passed
   over. Vectors of columns stay in registers down the rows: max(z, acc) is exactly z > acc ? z : acc
   at every width (a NaN z gives acc). Four vectors at a time, then one at a time with the even and odd
   rows in two accumulators (a chain of one max per row would wait on each max's latency), then the
   columns left to the next narrower width: AVX-512 (16 floats) -> AVX2 (8) -> SSE2 (4) -> scalar. Any
   order of the maxima gives the same largest value (of +0 and -0, either: both are <= 0). */
#define WATCH_FOLD_TAIL(T)                                                                           \
    for (ptrdiff_t i = 0; o0 < m && i < n; i++)                                                      \
        for (ptrdiff_t o = o0; o < m; o++) {                                                         \
            const T z = Z[i * ld + o];                                                               \
            unit_max[o] = z > unit_max[o] ? z : unit_max[o];                                         \
        }
#define WATCH_FOLD(NAME, TARGET, T, V, W, LOAD, STORE, MAX, REST)                                    \
    TARGET static void NAME(const T *restrict Z, ptrdiff_t n, ptrdiff_t m, ptrdiff_t ld,            \
                            T *restrict unit_max)                                                    \
    {                                                                                                \
        ptrdiff_t o0 = 0;                                                                            \
        for (; o0 + 4 * W <= m; o0 += 4 * W) {                                                       \
            V a0 = LOAD(unit_max + o0), a1 = LOAD(unit_max + o0 + W);                                \
            V a2 = LOAD(unit_max + o0 + 2 * W), a3 = LOAD(unit_max + o0 + 3 * W);                    \
            for (ptrdiff_t i = 0; i < n; i++) {                                                      \
                const T *z = Z + i * ld + o0;                                                        \
                a0 = MAX(LOAD(z), a0);                                                               \
                a1 = MAX(LOAD(z + W), a1);                                                           \
                a2 = MAX(LOAD(z + 2 * W), a2);                                                       \
                a3 = MAX(LOAD(z + 3 * W), a3);                                                       \
            }                                                                                        \
            STORE(unit_max + o0, a0);                                                                \
            STORE(unit_max + o0 + W, a1);                                                            \
            STORE(unit_max + o0 + 2 * W, a2);                                                        \
            STORE(unit_max + o0 + 3 * W, a3);                                                        \
        }                                                                                            \
        for (; o0 + W <= m; o0 += W) {                                                               \
            V even = LOAD(unit_max + o0), odd = even;                                                \
            ptrdiff_t i = 0;                                                                         \
            for (; i + 2 <= n; i += 2) {                                                             \
                even = MAX(LOAD(Z + i * ld + o0), even);                                             \
                odd = MAX(LOAD(Z + (i + 1) * ld + o0), odd);                                         \
            }                                                                                        \
            if (i < n)                                                                               \
                even = MAX(LOAD(Z + i * ld + o0), even);                                             \
            STORE(unit_max + o0, MAX(odd, even));                                                    \
        }                                                                                            \
        REST                                                                                         \
    }
#define WATCH_FOLD_SCALAR(NAME, T)                                                                   \
    static void NAME(const T *restrict Z, ptrdiff_t n, ptrdiff_t m, ptrdiff_t ld,                   \
                     T *restrict unit_max)                                                           \
    {                                                                                                \
        ptrdiff_t o0 = 0;                                                                            \
        WATCH_FOLD_TAIL(T)                                                                           \
    }
#define WATCH_FOLD_NARROWER(NEXT) \
    if (o0 < m)                   \
        NEXT(Z + o0, n, m - o0, ld, unit_max + o0);
#if defined(__SSE2__)
#include <emmintrin.h>
WATCH_FOLD(watch_fold_f_base, , float, __m128, 4, _mm_loadu_ps, _mm_storeu_ps, _mm_max_ps, WATCH_FOLD_TAIL(float))
WATCH_FOLD(watch_fold_d_base, , double, __m128d, 2, _mm_loadu_pd, _mm_storeu_pd, _mm_max_pd,
           WATCH_FOLD_TAIL(double))
#else
WATCH_FOLD_SCALAR(watch_fold_f_base, float)
WATCH_FOLD_SCALAR(watch_fold_d_base, double)
#endif
#ifdef SIMD_HAVE_X86
WATCH_FOLD(watch_fold_f_avx2, SIMD_TARGET_AVX2, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_max_ps,
           WATCH_FOLD_NARROWER(watch_fold_f_base))
WATCH_FOLD(watch_fold_d_avx2, SIMD_TARGET_AVX2, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd,
           _mm256_max_pd, WATCH_FOLD_NARROWER(watch_fold_d_base))
WATCH_FOLD(watch_fold_f_avx512, SIMD_TARGET_AVX512, float, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps,
           _mm512_max_ps, WATCH_FOLD_NARROWER(watch_fold_f_avx2))
WATCH_FOLD(watch_fold_d_avx512, SIMD_TARGET_AVX512, double, __m512d, 8, _mm512_loadu_pd, _mm512_storeu_pd,
           _mm512_max_pd, WATCH_FOLD_NARROWER(watch_fold_d_avx2))
#define WATCH_FOLD_PICK(T)                                                                           \
    if (simd_level == SIMD_AVX512) {                                                                 \
        watch_fold_##T##_avx512(Z, n, m, m, unit_max);                                               \
        return;                                                                                      \
    }                                                                                                \
    if (simd_level == SIMD_AVX2) {                                                                   \
        watch_fold_##T##_avx2(Z, n, m, m, unit_max);                                                 \
        return;                                                                                      \
    }
#else
#define WATCH_FOLD_PICK(T)
#endif
/* The folds of the SIMD level in use (generic512: the baseline's). */
static inline void watch_fold_max_f(const float *Z, ptrdiff_t n, ptrdiff_t m, float *unit_max)
{
    WATCH_FOLD_PICK(f)
    watch_fold_f_base(Z, n, m, m, unit_max);
}
static inline void watch_fold_max_d(const double *Z, ptrdiff_t n, ptrdiff_t m, double *unit_max)
{
    WATCH_FOLD_PICK(d)
    watch_fold_d_base(Z, n, m, m, unit_max);
}
#undef WATCH_FOLD_PICK
#undef WATCH_FOLD_NARROWER
#undef WATCH_FOLD_SCALAR
#undef WATCH_FOLD_TAIL
#undef WATCH_FOLD

#endif
