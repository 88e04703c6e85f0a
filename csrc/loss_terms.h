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
 * the same rounding either way). */
#include "elementwise.h"

#define LOSS_LANES 8
#define LOSS_LANE_SUM(acc) \
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))

#define LOSS_BATCH(T, SUFFIX, ATTR)                                                                  \
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
    }                                                                                                \
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

LOSS_BATCH(float, f_base, )
LOSS_BATCH(double, d_base, )
#ifdef EW_HAVE_AVX2
LOSS_BATCH(float, f_avx2, EW_AVX2)
LOSS_BATCH(double, d_avx2, EW_AVX2)
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
