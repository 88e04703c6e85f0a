/* One instantiation of the batch losses; included by loss_terms.h once per (type, ISA).
 *
 * The including file defines:
 *   LOSS_T       element type (float or double)
 *   LOSS_S       suffix of the functions defined: f_base, d_avx2, f_avx512, d_g512, ...
 *   LOSS_TARGET  function attribute selecting the ISA (empty for the baseline target)
 *   LOSS_OWN_L1  (optional) loss_l1_batch_<LOSS_S> is written out by the including file instead
 *
 * The l1 and mse losses of a batch of `size` elements (scale = 1/size), as loss_l1_term and
 * loss_mse_term: eight interleaved partial sums (one running sum would make every element wait for the
 * previous addition), with l1's sign chosen in the data's type, so that the loops vectorise.
 */

#define LOSS_CAT2(a, b) a##b
#define LOSS_CAT(a, b) LOSS_CAT2(a, b)
#define LOSS_FN(name) LOSS_CAT(name##_, LOSS_S)

#ifndef LOSS_OWN_L1
LOSS_TARGET static double LOSS_FN(loss_l1_batch)(const LOSS_T *yhat, const LOSS_T *y, LOSS_T *g,
                                                 ptrdiff_t size, double scale)
{
    double acc[LOSS_LANES] = {0};
    const LOSS_T s = (LOSS_T)scale;
    ptrdiff_t i = 0;
    for (; i + LOSS_LANES <= size; i += LOSS_LANES)
        for (int l = 0; l < LOSS_LANES; l++) {
            LOSS_T a = yhat[i + l], b = y[i + l];
            acc[l] += fabs((double)a - (double)b);
            g[i + l] = a > b ? s : (a < b ? -s : (LOSS_T)0);
        }
    for (; i < size; i++) {
        LOSS_T a = yhat[i], b = y[i];
        acc[0] += fabs((double)a - (double)b);
        g[i] = a > b ? s : (a < b ? -s : (LOSS_T)0);
    }
    return LOSS_LANE_SUM(acc) * scale;
}
#endif

LOSS_TARGET static double LOSS_FN(loss_mse_batch)(const LOSS_T *yhat, const LOSS_T *y, LOSS_T *g,
                                                  ptrdiff_t size, double scale)
{
    double acc[LOSS_LANES] = {0};
    ptrdiff_t i = 0;
    for (; i + LOSS_LANES <= size; i += LOSS_LANES)
        for (int l = 0; l < LOSS_LANES; l++) {
            double r = (double)yhat[i + l] - (double)y[i + l];
            acc[l] += r * r;
            g[i + l] = (LOSS_T)(2.0 * r * scale);
        }
    for (; i < size; i++) {
        double r = (double)yhat[i] - (double)y[i];
        acc[0] += r * r;
        g[i] = (LOSS_T)(2.0 * r * scale);
    }
    return LOSS_LANE_SUM(acc) * scale;
}

#undef LOSS_FN
#undef LOSS_CAT
#undef LOSS_CAT2
