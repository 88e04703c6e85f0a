/* The element-wise loops of a training step, shared by the per-op kernels (dense.pxi, activations.pxi,
 * optim.pxi) and the fused loop (train.pxi):
 *
 *   ew_bias_rows   Z (n x m) = b in every row, or Z += b (accumulate)
 *   ew_relu_fwd    H = Z where Z > 0, else 0 (NaN -> 0)
 *   ew_relu_bwd    dZ = dH where Z > 0, else 0 (relu'(0) = 0); dZ may be dH
 *   ew_add_into    Y = X, or Y += X (identity skips)
 *   ew_col_sums    db = dZ.sum(0) in double, row by row per column (the bias gradient)
 *   ew_sgd/ew_adam the optimizer updates over the flat buffer, in double, rounded once; UPDATE_* flags
 *
 * Each is compiled twice from one source: for the x86-64 baseline (SSE2, what wheels are built for) and
 * with __attribute__((target("avx2"))) (EW_AVX2); ew_select() picks one at run time, for these and for
 * loss_terms.h's batch losses (skipnet._kernels.set_simd).
 * AVX2 without FMA: a*b + c cannot be contracted into one rounding, so both versions compute the same
 * operations in the same order and agree to the last bit, NaN and infinity included. Suffixes: _f
 * float, _d double. Other compilers get the plain loops once.
 */
#ifndef SKIPNET_ELEMENTWISE_H
#define SKIPNET_ELEMENTWISE_H

#include <math.h>
#include <stddef.h>

enum { UPDATE_GRAD_NONZERO = 1, UPDATE_NONFINITE = 2 };

/* columns of dZ summed per block in ew_col_sums: a stack of doubles, so the sum runs row by row */
#define EW_SUM_BLOCK 256

#define EW_KERNELS(T, S, ATTR)                                                                        \
    ATTR static void ew_add_into_##S(T *Y, const T *X, ptrdiff_t size, int accumulate)                \
    {                                                                                                 \
        if (accumulate)                                                                               \
            for (ptrdiff_t i = 0; i < size; i++)                                                      \
                Y[i] = Y[i] + X[i];                                                                   \
        else                                                                                          \
            for (ptrdiff_t i = 0; i < size; i++)                                                      \
                Y[i] = X[i];                                                                          \
    }                                                                                                 \
    ATTR static void ew_bias_rows_##S(T *Z, const T *b, ptrdiff_t n, ptrdiff_t m, int accumulate)     \
    {                                                                                                 \
        for (ptrdiff_t i = 0; i < n; i++)                                                             \
            ew_add_into_##S(Z + i * m, b, m, accumulate);                                             \
    }                                                                                                 \
    ATTR static void ew_relu_fwd_##S(const T *Z, T *H, ptrdiff_t size)                                \
    {                                                                                                 \
        for (ptrdiff_t i = 0; i < size; i++) {                                                        \
            T z = Z[i];                                                                               \
            H[i] = z > 0 ? z : 0;                                                                     \
        }                                                                                             \
    }                                                                                                 \
    /* both operands loaded unconditionally: a select, not a branch, so the loop vectorises and      \
       random signs cost no mispredictions */                                                         \
    ATTR static void ew_relu_bwd_##S(const T *dH, const T *Z, T *dZ, ptrdiff_t size)                  \
    {                                                                                                 \
        for (ptrdiff_t i = 0; i < size; i++) {                                                        \
            T d = dH[i];                                                                              \
            dZ[i] = Z[i] > 0 ? d : 0;                                                                 \
        }                                                                                             \
    }                                                                                                 \
    ATTR static void ew_col_sums_##S(const T *dZ, T *db, ptrdiff_t n, ptrdiff_t m)                    \
    {                                                                                                 \
        double acc[EW_SUM_BLOCK];                                                                     \
        for (ptrdiff_t o0 = 0; o0 < m; o0 += EW_SUM_BLOCK) {                                          \
            ptrdiff_t width = m - o0 < EW_SUM_BLOCK ? m - o0 : EW_SUM_BLOCK;                          \
            for (ptrdiff_t o = 0; o < width; o++)                                                     \
                acc[o] = 0.0;                                                                         \
            for (ptrdiff_t i = 0; i < n; i++)                                                         \
                for (ptrdiff_t o = 0; o < width; o++)                                                 \
                    acc[o] += dZ[i * m + o0 + o];                                                     \
            for (ptrdiff_t o = 0; o < width; o++)                                                     \
                db[o0 + o] = (T)acc[o];                                                               \
        }                                                                                             \
    }                                                                                                 \
    /* torch.optim.SGD: d = g (+ wd p if wd != 0); b = d on the first step, else                     \
       momentum b + (1 - dampening) d; d = d + momentum b (nesterov) or b; p -= lr d.                 \
       Reads P, writes P_out (may be P). Without momentum and weight decay: ew_sgd_plain. */          \
    ATTR static int ew_sgd_##S(const T *P, T *P_out, const T *G, T *B, ptrdiff_t size, double lr,     \
                               double momentum, double dampening, double weight_decay, int nesterov,  \
                               int first_step)                                                        \
    {                                                                                                 \
        if (momentum == 0 && weight_decay == 0)                                                       \
            return ew_sgd_plain_##S(P, P_out, G, size, lr);                                           \
        int nonzero = 0, nonfinite = 0;                                                               \
        for (ptrdiff_t i = 0; i < size; i++) {                                                        \
            nonzero |= G[i] != 0;                                                                     \
            double d = (double)G[i];                                                                  \
            if (weight_decay != 0)                                                                    \
                d += weight_decay * P[i];                                                             \
            if (momentum != 0) {                                                                      \
                double buf = first_step ? d : momentum * B[i] + (1.0 - dampening) * d;               \
                B[i] = (T)buf;                                                                        \
                d = nesterov ? d + momentum * buf : buf;                                              \
            }                                                                                         \
            T p = (T)(P[i] - lr * d);                                                                 \
            nonfinite |= p - p != 0; /* true for NaN and +-inf only */                                \
            P_out[i] = p;                                                                             \
        }                                                                                             \
        return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);              \
    }                                                                                                 \
    /* torch.optim.Adam with L2 weight decay added to the gradient (if nonzero); bias-corrected        \
       moments. */                                                                                    \
    ATTR static int ew_adam_##S(const T *P, T *P_out, const T *G, T *M, T *V, ptrdiff_t size,         \
                                double step_size, double sqrt_bc2, double beta1, double beta2,        \
                                double eps, double weight_decay)                                      \
    {                                                                                                 \
        int nonzero = 0, nonfinite = 0;                                                               \
        for (ptrdiff_t i = 0; i < size; i++) {                                                        \
            nonzero |= G[i] != 0;                                                                     \
            double d = (double)G[i];                                                                  \
            if (weight_decay != 0)                                                                    \
                d += weight_decay * P[i];                                                             \
            double m = beta1 * M[i] + (1.0 - beta1) * d;                                              \
            double v = beta2 * V[i] + (1.0 - beta2) * d * d;                                          \
            M[i] = (T)m;                                                                              \
            V[i] = (T)v;                                                                              \
            T p = (T)(P[i] - step_size * m / (sqrt(v) / sqrt_bc2 + eps));                             \
            nonfinite |= p - p != 0;                                                                  \
            P_out[i] = p;                                                                             \
        }                                                                                             \
        return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);              \
    }

/* SGD without momentum or weight decay (the default, and the benchmarks'): p = P - lr g in double,
   rounded once; the UPDATE_* flags as ew_sgd's. */
#define EW_SGD_PLAIN(T, S, ATTR)                                                                      \
    ATTR static int ew_sgd_plain_##S(const T *P, T *P_out, const T *G, ptrdiff_t size, double lr)      \
    {                                                                                                 \
        int nonzero = 0, nonfinite = 0;                                                               \
        for (ptrdiff_t i = 0; i < size; i++) {                                                        \
            nonzero |= G[i] != 0;                                                                     \
            T p = (T)(P[i] - lr * (double)G[i]);                                                      \
            nonfinite |= p - p != 0;                                                                  \
            P_out[i] = p;                                                                             \
        }                                                                                             \
        return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);              \
    }

EW_SGD_PLAIN(float, f_base, )
EW_SGD_PLAIN(double, d_base, )
EW_KERNELS(float, f_base, )
EW_KERNELS(double, d_base, )

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define EW_HAVE_AVX2 1
#define EW_AVX2 __attribute__((target("avx2")))
#include <immintrin.h>

/* The float loop above with AVX2, spelled out: GCC widens each 8-float load with an extract before
   the conversions to double, which bound this loop; converting straight from memory, four floats at a
   time, halves its time (37,505 parameters, W2's: 4.5 -> 2.2 ns per 8). Same operations, same bits.
   The flags: p - p is +0 for finite p and NaN otherwise, so OR-ing its bits keeps any NaN. */
EW_AVX2 static int ew_sgd_plain_f_avx2(const float *P, float *P_out, const float *G, ptrdiff_t size,
                                       double lr)
{
    const __m256d rate = _mm256_set1_pd(lr);
    const __m256 zero = _mm256_setzero_ps();
    __m256 any_nonzero = zero, any_nan = zero;
    ptrdiff_t i = 0;
    for (; i + 8 <= size; i += 8) {
        __m256d lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(P + i)),
                                   _mm256_mul_pd(rate, _mm256_cvtps_pd(_mm_loadu_ps(G + i))));
        __m256d hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(P + i + 4)),
                                   _mm256_mul_pd(rate, _mm256_cvtps_pd(_mm_loadu_ps(G + i + 4))));
        /* != is unordered: a NaN gradient counts as nonzero, as in the loop above */
        any_nonzero = _mm256_or_ps(any_nonzero, _mm256_cmp_ps(_mm256_loadu_ps(G + i), zero, _CMP_NEQ_UQ));
        __m256 p = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
        any_nan = _mm256_or_ps(any_nan, _mm256_sub_ps(p, p));
        _mm256_storeu_ps(P_out + i, p);
    }
    int nonzero = _mm256_movemask_ps(any_nonzero) != 0;
    int nonfinite = _mm256_movemask_ps(_mm256_cmp_ps(any_nan, zero, _CMP_NEQ_UQ)) != 0;
    for (; i < size; i++) {
        nonzero |= G[i] != 0;
        float p = (float)(P[i] - lr * (double)G[i]);
        nonfinite |= p - p != 0;
        P_out[i] = p;
    }
    return (nonzero ? UPDATE_GRAD_NONZERO : 0) | (nonfinite ? UPDATE_NONFINITE : 0);
}
EW_SGD_PLAIN(double, d_avx2, EW_AVX2)
EW_KERNELS(float, f_avx2, EW_AVX2)
EW_KERNELS(double, d_avx2, EW_AVX2)
static int ew_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#define EW_PICK(NAME, S) (ew_avx2 ? NAME##_##S##_avx2 : NAME##_##S##_base)
#else
static int ew_cpu_has_avx2(void) { return 0; }
#define EW_PICK(NAME, S) NAME##_##S##_base
#endif

static int ew_avx2 = 0;

/* Use the AVX2 versions (want_avx2 = 1, if the CPU has AVX2) or the baseline. Returns 1 if AVX2. */
static int ew_select(int want_avx2)
{
    ew_avx2 = want_avx2 && ew_cpu_has_avx2();
    return ew_avx2;
}

/* The dispatching entry points: one branch per call, on loops of thousands of elements. EW_PICK also
   serves loss_terms.h's batch losses, so that set_simd chooses for every element-wise loop. */
#define EW_ENTRY_POINTS(T, S)                                                                         \
    static inline void ew_bias_rows_##S(T *Z, const T *b, ptrdiff_t n, ptrdiff_t m, int accumulate)   \
    {                                                                                                 \
        EW_PICK(ew_bias_rows, S)(Z, b, n, m, accumulate);                                             \
    }                                                                                                 \
    static inline void ew_relu_fwd_##S(const T *Z, T *H, ptrdiff_t size)                              \
    {                                                                                                 \
        EW_PICK(ew_relu_fwd, S)(Z, H, size);                                                          \
    }                                                                                                 \
    static inline void ew_relu_bwd_##S(const T *dH, const T *Z, T *dZ, ptrdiff_t size)                \
    {                                                                                                 \
        EW_PICK(ew_relu_bwd, S)(dH, Z, dZ, size);                                                     \
    }                                                                                                 \
    static inline void ew_add_into_##S(T *Y, const T *X, ptrdiff_t size, int accumulate)              \
    {                                                                                                 \
        EW_PICK(ew_add_into, S)(Y, X, size, accumulate);                                              \
    }                                                                                                 \
    static inline void ew_col_sums_##S(const T *dZ, T *db, ptrdiff_t n, ptrdiff_t m)                  \
    {                                                                                                 \
        EW_PICK(ew_col_sums, S)(dZ, db, n, m);                                                        \
    }                                                                                                 \
    static inline int ew_sgd_##S(const T *P, T *P_out, const T *G, T *B, ptrdiff_t size, double lr,   \
                                 double momentum, double dampening, double weight_decay,              \
                                 int nesterov, int first_step)                                        \
    {                                                                                                 \
        return EW_PICK(ew_sgd, S)(P, P_out, G, B, size, lr, momentum, dampening, weight_decay,        \
                                  nesterov, first_step);                                              \
    }                                                                                                 \
    static inline int ew_adam_##S(const T *P, T *P_out, const T *G, T *M, T *V, ptrdiff_t size,       \
                                  double step_size, double sqrt_bc2, double beta1, double beta2,      \
                                  double eps, double weight_decay)                                    \
    {                                                                                                 \
        return EW_PICK(ew_adam, S)(P, P_out, G, M, V, size, step_size, sqrt_bc2, beta1, beta2, eps,   \
                                   weight_decay);                                                     \
    }

EW_ENTRY_POINTS(float, f)
EW_ENTRY_POINTS(double, d)

#endif
