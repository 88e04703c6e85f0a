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
#include "simd.h"

/* The losses, numbered once: the batch kernels (losses.pxi), the fused loops (train.pxi, scalar.h) and
   the Python side's names (skipnet._kernels.LOSS_NAMES, which skipnet._validation.LOSSES reads). */
enum loss_kind { LOSS_L1 = 0, LOSS_MSE = 1, LOSS_BCE = 2, LOSS_CROSS_ENTROPY = 3, LOSS_KIND_COUNT = 4 };
static const char *const loss_kind_names[LOSS_KIND_COUNT] = {"l1", "mse", "bce", "cross_entropy"};

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

/* The l1 and mse losses of a batch (loss_batch_impl.h), compiled for every SIMD level (the baseline,
 * generic512 on the baseline target, AVX2 without FMA, AVX-512 with contraction off) and chosen at run
 * time as the other element-wise loops (simd.h, elementwise.h): the same rounding at every level.
 * Float l1's AVX2 version is written out with intrinsics, below. */

#define LOSS_LANES 8
#define LOSS_LANE_SUM(acc) \
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))

#define LOSS_T float
#define LOSS_S f_base
#define LOSS_TARGET
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET

#define LOSS_T double
#define LOSS_S d_base
#define LOSS_TARGET
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET

#ifdef SIMD_HAVE_X86
/* float l1 with AVX2, written out: the template's loop, same lanes, same order, same bits. GCC widens
   each 8-float load with an extract before the two conversions to double; converting straight from
   memory, four floats at a time, saves those shuffles, and the conversions are what bounds this loop
   (bench/README.md has the timings). Loads come before the store, so g may be yhat. */
SIMD_TARGET_AVX2 static double loss_l1_batch_f_avx2(const float *yhat, const float *y, float *g,
                                                    ptrdiff_t size, double scale)
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

#define LOSS_T float
#define LOSS_S f_avx2
#define LOSS_TARGET SIMD_TARGET_AVX2
#define LOSS_OWN_L1
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET
#undef LOSS_OWN_L1

#define LOSS_T double
#define LOSS_S d_avx2
#define LOSS_TARGET SIMD_TARGET_AVX2
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET

#define LOSS_T float
#define LOSS_S f_avx512
#define LOSS_TARGET SIMD_TARGET_AVX512
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET

#define LOSS_T double
#define LOSS_S d_avx512
#define LOSS_TARGET SIMD_TARGET_AVX512
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET

#define LOSS_T float
#define LOSS_S f_g512
#define LOSS_TARGET
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET

#define LOSS_T double
#define LOSS_S d_g512
#define LOSS_TARGET
#include "loss_batch_impl.h"
#undef LOSS_T
#undef LOSS_S
#undef LOSS_TARGET
#endif

/* The entry points (losses.pxi calls these names), as elementwise.h's. */
#define loss_l1_batch_f SIMD_PICK(loss_l1_batch_f)
#define loss_l1_batch_d SIMD_PICK(loss_l1_batch_d)
#define loss_mse_batch_f SIMD_PICK(loss_mse_batch_f)
#define loss_mse_batch_d SIMD_PICK(loss_mse_batch_d)

#endif
