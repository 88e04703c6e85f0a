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

/* unit_max (m) = the larger of itself and each column of Z (n x m); a NaN in Z is passed over. With
   SSE2 (every x86-64), four vectors of columns stay in registers down the rows: maxps(z, acc) is
   exactly z > acc ? z : acc (a NaN z gives acc). */
#define WATCH_FOLD_TAIL(T)                                                                           \
    for (ptrdiff_t i = 0; o0 < m && i < n; i++)                                                      \
        for (ptrdiff_t o = o0; o < m; o++) {                                                         \
            const T z = Z[i * m + o];                                                                \
            unit_max[o] = z > unit_max[o] ? z : unit_max[o];                                         \
        }
#if defined(__SSE2__)
#include <emmintrin.h>
#define WATCH_FOLD(NAME, T, V, W, LOAD, STORE, MAX)                                                  \
    static inline void NAME(const T *restrict Z, ptrdiff_t n, ptrdiff_t m, T *restrict unit_max)    \
    {                                                                                                \
        ptrdiff_t o0 = 0;                                                                            \
        for (; o0 + 4 * W <= m; o0 += 4 * W) {                                                       \
            V a0 = LOAD(unit_max + o0), a1 = LOAD(unit_max + o0 + W);                                \
            V a2 = LOAD(unit_max + o0 + 2 * W), a3 = LOAD(unit_max + o0 + 3 * W);                    \
            for (ptrdiff_t i = 0; i < n; i++) {                                                      \
                const T *z = Z + i * m + o0;                                                         \
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
            V a = LOAD(unit_max + o0);                                                               \
            for (ptrdiff_t i = 0; i < n; i++)                                                        \
                a = MAX(LOAD(Z + i * m + o0), a);                                                    \
            STORE(unit_max + o0, a);                                                                 \
        }                                                                                            \
        WATCH_FOLD_TAIL(T)                                                                           \
    }
WATCH_FOLD(watch_fold_max_f, float, __m128, 4, _mm_loadu_ps, _mm_storeu_ps, _mm_max_ps)
WATCH_FOLD(watch_fold_max_d, double, __m128d, 2, _mm_loadu_pd, _mm_storeu_pd, _mm_max_pd)
#else
#define WATCH_FOLD(NAME, T)                                                                          \
    static inline void NAME(const T *restrict Z, ptrdiff_t n, ptrdiff_t m, T *restrict unit_max)    \
    {                                                                                                \
        ptrdiff_t o0 = 0;                                                                            \
        WATCH_FOLD_TAIL(T)                                                                           \
    }
WATCH_FOLD(watch_fold_max_f, float)
WATCH_FOLD(watch_fold_max_d, double)
#endif
#undef WATCH_FOLD_TAIL
#undef WATCH_FOLD

#endif
