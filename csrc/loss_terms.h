/* Element-wise losses: the scalar path's (scalar.h) and bce's batch core (losses.pxi); the l1 and mse
 * batch cores spell the same terms out in vectorisable loops.
 *
 * Each returns one element's loss term and stores its gradient, already scaled by 1/N, in *g.
 * Everything in double; callers round the gradient once into the data's dtype.
 */
#ifndef SKIPNET_LOSS_TERMS_H
#define SKIPNET_LOSS_TERMS_H

#include <math.h>
#include <stddef.h>

/* |yhat - y|; d/dyhat = sign(yhat - y) with sign(0) = 0 (PyTorch's l1_loss) */
static inline double loss_l1_term(double yhat, double y, double scale, double *g)
{
    double r = yhat - y;
    /* a select the compiler may turn into a branch: one row at a time, a predicted branch keeps the
       sign off the chain of dependent operations from one step to the next */
    *g = r > 0 ? scale : (r < 0 ? -scale : 0.0);
    return fabs(r);
}

/* (yhat - y)^2 */
static inline double loss_mse_term(double yhat, double y, double scale, double *g)
{
    double r = yhat - y;
    *g = 2.0 * r * scale;
    return r * r;
}

static inline double loss_sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)) on a logit z: never log(sigmoid), never
   overflows; d/dz = sigmoid(z) - y */
static inline double loss_bce_term(double z, double y, double scale, double *g)
{
    *g = (loss_sigmoid(z) - y) * scale;
    return (z > 0 ? z : 0.0) - y * z + log1p(exp(-fabs(z)));
}

/* The l1 and mse losses of a batch of `size` elements (scale = 1/size): the terms above, summed in
 * eight interleaved partial sums (one running sum would make every element wait for the previous
 * addition), with l1's sign chosen in the data's type, so that the loops vectorise. Compiled for the
 * baseline and for AVX2 and chosen at run time as the other element-wise loops (elementwise.h; no FMA:
 * the same rounding either way; float l1's AVX2 version is written out with intrinsics, below). */
#include "elementwise.h"

#define LOSS_LANES 8
#define LOSS_LANE_SUM(acc) \
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))

#define LOSS_L1_BATCH(T, SUFFIX, ATTR)                                                               \
    ATTR static double loss_l1_batch_##SUFFIX(const T *yhat, const T *y, T *g, ptrdiff_t size,       \
                                              double scale)                                          \
    {                                                                                                \
        double acc[LOSS_LANES] = {0};                                                                \
        const T s = (T)scale;                                                                        \
        ptrdiff_t i = 0;                                                                             \
        for (; i + LOSS_LANES <= size; i += LOSS_LANES)                                              \
            for (int l = 0; l < LOSS_LANES; l++) {                                                   \
                T a = yhat[i + l], b = y[i + l];                                                     \
                acc[l] += fabs((double)a - (double)b);                                               \
                g[i + l] = a > b ? s : (a < b ? -s : (T)0);                                          \
            }                                                                                        \
        for (; i < size; i++) {                                                                      \
            T a = yhat[i], b = y[i];                                                                 \
            acc[0] += fabs((double)a - (double)b);                                                   \
            g[i] = a > b ? s : (a < b ? -s : (T)0);                                                  \
        }                                                                                            \
        return LOSS_LANE_SUM(acc) * scale;                                                           \
    }

#define LOSS_MSE_BATCH(T, SUFFIX, ATTR)                                                              \
    ATTR static double loss_mse_batch_##SUFFIX(const T *yhat, const T *y, T *g, ptrdiff_t size,      \
                                               double scale)                                         \
    {                                                                                                \
        double acc[LOSS_LANES] = {0};                                                                \
        ptrdiff_t i = 0;                                                                             \
        for (; i + LOSS_LANES <= size; i += LOSS_LANES)                                              \
            for (int l = 0; l < LOSS_LANES; l++) {                                                   \
                double r = (double)yhat[i + l] - (double)y[i + l];                                   \
                acc[l] += r * r;                                                                     \
                g[i + l] = (T)(2.0 * r * scale);                                                     \
            }                                                                                        \
        for (; i < size; i++) {                                                                      \
            double r = (double)yhat[i] - (double)y[i];                                               \
            acc[0] += r * r;                                                                         \
            g[i] = (T)(2.0 * r * scale);                                                             \
        }                                                                                            \
        return LOSS_LANE_SUM(acc) * scale;                                                           \
    }

LOSS_L1_BATCH(float, f_base, )
LOSS_L1_BATCH(double, d_base, )
LOSS_MSE_BATCH(float, f_base, )
LOSS_MSE_BATCH(double, d_base, )
#ifdef EW_HAVE_AVX2
LOSS_L1_BATCH(double, d_avx2, EW_AVX2)
LOSS_MSE_BATCH(float, f_avx2, EW_AVX2)
LOSS_MSE_BATCH(double, d_avx2, EW_AVX2)

/* float l1 with AVX2, spelled out: the loop above, same lanes, same order, same bits. GCC widens each
   8-float load with an extract before the two conversions to double; converting straight from memory,
   four floats at a time, saves those shuffles, and the conversions are what bounds this loop (1M
   elements: 2.34 -> 1.96 ns per 8, 65% -> 80% of a copy's bandwidth). Loads come before the store, so
   g may be yhat. */
EW_AVX2 static double loss_l1_batch_f_avx2(const float *yhat, const float *y, float *g, ptrdiff_t size,
                                           double scale)
{
    const float s = (float)scale;
    const __m256 pos = _mm256_set1_ps(s), neg = _mm256_set1_ps(-s);
    const __m256d magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd(); /* lanes 0-3 and 4-7 */
    ptrdiff_t i = 0;
    for (; i + LOSS_LANES <= size; i += LOSS_LANES) {
        __m256d r_lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(yhat + i)),
                                     _mm256_cvtps_pd(_mm_loadu_ps(y + i)));
        __m256d r_hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(yhat + i + 4)),
                                     _mm256_cvtps_pd(_mm_loadu_ps(y + i + 4)));
        __m256 a = _mm256_loadu_ps(yhat + i), b = _mm256_loadu_ps(y + i);
        /* ordered comparisons: NaN gives neither, so g = 0, as the select above */
        __m256 up = _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ), pos);
        __m256 down = _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ), neg);
        lo = _mm256_add_pd(lo, _mm256_and_pd(r_lo, magnitude));
        hi = _mm256_add_pd(hi, _mm256_and_pd(r_hi, magnitude));
        _mm256_storeu_ps(g + i, _mm256_or_ps(up, down));
    }
    double acc[LOSS_LANES];
    _mm256_storeu_pd(acc, lo);
    _mm256_storeu_pd(acc + 4, hi);
    for (; i < size; i++) {
        float a = yhat[i], b = y[i];
        acc[0] += fabs((double)a - (double)b);
        g[i] = a > b ? s : (a < b ? -s : 0.0f);
    }
    return LOSS_LANE_SUM(acc) * scale;
}
#endif

#define LOSS_ENTRY_POINTS(T, S)                                                                      \
    static inline double loss_l1_batch_##S(const T *yhat, const T *y, T *g, ptrdiff_t size,          \
                                           double scale)                                             \
    {                                                                                                \
        return EW_PICK(loss_l1_batch, S)(yhat, y, g, size, scale);                                   \
    }                                                                                                \
    static inline double loss_mse_batch_##S(const T *yhat, const T *y, T *g, ptrdiff_t size,         \
                                            double scale)                                            \
    {                                                                                                \
        return EW_PICK(loss_mse_batch, S)(yhat, y, g, size, scale);                                  \
    }
LOSS_ENTRY_POINTS(float, f)
LOSS_ENTRY_POINTS(double, d)

#endif
