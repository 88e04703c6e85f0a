/* One instantiation of the element-wise loops; included by elementwise.h once per (type, ISA).
 *
 * The including file defines:
 *   EW_T       element type (float or double)
 *   EW_S       suffix of the functions defined: f_base, d_avx2, f_avx512, d_g512, ...
 *   EW_TARGET  function attribute selecting the ISA (empty for the baseline target)
 *   EW_OWN_SGD_PLAIN  (optional) ew_sgd_plain_<EW_S> is written out by the including file instead
 *   EW_RATES   (optional, with double) the learning-rate loop ew_cosine_block as well
 *
 * See elementwise.h for what each loop computes. No FMA in any ISA: every version computes the same
 * operations in the same order and agrees to the last bit.
 */

#define EW_CAT2(a, b) a##b
#define EW_CAT(a, b) EW_CAT2(a, b)
#define EW_FN(name) EW_CAT(name##_, EW_S)

#ifndef EW_OWN_SGD_PLAIN
/* SGD without momentum or weight decay (the default, and the benchmarks'): p = P - lr g in double,
   rounded once; the UPDATE_* flags as ew_sgd's. */
EW_TARGET static int EW_FN(ew_sgd_plain)(const EW_T *P, EW_T *P_out, const EW_T *G, ptrdiff_t size,
                                         double lr)
{
    int nonzero = 0, nonfinite = 0;
    for (ptrdiff_t i = 0; i < size; i++) {
        nonzero |= G[i] != 0;
        EW_T p = (EW_T)(P[i] - lr * (double)G[i]);
        nonfinite |= p - p != 0;
        P_out[i] = p;
    }
    return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);
}
#endif

EW_TARGET static void EW_FN(ew_add_into)(EW_T *Y, const EW_T *X, ptrdiff_t size, int accumulate)
{
    if (accumulate)
        for (ptrdiff_t i = 0; i < size; i++)
            Y[i] = Y[i] + X[i];
    else
        for (ptrdiff_t i = 0; i < size; i++)
            Y[i] = X[i];
}

EW_TARGET static void EW_FN(ew_bias_rows)(EW_T *Z, const EW_T *b, ptrdiff_t n, ptrdiff_t m, int accumulate)
{
    for (ptrdiff_t i = 0; i < n; i++)
        EW_FN(ew_add_into)(Z + i * m, b, m, accumulate);
}

EW_TARGET static void EW_FN(ew_relu_fwd)(const EW_T *Z, EW_T *H, ptrdiff_t size)
{
    for (ptrdiff_t i = 0; i < size; i++) {
        EW_T z = Z[i];
        H[i] = z > 0 ? z : 0;
    }
}

/* both operands loaded unconditionally: a select, not a branch, so the loop vectorises and random
   signs cost no mispredictions */
EW_TARGET static void EW_FN(ew_relu_bwd)(const EW_T *dH, const EW_T *Z, EW_T *dZ, ptrdiff_t size)
{
    for (ptrdiff_t i = 0; i < size; i++) {
        EW_T d = dH[i];
        dZ[i] = Z[i] > 0 ? d : 0;
    }
}

/* ew_relu_bwd then ew_col_sums of its dZ, row by row: the same values summed in the same order, so the
   same bits, with each row of dZ summed from L1 (a ReLU layer's bias gradient). */
EW_TARGET static void EW_FN(ew_relu_bwd_col_sums)(const EW_T *dH, const EW_T *Z, EW_T *dZ, EW_T *db,
                                                   ptrdiff_t n, ptrdiff_t m)
{
    double acc[EW_SUM_BLOCK];
    for (ptrdiff_t o0 = 0; o0 < m; o0 += EW_SUM_BLOCK) {
        ptrdiff_t width = m - o0 < EW_SUM_BLOCK ? m - o0 : EW_SUM_BLOCK;
        for (ptrdiff_t o = 0; o < width; o++)
            acc[o] = 0.0;
        for (ptrdiff_t i = 0; i < n; i++) {
            /* two loops over the row, each of which the compiler vectorizes: the row's dZ is summed
               while it is still in L1 */
            const EW_T *dh = dH + i * m + o0, *z = Z + i * m + o0;
            EW_T *dz = dZ + i * m + o0;
            for (ptrdiff_t o = 0; o < width; o++) {
                EW_T d = dh[o];
                dz[o] = z[o] > 0 ? d : 0;
            }
            for (ptrdiff_t o = 0; o < width; o++)
                acc[o] += dz[o];
        }
        for (ptrdiff_t o = 0; o < width; o++)
            db[o0 + o] = (EW_T)acc[o];
    }
}

EW_TARGET static void EW_FN(ew_col_sums)(const EW_T *dZ, EW_T *db, ptrdiff_t n, ptrdiff_t m)
{
    double acc[EW_SUM_BLOCK];
    for (ptrdiff_t o0 = 0; o0 < m; o0 += EW_SUM_BLOCK) {
        ptrdiff_t width = m - o0 < EW_SUM_BLOCK ? m - o0 : EW_SUM_BLOCK;
        for (ptrdiff_t o = 0; o < width; o++)
            acc[o] = 0.0;
        for (ptrdiff_t i = 0; i < n; i++)
            for (ptrdiff_t o = 0; o < width; o++)
                acc[o] += dZ[i * m + o0 + o];
        for (ptrdiff_t o = 0; o < width; o++)
            db[o0 + o] = (EW_T)acc[o];
    }
}

/* torch.optim.SGD: d = g (+ wd p if wd != 0); b = d on the first step, else momentum b + (1 - dampening)
   d; d = d + momentum b (nesterov) or b; p -= lr d. Reads P, writes P_out (may be P). Without momentum
   and weight decay: ew_sgd_plain. */
EW_TARGET static int EW_FN(ew_sgd)(const EW_T *P, EW_T *P_out, const EW_T *G, EW_T *B, ptrdiff_t size,
                                   double lr, double momentum, double dampening, double weight_decay,
                                   int nesterov, int first_step)
{
    if (momentum == 0 && weight_decay == 0)
        return EW_FN(ew_sgd_plain)(P, P_out, G, size, lr);
    int nonzero = 0, nonfinite = 0;
    for (ptrdiff_t i = 0; i < size; i++) {
        nonzero |= G[i] != 0;
        double d = (double)G[i];
        if (weight_decay != 0)
            d += weight_decay * P[i];
        if (momentum != 0) {
            double buf = first_step ? d : momentum * B[i] + (1.0 - dampening) * d;
            B[i] = (EW_T)buf;
            d = nesterov ? d + momentum * buf : buf;
        }
        EW_T p = (EW_T)(P[i] - lr * d);
        nonfinite |= p - p != 0; /* true for NaN and +-inf only */
        P_out[i] = p;
    }
    return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);
}

/* torch.optim.Adam with L2 weight decay added to the gradient (if nonzero); bias-corrected moments. */
EW_TARGET static int EW_FN(ew_adam)(const EW_T *P, EW_T *P_out, const EW_T *G, EW_T *M, EW_T *V,
                                    ptrdiff_t size, double step_size, double sqrt_bc2, double beta1,
                                    double beta2, double eps, double weight_decay)
{
    int nonzero = 0, nonfinite = 0;
    for (ptrdiff_t i = 0; i < size; i++) {
        nonzero |= G[i] != 0;
        double d = (double)G[i];
        if (weight_decay != 0)
            d += weight_decay * P[i];
        double m = beta1 * M[i] + (1.0 - beta1) * d;
        double v = beta2 * V[i] + (1.0 - beta2) * d * d;
        M[i] = (EW_T)m;
        V[i] = (EW_T)v;
        EW_T p = (EW_T)(P[i] - step_size * m / (sqrt(v) / sqrt_bc2 + eps));
        nonfinite |= p - p != 0;
        P_out[i] = p;
    }
    return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);
}

#ifdef EW_RATES
/* out[i] = offset + scale * max(1 + cos(A + B_i), 0) for a block of a cosine phase (rates.pxi): the
   angle addition cos(A) cos(B_i) - sin(A) sin(B_i) from the tables cb, sb; 1 + cos may round below 0
   near pi, held at 0 so that a rate never falls below offset. */
EW_TARGET static void EW_FN(ew_cosine_block)(double *out, ptrdiff_t n, double offset, double scale, double ca,
                                             double sa, const double *cb, const double *sb)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double rise = 1.0 + (ca * cb[i] - sa * sb[i]);
        out[i] = offset + scale * (rise > 0.0 ? rise : 0.0);
    }
}
#endif

#undef EW_FN
#undef EW_CAT
#undef EW_CAT2
