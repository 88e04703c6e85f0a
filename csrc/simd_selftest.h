/* A self-test of the two loops written out with AVX2 intrinsics (elementwise.h's ew_sgd_plain_f_avx2,
 * loss_terms.h's loss_l1_batch_f_avx2): each must give its template form's bits (the baseline
 * instantiation, the same operations in the same order), flags and NaN included. skipnet._kernels.
 * check_intrinsic_forms runs it on arrays the tests choose.
 */
#ifndef SKIPNET_SIMD_SELFTEST_H
#define SKIPNET_SIMD_SELFTEST_H

#include <stddef.h>
#include <string.h>
#include "elementwise.h"
#include "loss_terms.h"

enum { SELFTEST_SGD_PLAIN_DIFFERS = 1, SELFTEST_L1_BATCH_DIFFERS = 2 };

/* Runs both forms of each loop on P = a, G = b (SGD with rate lr) and yhat = a, y = b (the l1 loss,
   scale 1/size). Returns the SELFTEST_* bits of the forms whose outputs differ in any bit (0: all
   agree), or -1 when this build or CPU has no AVX2 forms. work: 4 * size floats. */
static int simd_intrinsic_forms_differ(const float *a, const float *b, ptrdiff_t size, double lr,
                                       float *work)
{
#ifdef SIMD_HAVE_X86
    if (simd_cpu_level() < SIMD_AVX2)
        return -1;
    float *out_intrinsic = work, *out_template = work + size;
    float *g_intrinsic = work + 2 * size, *g_template = work + 3 * size;
    const size_t bytes = (size_t)size * sizeof(float);
    int differ = 0;
    int flags_intrinsic = ew_sgd_plain_f_avx2(a, out_intrinsic, b, size, lr);
    int flags_template = ew_sgd_plain_f_base(a, out_template, b, size, lr);
    if (flags_intrinsic != flags_template || memcmp(out_intrinsic, out_template, bytes) != 0)
        differ |= SELFTEST_SGD_PLAIN_DIFFERS;
    double scale = size > 0 ? 1.0 / (double)size : 0.0;
    double loss_intrinsic = loss_l1_batch_f_avx2(a, b, g_intrinsic, size, scale);
    double loss_template = loss_l1_batch_f_base(a, b, g_template, size, scale);
    if (memcmp(&loss_intrinsic, &loss_template, sizeof(double)) != 0 ||
        memcmp(g_intrinsic, g_template, bytes) != 0)
        differ |= SELFTEST_L1_BATCH_DIFFERS;
    return differ;
#else
    (void)a, (void)b, (void)size, (void)lr, (void)work;
    return -1;
#endif
}

#endif
