/* One instantiation of the register-tiled small product; included by tile.h once per (type, ISA).
 *
 * The including file defines:
 *   TILE_T       element type (float or double)
 *   TILE_VBYTES  vector width in bytes (16: SSE2, 32: AVX2)
 *   TILE_NAME    name of the public function to define
 *   TILE_TARGET  function attribute selecting the ISA (empty for the baseline)
 *
 * C (m x n, row stride ldc) = A @ B, or C += A @ B when accumulate. Element (i, p) of A is
 * A[i*a_rs + p*a_cs] and element (p, j) of B is B[p*b_rs + j*b_cs], so one routine serves the three
 * products of a dense layer (X @ W.T, dZ.T @ X, dZ @ W) without transposing anything in memory.
 *
 * A tile of TILE_MR rows x TILE_NR columns of C lives in registers (TILE_NV vectors per row); each
 * step over p broadcasts TILE_MR scalars of A and multiplies them into TILE_NV vectors of one row of B.
 * B is read in place when its rows are contiguous and the panel is full; otherwise (transposed B,
 * the last narrow panel) a kc x TILE_NR panel is first packed, zero-padded, into a stack buffer.
 * Sums run over p in order, in the element type, like BLAS.
 */

#define TILE_CAT2(a, b) a##b
#define TILE_CAT(a, b) TILE_CAT2(a, b)
#define TILE_FN(suffix) TILE_CAT(TILE_NAME, suffix)

#define TILE_VW (TILE_VBYTES / (int)sizeof(TILE_T))
#define TILE_MR 4
#define TILE_NV 2
#define TILE_NR (TILE_VW * TILE_NV)
#define TILE_KC 256

typedef TILE_T TILE_FN(_vec) __attribute__((vector_size(TILE_VBYTES)));

/* One MR' x NR tile of C over p in [0, kc); mr (<= TILE_MR) is a constant after inlining. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_micro)(const int mr, int kc, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
                const TILE_T *B, ptrdiff_t b_rs, TILE_T *C, ptrdiff_t ldc, int nr, int accumulate)
{
    typedef TILE_FN(_vec) vec;
    vec acc[TILE_MR][TILE_NV];
    for (int i = 0; i < TILE_MR; i++)
        for (int v = 0; v < TILE_NV; v++)
            acc[i][v] = (vec){0};
    for (int p = 0; p < kc; p++) {
        vec b[TILE_NV];
        for (int v = 0; v < TILE_NV; v++)
            memcpy(&b[v], B + p * b_rs + v * TILE_VW, sizeof(vec));
        for (int i = 0; i < mr; i++) {
            vec a = (vec){0} + A[i * a_rs + p * a_cs];
            for (int v = 0; v < TILE_NV; v++)
                acc[i][v] += a * b[v];
        }
    }
    if (nr == TILE_NR) {
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < TILE_NV; v++) {
                TILE_T *c = C + i * ldc + v * TILE_VW;
                if (accumulate) {
                    vec old;
                    memcpy(&old, c, sizeof(vec));
                    acc[i][v] += old;
                }
                memcpy(c, &acc[i][v], sizeof(vec));
            }
    } else {
        TILE_T tmp[TILE_NR];
        for (int i = 0; i < mr; i++) {
            memcpy(tmp, acc[i], sizeof(tmp));
            TILE_T *c = C + i * ldc;
            for (int j = 0; j < nr; j++)
                c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
        }
    }
}

/* C[i] (+)= dot(A row i, b) for a column C, contiguous rows of A and a contiguous b: four rows at a
   time in vectors along p, each row's lanes summed at the end. */
static TILE_TARGET void
TILE_FN(_dot_rows)(int m, int k, const TILE_T *A, ptrdiff_t a_rs, const TILE_T *b, TILE_T *C,
                   ptrdiff_t ldc, int accumulate)
{
    typedef TILE_FN(_vec) vec;
    int i = 0;
    for (; i < m; i += 4) {
        int rows = m - i < 4 ? m - i : 4;
        vec acc[4] = {{0}, {0}, {0}, {0}};
        TILE_T tail[4] = {0, 0, 0, 0};
        int p = 0;
        for (; p + TILE_VW <= k; p += TILE_VW) {
            vec bv, av;
            memcpy(&bv, b + p, sizeof(vec));
            for (int r = 0; r < rows; r++) {
                memcpy(&av, A + (i + r) * a_rs + p, sizeof(vec));
                acc[r] += av * bv;
            }
        }
        for (; p < k; p++)
            for (int r = 0; r < rows; r++)
                tail[r] += A[(i + r) * a_rs + p] * b[p];
        for (int r = 0; r < rows; r++) {
            TILE_T lanes[TILE_VW];
            memcpy(lanes, &acc[r], sizeof(vec));
            for (int w = TILE_VW / 2; w >= 1; w /= 2)  /* pairwise: short dependency chains */
                for (int l = 0; l < w; l++)
                    lanes[l] += lanes[l + w];
            TILE_T s = lanes[0] + tail[r];
            C[(i + r) * ldc] = accumulate ? C[(i + r) * ldc] + s : s;
        }
    }
}

/* All row tiles of one column panel: full tiles of TILE_MR rows, then the remaining rows. */
static TILE_TARGET void
TILE_FN(_panel)(int m, int kc, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
                const TILE_T *B, ptrdiff_t b_rs, TILE_T *C, ptrdiff_t ldc, int nr, int accumulate)
{
    int i = 0;
    for (; i + TILE_MR <= m; i += TILE_MR)
        TILE_FN(_micro)(TILE_MR, kc, A + i * a_rs, a_rs, a_cs, B, b_rs, C + i * ldc, ldc, nr, accumulate);
    switch (m - i) {
    case 3: TILE_FN(_micro)(3, kc, A + i * a_rs, a_rs, a_cs, B, b_rs, C + i * ldc, ldc, nr, accumulate); break;
    case 2: TILE_FN(_micro)(2, kc, A + i * a_rs, a_rs, a_cs, B, b_rs, C + i * ldc, ldc, nr, accumulate); break;
    case 1: TILE_FN(_micro)(1, kc, A + i * a_rs, a_rs, a_cs, B, b_rs, C + i * ldc, ldc, nr, accumulate); break;
    default: break;
    }
}

static TILE_TARGET void
TILE_NAME(int m, int n, int k, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
          const TILE_T *B, ptrdiff_t b_rs, ptrdiff_t b_cs, TILE_T *C, ptrdiff_t ldc, int accumulate)
{
    TILE_T packed[TILE_KC * TILE_NR];
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        if (!accumulate)
            for (int i = 0; i < m; i++)
                memset(C + i * ldc, 0, (size_t)n * sizeof(TILE_T));
        return;
    }
    if (n == 1 && a_cs == 1 && b_rs == 1) {
        TILE_FN(_dot_rows)(m, k, A, a_rs, B, C, ldc, accumulate);
        return;
    }
    if (n == 1 && m > 1 && ldc == 1) {
        /* A matrix-vector product: as C.T = B.T @ A.T (the same memory when C is a column), one row
           of C.T runs across full vectors instead of one lane of each tile. */
        TILE_NAME(1, m, k, B, 0, b_rs, A, a_cs, a_rs, C, 0, accumulate);
        return;
    }
    for (int p0 = 0; p0 < k; p0 += TILE_KC) {
        int kc = k - p0 < TILE_KC ? k - p0 : TILE_KC;
        int acc = accumulate || p0 > 0;
        const TILE_T *Ap = A + p0 * a_cs;
        for (int j0 = 0; j0 < n; j0 += TILE_NR) {
            int nr = n - j0 < TILE_NR ? n - j0 : TILE_NR;
            const TILE_T *Bp = B + p0 * b_rs + j0 * b_cs;
            if (b_cs == 1 && nr == TILE_NR) {
                TILE_FN(_panel)(m, kc, Ap, a_rs, a_cs, Bp, b_rs, C + j0, ldc, nr, acc);
            } else {
                /* column by column: a transposed B (b_rs == 1) is then read contiguously */
                for (int j = 0; j < nr; j++)
                    for (int p = 0; p < kc; p++)
                        packed[p * TILE_NR + j] = Bp[p * b_rs + j * b_cs];
                for (int p = 0; nr < TILE_NR && p < kc; p++)
                    for (int j = nr; j < TILE_NR; j++)
                        packed[p * TILE_NR + j] = 0;
                TILE_FN(_panel)(m, kc, Ap, a_rs, a_cs, packed, TILE_NR, C + j0, ldc, nr, acc);
            }
        }
    }
}

#undef TILE_VW
#undef TILE_MR
#undef TILE_NV
#undef TILE_NR
#undef TILE_KC
#undef TILE_FN
#undef TILE_CAT
#undef TILE_CAT2
