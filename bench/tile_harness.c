/* The register tiles of csrc/tile.h alone, against OpenBLAS sgemm called the way csrc/blas.pxi calls it.
 *
 *   cc -O3 -I csrc bench/tile_harness.c -ldl -o /tmp/tile_harness
 *   /tmp/tile_harness [path/to/libopenblas.so [sgemm symbol]]
 *
 * For each layer shape (batch n, fan-in k, fan-out m) and each product of a dense layer -- forward
 * X @ W.T, weight gradient dZ.T @ X, input gradient dZ @ W -- prints GFLOP/s (2 m n k per product) of
 * the tiles of each SIMD level the CPU runs (avx512 only on an AVX-512 CPU; generic512, the AVX-512
 * source on SSE2, for reference) and, when a BLAS library is given (e.g. SciPy's bundled
 * libscipy_openblas-*.so with symbol scipy_sgemm_), its sgemm on one thread; "-" for a level the CPU
 * cannot run. Float32, the best of 15
 * rounds of about 2 ms each, the implementations interleaved within each round. No accuracy checks
 * here: tests/test_kernels.py does those. Then, for the same shapes at the CPU's best level, the input
 * gradient into a ReLU layer with a bias: the product and a pass after it, against the tiles' epilogue
 * (tests/test_simd_levels.py checks that both give the same bits).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic ignored "-Wunused-function"
#include "tile.h"
#include "elementwise.h"

typedef void (*sgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const float *, const float *, const int *, const float *, const int *,
                         const float *, float *, const int *);

static sgemm_fn blas_sgemm;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* One product (m x n) = A (m x k) @ B (k x n) with element strides, as matmul() in blas.pxi sees it. */
typedef struct {
    int m, n, k;
    const float *A;
    ptrdiff_t a_rs, a_cs;
    const float *B;
    ptrdiff_t b_rs, b_cs;
    float *C;
    ptrdiff_t ldc;
} product;

static void run_tile(const product *p, tile_sgemm_fn f)
{
    f(p->m, p->n, p->k, p->A, p->a_rs, p->a_cs, p->B, p->b_rs, p->b_cs, p->C, p->ldc, 0, NULL, NULL, 0, NULL, 0,
      NULL, 0, NULL);
}

static void run_blas(const product *p)
{
    /* row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T */
    char ta = p->a_cs == 1 ? 'n' : 't', tb = p->b_cs == 1 ? 'n' : 't';
    int lda = (int)(p->a_cs == 1 ? p->a_rs : p->a_cs), ldb = (int)(p->b_cs == 1 ? p->b_rs : p->b_cs);
    int ldc = (int)p->ldc;
    float one = 1, zero = 0;
    blas_sgemm(&tb, &ta, &p->n, &p->m, &p->k, &one, p->B, &ldb, p->A, &lda, &zero, p->C, &ldc);
}

/* The implementations, in the columns' order; BLAS last. */
static const char *impl_names[] = {"avx512", "avx2", "g512", "sse2", "blas"};
static const tile_sgemm_fn tiles[] = {tile_sgemm_avx512, tile_sgemm_avx2, tile_sgemm_g512, tile_sgemm_base};
static const enum simd_level impl_levels[] = {SIMD_AVX512, SIMD_AVX2, SIMD_GENERIC512, SIMD_BASELINE};
#define N_TILES 4

/* Seconds per call of implementation `which` (an index of impl_names), reps calls. */
static double time_one(const product *p, int which, int reps)
{
    double t0 = now();
    for (int r = 0; r < reps; r++) {
        if (which < N_TILES)
            run_tile(p, tiles[which]);
        else
            run_blas(p);
    }
    return (now() - t0) / reps;
}

static float *random_floats(size_t count)
{
    float *x = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < count; i++)
        x[i] = (float)rand() / RAND_MAX - 0.5f;
    return x;
}

/* The input gradient into a ReLU layer with a bias, at the CPU's best level: dX = dZ @ W, then the ReLU's
   backward and the bias gradient as a pass after the product (ew_relu_bwd_col_sums), against both in
   the tiles' epilogue (mask and colsum); microseconds per call, the best of 15 rounds, interleaved. */
static void relu_backward_table(const int (*shapes)[3], size_t count)
{
    static double colsum[4096];
    simd_select(simd_cpu_level());
    printf("\ndX = dZ @ W into a ReLU layer, with its bias gradient (us per call):\n");
    printf("%5s %5s %5s %12s %12s\n", "n", "k", "m", "then a pass", "epilogue");
    for (size_t s = 0; s < count; s++) {
        int n = shapes[s][0], k = shapes[s][1], m = shapes[s][2];
        if (k > 4096)
            continue;
        float *dZ = random_floats((size_t)n * m), *W = random_floats((size_t)m * k);
        float *Z = random_floats((size_t)n * k), *dX = random_floats((size_t)n * k), *db = random_floats(k);
        double best[2] = {0, 0};
        int reps = 0; /* the calls in about 2 ms */
        for (double t0 = now(); now() - t0 < 2e-3; reps++)
            tile_sgemm(n, k, m, dZ, m, 1, W, k, 1, dX, k, 0, NULL, NULL, 0, NULL, 0, NULL, 0, NULL);
        for (int round = 0; round < 15; round++)
            for (int v = 0; v < 2; v++) {
                double t0 = now();
                for (int r = 0; r < reps; r++) {
                    if (v == 0) {
                        tile_sgemm(n, k, m, dZ, m, 1, W, k, 1, dX, k, 0, NULL, NULL, 0, NULL, 0, NULL, 0, NULL);
                        ew_relu_bwd_col_sums_f(dX, Z, dX, db, n, k);
                    } else {
                        memset(colsum, 0, (size_t)k * sizeof(double));
                        tile_sgemm(n, k, m, dZ, m, 1, W, k, 1, dX, k, 0, NULL, NULL, 0, NULL, 0, Z, k, colsum);
                        for (int j = 0; j < k; j++)
                            db[j] = (float)colsum[j];
                    }
                }
                double t = (now() - t0) / reps;
                if (best[v] == 0 || t < best[v])
                    best[v] = t;
            }
        printf("%5d %5d %5d %12.2f %12.2f\n", n, k, m, best[0] * 1e6, best[1] * 1e6);
        free(dZ);
        free(W);
        free(Z);
        free(dX);
        free(db);
    }
}

int main(int argc, char **argv)
{
    static const int shapes[][3] = {{128, 64, 64}, {32, 16, 16}, {64, 128, 128}, {64, 32, 128},
                                    {256, 784, 64}, {256, 1024, 1024}};
    static const char *names[] = {"X@W.T", "dZ.T@X", "dZ@W"};
    if (argc > 1) {
        void *lib = dlopen(argv[1], RTLD_NOW);
        if (!lib) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        blas_sgemm = (sgemm_fn)dlsym(lib, argc > 2 ? argv[2] : "sgemm_");
        void (*set_threads)(int) = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
        if (!set_threads)
            set_threads = (void (*)(int))dlsym(lib, "scipy_openblas_set_num_threads");
        if (set_threads)
            set_threads(1);
        if (!blas_sgemm) {
            fprintf(stderr, "no sgemm symbol: %s\n", dlerror());
            return 1;
        }
    }
    int runs[N_TILES + 1], impls = 0; /* the implementations this CPU runs */
    for (int i = 0; i < N_TILES; i++)
        if (simd_level_available(impl_levels[i]))
            runs[impls++] = i;
    if (blas_sgemm)
        runs[impls++] = N_TILES;
    printf("%5s %5s %5s %-7s", "n", "k", "m", "product");
    for (int i = 0; i <= N_TILES; i++)
        printf(" %9s", impl_names[i]);
    printf("   (GFLOP/s)\n");
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int n = shapes[s][0], k = shapes[s][1], m = shapes[s][2];
        float *X = random_floats((size_t)n * k), *W = random_floats((size_t)m * k);
        float *dZ = random_floats((size_t)n * m), *out = random_floats((size_t)(n > m ? n : m) * (k > m ? k : m));
        product forms[3] = {
            {n, m, k, X, k, 1, W, 1, k, out, m},   /* Z = X @ W.T */
            {m, k, n, dZ, 1, m, X, k, 1, out, k},  /* dW = dZ.T @ X */
            {n, k, m, dZ, m, 1, W, k, 1, out, k},  /* dX = dZ @ W */
        };
        for (int f = 0; f < 3; f++) {
            double flops = 2.0 * n * k * m, best[N_TILES + 1] = {0};
            int reps = 1;
            while (time_one(&forms[f], runs[0], reps) * reps < 2e-3)
                reps *= 2;
            for (int round = 0; round < 15; round++)
                for (int i = 0; i < impls; i++) {
                    int which = runs[(i + round) % impls];
                    double t = time_one(&forms[f], which, reps);
                    if (best[which] == 0 || t < best[which])
                        best[which] = t;
                }
            printf("%5d %5d %5d %-7s", n, k, m, names[f]);
            for (int i = 0; i <= N_TILES; i++) {
                if (best[i] > 0)
                    printf(" %9.1f", flops / best[i] * 1e-9);
                else
                    printf(" %9s", "-");
            }
            printf("\n");
        }
        free(X);
        free(W);
        free(dZ);
        free(out);
    }
    relu_backward_table(shapes, sizeof(shapes) / sizeof(shapes[0]));
    return 0;
}
