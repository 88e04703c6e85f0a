/* One instantiation of the register-tiled small product; included by tile.h once per (type, ISA).
 *
 * The including file defines (all undefined again at the end of this file):
 *   TILE_T       element type (float or double)
 *   TILE_IT      the integer type of the same size (shuffle masks), TILE_TBYTES its size in bytes
 *   TILE_VBYTES  vector width in bytes (16: SSE2, 32: AVX2, 64: AVX-512 and generic512)
 *   TILE_NAME    name of the public function to define
 *   TILE_TARGET  function attribute selecting the ISA (empty for the baseline target)
 *   TILE_MR      rows of the register tile (1..16): 6 for 16 vector registers, 12 for 32 (below)
 *   TILE_KC      rows of B per packed block
 *   TILE_PUNROLL unroll factor of the loop over p: 4; 1 for generic512, whose 64-byte vectors become
 *                four SSE2 operations each (the unrolled copies only made the build slower)
 *
 * C (m x n, row stride ldc) = A @ B, or C += A @ B when accumulate, or A @ B + bias (a row added to
 * every row) when a bias is given; and H = relu(C) when H is given. Element (i, p) of A is
 * A[i*a_rs + p*a_cs] and element (p, j) of B is B[p*b_rs + j*b_cs], so one routine serves the three
 * products of a dense layer (X @ W.T, dZ.T @ X, dZ @ W) without transposing anything in memory.
 *
 * The method (a packed micro-kernel, as in BLIS / OpenBLAS, sized for small products):
 * - A block of TILE_MR rows x TILE_NR = 2 vectors of C lives in 2 TILE_MR vector registers; each step
 *   over p loads two vectors of one row of B, broadcasts TILE_MR scalars of A and does 2 TILE_MR
 *   multiply-adds. The loop over p is unrolled by 4 (TILE_PUNROLL).
 *   16 registers (SSE2, AVX2): TILE_MR = 6, 12 accumulators + 2 of B + 1 broadcast = 15 of 16.
 *   32 registers (AVX-512): TILE_MR = 12, 24 accumulators + 2 of B + 1 broadcast = 27 of 32, the
 *   shape of BLIS's skx sgemm kernel (32 x 12: two zmm of one operand times 12 broadcasts) and the
 *   24-accumulator kernels of OpenBLAS for Skylake-X. It doubles the multiply-adds per load of B
 *   against 6 rows (2 x 12 per 14 loads, where 16 accumulators of an 8-row tile would give 2 x 8 per
 *   10) and keeps 24 independent chains in flight, enough for two FMA ports of latency 4; 14 rows (28
 *   accumulators) would leave no spare register for the compiler. The generic512 level runs the same
 *   tile on SSE2 (it spills; it is there for tests only).
 * - B is cut into blocks of kc rows (kc <= TILE_KC) and nc columns: a block is packed once, as kc x
 *   TILE_NR panels zero-padded on the right, into a stack buffer of TILE_BUF elements, and every row
 *   block of C is then computed against it. TILE_KC is 256 at every level: a 6 x 16 float tile reads
 *   a 16 KiB panel of B and 6 KiB of A per block; the 12 x 32 tile's 32 KiB block holds one panel of
 *   256 rows. kc = 128 (two panels of 128 rows) was the first estimate for 64-byte vectors; on Zen 4,
 *   256 ran W3's large products 1-5% faster and the others within the noise (bench/README.md).
 *   Rows of B already contiguous (b_cs == 1) are read in place instead, a last panel of exactly one
 *   vector too; only a last panel of another width is packed then. A transposed B (the forward's
 *   W.T) is packed by in-register transposes of TILE_VW x TILE_VW blocks (GCC shuffles), not element
 *   by element; the last columns of a layer narrower than a vector through a zero-padded copy of
 *   their rows.
 * - The epilogue: the bias is added, and the ReLU taken, as a block of C leaves the registers (the
 *   bias in the first block of kc, the ReLU in the last), so the forward writes Z and H in one pass.
 *   In the backward, the input gradient dH = dZ @ W leaves as the layer below's dZ (masked where its
 *   z <= 0) with that layer's bias gradient summed on the way out (in double, row after row, as
 *   ew_relu_bwd_col_sums sums: the same bits), so no pass over dH follows the product.
 * - A is read in place, either row-contiguous (X, dZ: TILE_MR rows streamed) or transposed (dZ.T:
 *   TILE_MR consecutive scalars per p); its rows stay in L1 across the panels of one B block. Packing A
 *   as well cost more than it gained at the sizes this routine serves (below a few million m*n*k).
 * - Edges: the last rows run the same kernel on blocks of 8, 4, 2 or 1 rows (_micro_any); a panel of at
 *   most one vector of columns uses one vector per row; narrow panels are stored through a small buffer.
 *   A forward into fewer than 16 units (an output layer) over a k of 8 vectors or more runs as dot
 *   products along p instead (_dots), as a product into one column always did: a 12 x 16 tile filled
 *   10 or 1 columns wide ran at 1.5-4x BLAS's time there.
 * Sums run over p in order within a block of kc, in the element type, like BLAS; blocks of kc are
 * added into C one after the other (the dot products: lane by lane along p, the lanes then pairwise).
 */

#define TILE_CAT2(a, b) a##b
#define TILE_CAT(a, b) TILE_CAT2(a, b)
#define TILE_FN(suffix) TILE_CAT(TILE_NAME, suffix)

#ifndef TILE_UNROLL
#define TILE_STR(x) #x
#define TILE_PRAGMA(x) _Pragma(TILE_STR(x))
/* #pragma GCC unroll n with n a macro (TILE_MR): expanded before it is quoted */
#define TILE_UNROLL(n) TILE_PRAGMA(GCC unroll n)
#endif

#define TILE_VW (TILE_VBYTES / (int)sizeof(TILE_T))
#define TILE_NV 2
#define TILE_NR (TILE_VW * TILE_NV)
/* packed B block on the stack: 32 KiB (L1-sized); nc = TILE_BUF / kc rounded down to panels */
#define TILE_BUF (32768 / (int)sizeof(TILE_T))

typedef TILE_T TILE_FN(_vec) __attribute__((vector_size(TILE_VBYTES)));

/* x in every lane, as one broadcast: x - 0 is x for every x (so the subtraction folds away), while
   (vec){0} + x would stay an addition since +0 + -0 is +0 */
#define TILE_SPLAT(x) ((x) - (TILE_FN(_vec)){0})

/* acc[i][v] += the vector at row i, column block v of M (rows ld apart), for mr rows of nv vectors
   (constants after inlining): a full-width block's epilogue adding C (accumulate) or a residual. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_add_rows)(TILE_FN(_vec) acc[TILE_MR][TILE_NV], const int mr, const int nv, const TILE_T *M,
                   ptrdiff_t ld)
{
    TILE_UNROLL(TILE_MR)
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            TILE_FN(_vec) row;
            memcpy(&row, M + i * ld + v * TILE_VW, sizeof(row));
            acc[i][v] += row;
        }
}

/* The epilogue of a panel narrower than its vectors (nr < nv * TILE_VW columns), element by element
   from the block's values acc (mr x nr, rows TILE_NR apart); the same operations as the full-width
   epilogue in _micro. Kept out of line: it is an edge, and as one copy per instantiation instead of one
   per row count it kept the auto-vectoriser (AVX-512's masked loops) from multiplying the build time. */
static __attribute__((noinline)) TILE_TARGET void
TILE_FN(_store_narrow)(int mr, int nr, const TILE_T *acc, TILE_T *C, ptrdiff_t ldc, int accumulate,
                       const TILE_T *bias, const TILE_T *res, ptrdiff_t ldres, TILE_T *H, ptrdiff_t ldh,
                       const TILE_T *mask, ptrdiff_t ldmask, double *colsum)
{
    for (int i = 0; i < mr; i++) {
        const TILE_T *a = acc + i * TILE_NR;
        TILE_T *c = C + i * ldc;
        for (int j = 0; j < nr; j++) {
            TILE_T z = accumulate ? c[j] + a[j] : bias ? a[j] + bias[j] : a[j];
            if (res)
                z = z + res[i * ldres + j];
            if (mask)
                z = mask[i * ldmask + j] > 0 ? z : 0;
            c[j] = z;
            if (H)
                H[i * ldh + j] = z > 0 ? z : 0;
            if (colsum)
                colsum[j] += z;
        }
    }
}

/* One mr x (nv vectors) block of C over p in [0, kc); mr (<= TILE_MR) and nv (<= TILE_NV) are constants
   after inlining. B points at row 0 of the panel, rows b_rs apart; nr (<= nv vectors) columns of C are
   written. bias (the panel's nr entries, or NULL) is added when not accumulating; then res (or NULL,
   rows ldres apart: a residual, the block's own rows) is added; H (or NULL), rows ldh apart, gets the
   ReLU of the block. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_micro)(const int mr, const int nv, int kc, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
                const TILE_T *B, ptrdiff_t b_rs, TILE_T *C, ptrdiff_t ldc, int nr, int accumulate,
                const TILE_T *bias, const TILE_T *res, ptrdiff_t ldres, TILE_T *H, ptrdiff_t ldh,
                const TILE_T *mask, ptrdiff_t ldmask, double *colsum)
{
    typedef TILE_FN(_vec) vec;
    vec acc[TILE_MR][TILE_NV];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++)
            acc[i][v] = (vec){0};
    TILE_UNROLL(TILE_PUNROLL)
    for (int p = 0; p < kc; p++) {
        vec b[TILE_NV];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            memcpy(&b[v], B + v * TILE_VW, sizeof(vec));
        TILE_UNROLL(TILE_MR)
        for (int i = 0; i < mr; i++) {
            vec a = TILE_SPLAT(A[i * a_rs]);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[i][v] += a * b[v];
        }
        A += a_cs;
        B += b_rs;
    }
    /* the epilogue: C = acc (+ C when accumulate, else + bias when given) (+ res when given), masked
       where mask <= 0 when given, and H = relu(C) when given (as ew_relu_fwd: +0 for C <= 0 and NaN);
       colsum += C's rows when given */
    if (nr == nv * TILE_VW) {
        /* each case its own fully unrolled loop: with the branches inside, GCC kept the loops */
        if (accumulate) {
            TILE_FN(_add_rows)(acc, mr, nv, C, ldc);
        } else if (bias) {
            vec bv[TILE_NV];
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                memcpy(&bv[v], bias + v * TILE_VW, sizeof(vec));
            TILE_UNROLL(TILE_MR)
            for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++)
                    acc[i][v] += bv[v];
        }
        if (res)
            TILE_FN(_add_rows)(acc, mr, nv, res, ldres);
        if (mask) /* as ew_relu_bwd: the value where the mask's z > 0, else +0 (z NaN too) */
            TILE_UNROLL(TILE_MR)
            for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++) {
                    vec z;
                    memcpy(&z, mask + i * ldmask + v * TILE_VW, sizeof(vec));
                    acc[i][v] = (vec)((__typeof__(z > 0))acc[i][v] & (z > 0));
                }
        TILE_UNROLL(TILE_MR)
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                memcpy(C + i * ldc + v * TILE_VW, &acc[i][v], sizeof(vec));
        if (colsum) {
            /* the block's rows added one after the other, in double, as ew_col_sums adds them */
            typedef double dvec __attribute__((vector_size(TILE_VW * sizeof(double))));
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) {
                dvec s;
                memcpy(&s, colsum + v * TILE_VW, sizeof(s));
                TILE_UNROLL(TILE_MR)
                for (int i = 0; i < mr; i++)
                    s += __builtin_convertvector(acc[i][v], dvec);
                memcpy(colsum + v * TILE_VW, &s, sizeof(s));
            }
        }
        if (H) {
            TILE_UNROLL(TILE_MR)
            for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++) {
                    vec h = (vec)((__typeof__(acc[i][v] > 0))acc[i][v] & (acc[i][v] > 0));
                    memcpy(H + i * ldh + v * TILE_VW, &h, sizeof(vec));
                }
        }
    } else {
        TILE_T tmp[TILE_MR * TILE_NR];
        for (int i = 0; i < mr; i++)
            memcpy(tmp + i * TILE_NR, acc[i], (size_t)nv * sizeof(vec));
        TILE_FN(_store_narrow)(mr, nr, tmp, C, ldc, accumulate, bias, res, ldres, H, ldh, mask, ldmask,
                               colsum);
    }
}

/* The micro-kernel for mr rows (1..TILE_MR) of one panel of nr columns, as blocks of the row counts
   instantiated: the full tile, then powers of two, largest first (an edge of 5 rows runs as 4 + 1).
   Each row of C is its own sum, so grouping the rows changes no bit, and colsum still receives the
   rows in order. Every power-of-two m leaves an edge of 2, 4 or 8 rows, one block; a case for each
   row count up to TILE_MR (12 for 64-byte vectors) made these instantiations the bulk of the build. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_micro_any)(int mr, int kc, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs, const TILE_T *B,
                    ptrdiff_t b_rs, TILE_T *C, ptrdiff_t ldc, int nr, int accumulate, const TILE_T *bias,
                    const TILE_T *res, ptrdiff_t ldres, TILE_T *H, ptrdiff_t ldh, const TILE_T *mask,
                    ptrdiff_t ldmask, double *colsum)
{
#define TILE_MICRO_ROWS(R)                                                                           \
    if (left >= R) {                                                                                 \
        if (nr > TILE_VW)                                                                            \
            TILE_FN(_micro)(R, 2, kc, Ai, a_rs, a_cs, B, b_rs, Ci, ldc, nr, accumulate, bias, Ri, ldres, \
                            Hi, ldh, Mi, ldmask, colsum);                                            \
        else                                                                                         \
            TILE_FN(_micro)(R, 1, kc, Ai, a_rs, a_cs, B, b_rs, Ci, ldc, nr, accumulate, bias, Ri, ldres, \
                            Hi, ldh, Mi, ldmask, colsum);                                            \
        i += R;                                                                                      \
        continue;                                                                                    \
    }
    for (int i = 0; i < mr;) {
        const int left = mr - i;
        const TILE_T *Ai = A + i * a_rs, *Ri = res ? res + i * ldres : NULL;
        const TILE_T *Mi = mask ? mask + i * ldmask : NULL;
        TILE_T *Ci = C + i * ldc, *Hi = H ? H + i * ldh : NULL;
        TILE_MICRO_ROWS(TILE_MR)
#if TILE_MR > 8
        TILE_MICRO_ROWS(8)
#endif
#if TILE_MR > 4
        TILE_MICRO_ROWS(4)
#endif
#if TILE_MR > 2
        TILE_MICRO_ROWS(2)
#endif
        TILE_MICRO_ROWS(1)
    }
#if TILE_MR > 16
#error "TILE_MR above 16: add a block of 16 rows to _micro_any"
#endif
#undef TILE_MICRO_ROWS
}

/* _block's loops for row blocks of MR rows (a constant after inlining: TILE_MR, or 8, see _block). */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_row_blocks)(const int MR, int m, int kc, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
                     const TILE_T *B, ptrdiff_t b_rs, ptrdiff_t panel_stride, int ncols, TILE_T *C,
                     ptrdiff_t ldc, int accumulate, const TILE_T *bias, const TILE_T *res, ptrdiff_t ldres,
                     TILE_T *H, ptrdiff_t ldh, const TILE_T *mask, ptrdiff_t ldmask, double *colsum)
{
    for (int i = 0; i < m; i += MR) {
        int mr = m - i < MR ? m - i : MR;
        const TILE_T *Ai = A + i * a_rs;
        TILE_T *Ci = C + i * ldc, *Hi = H ? H + i * ldh : NULL;
        const TILE_T *Ri = res ? res + i * ldres : NULL, *Mi = mask ? mask + i * ldmask : NULL;
        for (int j = 0, q = 0; j < ncols; j += TILE_NR, q++) {
            int nr = ncols - j < TILE_NR ? ncols - j : TILE_NR;
            const TILE_T *bj = bias ? bias + j : NULL;
            TILE_T *Hij = Hi ? Hi + j : NULL;
            const TILE_T *Rij = Ri ? Ri + j : NULL, *Mij = Mi ? Mi + j : NULL;
            double *sj = colsum ? colsum + j : NULL;
            if (mr == MR && nr == TILE_NR)
                TILE_FN(_micro)(MR, TILE_NV, kc, Ai, a_rs, a_cs, B + q * panel_stride, b_rs,
                                Ci + j, ldc, TILE_NR, accumulate, bj, Rij, ldres, Hij, ldh, Mij, ldmask, sj);
            else
                TILE_FN(_micro_any)(mr, kc, Ai, a_rs, a_cs, B + q * panel_stride, b_rs, Ci + j, ldc, nr,
                                    accumulate, bj, Rij, ldres, Hij, ldh, Mij, ldmask, sj);
        }
    }
}

/* C (m x ncols) (+)= A (m x kc) @ one block of B (kc x ncols) laid out as panels of TILE_NR columns,
   panel q starting at B + q*panel_stride with rows b_rs apart. Row blocks outer, panels inner: the
   TILE_MR rows of A are reused from L1 across the panels. Rows of A read in place a multiple of 4 KiB
   apart all fall in one set of L1, which has 8 ways on the CPUs these tiles serve: 12 of them evict
   one another at every step of p, so such an A (X or dZ of a 1024-wide float layer) runs in blocks of
   8 rows (Zen 4, 256 x 1024 x 1024: X @ W.T 97-100 -> 108-109 GFLOP/s, dZ @ W 96 -> 102). Each row of
   C is its own sum: the blocks' height changes no bit. */
static TILE_TARGET void
TILE_FN(_block)(int m, int kc, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs, const TILE_T *B,
                ptrdiff_t b_rs, ptrdiff_t panel_stride, int ncols, TILE_T *C, ptrdiff_t ldc,
                int accumulate, const TILE_T *bias, const TILE_T *res, ptrdiff_t ldres, TILE_T *H,
                ptrdiff_t ldh, const TILE_T *mask, ptrdiff_t ldmask, double *colsum)
{
#if TILE_MR > 8
    if (a_cs == 1 && a_rs * (ptrdiff_t)sizeof(TILE_T) % 4096 == 0) {
        TILE_FN(_row_blocks)(8, m, kc, A, a_rs, a_cs, B, b_rs, panel_stride, ncols, C, ldc, accumulate, bias,
                             res, ldres, H, ldh, mask, ldmask, colsum);
        return;
    }
#endif
    TILE_FN(_row_blocks)(TILE_MR, m, kc, A, a_rs, a_cs, B, b_rs, panel_stride, ncols, C, ldc, accumulate,
                         bias, res, ldres, H, ldh, mask, ldmask, colsum);
}

#define TILE_LANES (TILE_VBYTES / TILE_TBYTES) /* TILE_VW, for the preprocessor */
#if TILE_LANES == 16 || TILE_LANES == 8 || TILE_LANES == 4
typedef TILE_IT TILE_FN(_ivec) __attribute__((vector_size(TILE_VBYTES)));

/* *v = the vector at p (an out-parameter: a 64-byte vector returned by value from a function without
   AVX-512, generic512's, draws GCC's ABI warning even when inlined) */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_load)(TILE_FN(_vec) *v, const TILE_T *p)
{
    memcpy(v, p, sizeof(*v));
}

/* dst row c (dst_rs apart) = column c of the TILE_VW x TILE_VW block whose row i is at src + i*src_rs:
   the rows are loaded whole and transposed in registers by unpack and shuffle stages, which GCC
   lowers to unpcklps/unpckhps, shufps and vperm2f128 (locals, not arrays, so nothing goes through
   the stack; the 16-lane version's arrays are indexed by constants only after unrolling).
   16 lanes (float in 64 bytes): four perfect-shuffle stages, each out[2i] = lanes 0-7 of in[i] and
   in[i + 8] interleaved, out[2i + 1] = lanes 8-15 interleaved. Element (row, lane) moves to
   (2 row mod 16 + lane div 8, 2 lane mod 16 + row div 8): its 8-bit address (row bits, lane bits)
   rotates left by one bit per stage, so after four stages row and lane have swapped. Each output is
   one two-source permute (vpermt2ps), with the same two index vectors in every stage. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_transpose)(const TILE_T *src, ptrdiff_t src_rs, TILE_T *dst, ptrdiff_t dst_rs)
{
    typedef TILE_FN(_vec) vec;
    typedef TILE_FN(_ivec) ivec;
#if TILE_LANES == 16
    const ivec lo = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    const ivec hi = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    vec r[16], t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        TILE_FN(_load)(&r[i], src + i * src_rs);
#define TILE_STAGE(out, in)                                         \
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)             \
    {                                                               \
        out[2 * i] = __builtin_shuffle(in[i], in[i + 8], lo);       \
        out[2 * i + 1] = __builtin_shuffle(in[i], in[i + 8], hi);   \
    }
    TILE_STAGE(t, r)
    TILE_STAGE(r, t)
    TILE_STAGE(t, r)
    TILE_STAGE(r, t)
#undef TILE_STAGE
    vec *out = r;
#else
#define TILE_LO(a, b) __builtin_shuffle(a, b, (ivec){0, 8, 1, 9, 4, 12, 5, 13})
#define TILE_HI(a, b) __builtin_shuffle(a, b, (ivec){2, 10, 3, 11, 6, 14, 7, 15})
#define TILE_LO2(a, b) __builtin_shuffle(a, b, (ivec){0, 1, 8, 9, 4, 5, 12, 13})
#define TILE_HI2(a, b) __builtin_shuffle(a, b, (ivec){2, 3, 10, 11, 6, 7, 14, 15})
#define TILE_LO4(a, b) __builtin_shuffle(a, b, (ivec){0, 1, 2, 3, 8, 9, 10, 11})
#define TILE_HI4(a, b) __builtin_shuffle(a, b, (ivec){4, 5, 6, 7, 12, 13, 14, 15})
#if TILE_LANES == 8
    vec r0, r1, r2, r3, r4, r5, r6, r7;
    TILE_FN(_load)(&r0, src), TILE_FN(_load)(&r1, src + src_rs);
    TILE_FN(_load)(&r2, src + 2 * src_rs), TILE_FN(_load)(&r3, src + 3 * src_rs);
    TILE_FN(_load)(&r4, src + 4 * src_rs), TILE_FN(_load)(&r5, src + 5 * src_rs);
    TILE_FN(_load)(&r6, src + 6 * src_rs), TILE_FN(_load)(&r7, src + 7 * src_rs);
    vec t0 = TILE_LO(r0, r1), t1 = TILE_HI(r0, r1), t2 = TILE_LO(r2, r3), t3 = TILE_HI(r2, r3);
    vec t4 = TILE_LO(r4, r5), t5 = TILE_HI(r4, r5), t6 = TILE_LO(r6, r7), t7 = TILE_HI(r6, r7);
    vec u0 = TILE_LO2(t0, t2), u1 = TILE_HI2(t0, t2), u2 = TILE_LO2(t1, t3), u3 = TILE_HI2(t1, t3);
    vec u4 = TILE_LO2(t4, t6), u5 = TILE_HI2(t4, t6), u6 = TILE_LO2(t5, t7), u7 = TILE_HI2(t5, t7);
    vec out[8] = {TILE_LO4(u0, u4), TILE_LO4(u1, u5), TILE_LO4(u2, u6), TILE_LO4(u3, u7),
                  TILE_HI4(u0, u4), TILE_HI4(u1, u5), TILE_HI4(u2, u6), TILE_HI4(u3, u7)};
#else
    vec r0, r1, r2, r3;
    TILE_FN(_load)(&r0, src), TILE_FN(_load)(&r1, src + src_rs);
    TILE_FN(_load)(&r2, src + 2 * src_rs), TILE_FN(_load)(&r3, src + 3 * src_rs);
    vec t0 = __builtin_shuffle(r0, r1, (ivec){0, 4, 1, 5}), t1 = __builtin_shuffle(r0, r1, (ivec){2, 6, 3, 7});
    vec t2 = __builtin_shuffle(r2, r3, (ivec){0, 4, 1, 5}), t3 = __builtin_shuffle(r2, r3, (ivec){2, 6, 3, 7});
    vec out[4] = {__builtin_shuffle(t0, t2, (ivec){0, 1, 4, 5}), __builtin_shuffle(t0, t2, (ivec){2, 3, 6, 7}),
                  __builtin_shuffle(t1, t3, (ivec){0, 1, 4, 5}), __builtin_shuffle(t1, t3, (ivec){2, 3, 6, 7})};
#endif
#undef TILE_LO
#undef TILE_HI
#undef TILE_LO2
#undef TILE_HI2
#undef TILE_LO4
#undef TILE_HI4
#endif
#pragma GCC unroll 16
    for (int c = 0; c < TILE_LANES; c++)
        memcpy(dst + c * dst_rs, &out[c], sizeof(vec));
}
#define TILE_HAS_TRANSPOSE 1
#endif

/* Pack columns [0, ncols) of B (kc rows) as panels of kc x TILE_NR, zero-padded on the right as far as
   the micro-kernel reads: a panel of at most one vector of columns is read one vector per row
   (_micro_any), so only its first TILE_VW columns are written. */
static TILE_TARGET void
TILE_FN(_pack_b)(int kc, int ncols, const TILE_T *B, ptrdiff_t b_rs, ptrdiff_t b_cs, TILE_T *packed)
{
    for (int j0 = 0; j0 < ncols; j0 += TILE_NR) {
        int nr = ncols - j0 < TILE_NR ? ncols - j0 : TILE_NR;
        int width = nr > TILE_VW ? TILE_NR : TILE_VW; /* the columns _micro_any reads */
        TILE_T *panel = packed + (ptrdiff_t)j0 * kc;
        const TILE_T *Bj = B + j0 * b_cs;
        if (b_cs == 1) {
            for (int p = 0; p < kc; p++) {
                int j = 0;
                for (; j < nr; j++)
                    panel[p * TILE_NR + j] = Bj[p * b_rs + j];
                for (; j < width; j++)
                    panel[p * TILE_NR + j] = 0;
            }
            continue;
        }
        int j = 0, p_done = 0; /* columns [0, j) are packed, and columns [j, width) of rows [0, p_done) */
#ifdef TILE_HAS_TRANSPOSE
        if (b_rs == 1) {
            /* a transposed B (the forward's W.T: W's rows are B's columns): blocks of TILE_VW columns x
               TILE_VW rows are loaded as rows of W, transposed in registers and stored as panel rows */
            int p_end = kc / TILE_VW * TILE_VW;
            for (; j + TILE_VW <= nr; j += TILE_VW)
                for (int p = 0; p < p_end; p += TILE_VW)
                    TILE_FN(_transpose)(Bj + j * b_cs + p, b_cs, panel + p * TILE_NR + j, TILE_NR);
            if (j < nr && p_end > 0) {
                /* the last nr - j < TILE_VW columns (a narrow layer such as a 10-unit output): their rows
                   of W copied into a block whose other rows are zero, which is transposed as above and
                   so also writes the panel's zero padding */
                TILE_T rows[TILE_VW * TILE_VW] __attribute__((aligned(64)));
                memset(rows, 0, sizeof(rows));
                for (int p = 0; p < p_end; p += TILE_VW) {
                    for (int r = 0; r < TILE_VW && r < nr - j; r++)
                        memcpy(rows + r * TILE_VW, Bj + (j + r) * b_cs + p, TILE_VW * sizeof(TILE_T));
                    TILE_FN(_transpose)(rows, TILE_VW, panel + p * TILE_NR + j, TILE_NR);
                }
                p_done = p_end;
            }
            /* the rows of the blocked columns that are left (kc not a multiple of TILE_VW) */
            for (int jj = 0; jj < j; jj++)
                for (int p = p_end; p < kc; p++)
                    panel[p * TILE_NR + jj] = Bj[jj * b_cs + p];
        }
#endif
        /* column by column: a transposed B (b_rs == 1) is then read contiguously */
        for (int jj = j; jj < nr; jj++)
            for (int p = p_done; p < kc; p++)
                panel[p * TILE_NR + jj] = Bj[jj * b_cs + p * b_rs];
        for (int p = p_done; nr < width && p < kc; p++)
            for (int jj = nr; jj < width; jj++)
                panel[p * TILE_NR + jj] = 0;
    }
}

/* The lanes of v added pairwise, as lanes[l] += lanes[l + w] for w = TILE_VW / 2, ..., 1 and then
   lane 0: in registers, one rotation of the vector and one addition per step (the same additions in
   the same order, so the same bits), where the vector type has shuffles; else through memory. */
#if TILE_LANES == 16
#define TILE_ROT(w)                                                                                   \
    ((TILE_FN(_ivec)){(w) % 16, (1 + (w)) % 16, (2 + (w)) % 16, (3 + (w)) % 16, (4 + (w)) % 16,       \
                      (5 + (w)) % 16, (6 + (w)) % 16, (7 + (w)) % 16, (8 + (w)) % 16, (9 + (w)) % 16, \
                      (10 + (w)) % 16, (11 + (w)) % 16, (12 + (w)) % 16, (13 + (w)) % 16,             \
                      (14 + (w)) % 16, (15 + (w)) % 16})
#elif TILE_LANES == 8
#define TILE_ROT(w)                                                                                   \
    ((TILE_FN(_ivec)){(w) % 8, (1 + (w)) % 8, (2 + (w)) % 8, (3 + (w)) % 8, (4 + (w)) % 8,            \
                      (5 + (w)) % 8, (6 + (w)) % 8, (7 + (w)) % 8})
#elif TILE_LANES == 4
#define TILE_ROT(w) ((TILE_FN(_ivec)){(w) % 4, (1 + (w)) % 4, (2 + (w)) % 4, (3 + (w)) % 4})
#endif
static inline __attribute__((always_inline)) TILE_TARGET TILE_T
TILE_FN(_lane_sum)(TILE_FN(_vec) v)
{
#ifdef TILE_ROT
#if TILE_LANES >= 16
    v += __builtin_shuffle(v, TILE_ROT(8));
#endif
#if TILE_LANES >= 8
    v += __builtin_shuffle(v, TILE_ROT(4));
#endif
    v += __builtin_shuffle(v, TILE_ROT(2));
    v += __builtin_shuffle(v, TILE_ROT(1));
    return v[0];
#undef TILE_ROT
#else
    TILE_T lanes[TILE_VW];
    memcpy(lanes, &v, sizeof(v));
    for (int w = TILE_VW / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            lanes[l] += lanes[l + w];
    return lanes[0];
#endif
}

/* C[i, j] (+)= dot(A row i, W row j) for R rows of A and NC rows of W (constants after inlining), all
   contiguous along p: each sum in vectors along p, whose lanes are then added pairwise (halves, short
   dependency chains), then the scalar tail of p past the last whole vector. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_dots_block)(const int R, const int NC, int k, const TILE_T *A, ptrdiff_t a_rs, const TILE_T *W,
                     ptrdiff_t w_rs, TILE_T *C, ptrdiff_t ldc, int accumulate)
{
    typedef TILE_FN(_vec) vec;
    vec acc[4][2];
    TILE_T tail[4][2];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < NC; c++)
            acc[r][c] = (vec){0}, tail[r][c] = 0;
    int p = 0;
    for (; p + TILE_VW <= k; p += TILE_VW) {
        vec w[2];
        for (int c = 0; c < NC; c++)
            memcpy(&w[c], W + c * w_rs + p, sizeof(vec));
        for (int r = 0; r < R; r++) {
            vec a;
            memcpy(&a, A + r * a_rs + p, sizeof(vec));
            for (int c = 0; c < NC; c++)
                acc[r][c] += a * w[c];
        }
    }
    for (; p < k; p++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < NC; c++)
                tail[r][c] += A[r * a_rs + p] * W[c * w_rs + p];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < NC; c++) {
            TILE_T s = TILE_FN(_lane_sum)(acc[r][c]) + tail[r][c];
            C[r * ldc + c] = accumulate ? C[r * ldc + c] + s : s;
        }
}

/* C (m x n) (+)= A @ W.T by dot products, for rows of A (a_rs apart) and of W (w_rs apart) contiguous
   along p: a product into a column (n = 1), or a forward into a layer too narrow to fill the tiles'
   vectors. Blocks of 4 rows x 2 columns: 8 sums from 6 loads. */
static TILE_TARGET void
TILE_FN(_dots)(int m, int n, int k, const TILE_T *A, ptrdiff_t a_rs, const TILE_T *W, ptrdiff_t w_rs,
               TILE_T *C, ptrdiff_t ldc, int accumulate)
{
    int i = 0;
    for (; i + 4 <= m; i += 4) {
        int j = 0;
        for (; j + 2 <= n; j += 2)
            TILE_FN(_dots_block)(4, 2, k, A + i * a_rs, a_rs, W + j * w_rs, w_rs, C + i * ldc + j, ldc,
                                 accumulate);
        if (j < n)
            TILE_FN(_dots_block)(4, 1, k, A + i * a_rs, a_rs, W + j * w_rs, w_rs, C + i * ldc + j, ldc,
                                 accumulate);
    }
    for (; i < m; i++)
        for (int j = 0; j < n; j++)
            TILE_FN(_dots_block)(1, 1, k, A + i * a_rs, a_rs, W + j * w_rs, w_rs, C + i * ldc + j, ldc,
                                 accumulate);
}

/* One pass over p in [0, kc) for one row of C and NV vectors of columns (a constant after inlining):
   s[v] = sum over p of A[p] * B[p, v-th vector], as _micro's one-row sums (from zero, over p in order),
   then C = s (+ C when accumulate) */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_FN(_row_pass)(const int NV, int kc, const TILE_T *A, ptrdiff_t a_cs, const TILE_T *B, ptrdiff_t b_rs,
                   TILE_T *C, int accumulate)
{
    typedef TILE_FN(_vec) vec;
    vec s[8];
    for (int v = 0; v < NV; v++)
        s[v] = (vec){0};
    TILE_UNROLL(TILE_PUNROLL)
    for (int p = 0; p < kc; p++) {
        const vec a = TILE_SPLAT(A[p * a_cs]);
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            vec b;
            memcpy(&b, B + p * b_rs + v * TILE_VW, sizeof(vec));
            s[v] += a * b;
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        if (accumulate) {
            vec c;
            memcpy(&c, C + v * TILE_VW, sizeof(vec));
            s[v] += c;
        }
        memcpy(C + v * TILE_VW, &s[v], sizeof(vec));
    }
}

/* C (1 x n) = A (1 x k) @ B (k x n) (+ C when accumulate), B's rows contiguous, no epilogue: a product
   with one row of C (a layer of one unit's weight gradient, dZ.T @ X). _blocked would run it as one row
   of each 2-vector panel, two chains of multiply-adds each waiting on its previous one (64 x 128 x 1 at
   2.3x and 256 x 64 x 1 at 4.3x OpenBLAS's time on Zen 4); here up to 8 vectors of columns go at once.
   The same sums over p in blocks of kc, each block's added to C as in _blocked, so the same bits; the
   last columns narrower than a vector through a zero-padded copy of theirs, as _blocked packs them. */
static TILE_TARGET void
TILE_FN(_one_row)(int n, int k, const TILE_T *A, ptrdiff_t a_cs, const TILE_T *B, ptrdiff_t b_rs, TILE_T *C,
                  int accumulate)
{
    TILE_T tail[TILE_KC * TILE_NR] __attribute__((aligned(64)));
    TILE_T last[TILE_VW] __attribute__((aligned(64)));
    const int full = n / TILE_VW * TILE_VW, narrow = n - full;
    for (int p0 = 0; p0 < k; p0 += TILE_KC) {
        const int kc = k - p0 < TILE_KC ? k - p0 : TILE_KC, acc = accumulate || p0 > 0;
        const TILE_T *Ap = A + p0 * a_cs, *Bp = B + p0 * b_rs;
        int j = 0;
        for (; j + 8 * TILE_VW <= full; j += 8 * TILE_VW)
            TILE_FN(_row_pass)(8, kc, Ap, a_cs, Bp + j, b_rs, C + j, acc);
        /* the rest of the whole vectors as 4, 2 and 1: each column is its own sum */
        if (j + 4 * TILE_VW <= full) {
            TILE_FN(_row_pass)(4, kc, Ap, a_cs, Bp + j, b_rs, C + j, acc);
            j += 4 * TILE_VW;
        }
        if (j + 2 * TILE_VW <= full) {
            TILE_FN(_row_pass)(2, kc, Ap, a_cs, Bp + j, b_rs, C + j, acc);
            j += 2 * TILE_VW;
        }
        if (j < full)
            TILE_FN(_row_pass)(1, kc, Ap, a_cs, Bp + j, b_rs, C + j, acc);
        if (narrow) {
            TILE_FN(_pack_b)(kc, narrow, Bp + full, b_rs, 1, tail); /* rows TILE_NR apart, zero-padded */
            memset(last, 0, sizeof(last));
            memcpy(last, C + full, (size_t)narrow * sizeof(TILE_T));
            TILE_FN(_row_pass)(1, kc, Ap, a_cs, tail, TILE_NR, last, acc);
            memcpy(C + full, last, (size_t)narrow * sizeof(TILE_T));
        }
    }
}

/* The blocked product: loops over blocks of kc rows and nc columns of B (see the top of this file).
   The bias goes into the first block of kc (when not accumulating), res and H into the last. */
static TILE_TARGET void
TILE_FN(_blocked)(int m, int n, int k, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
                  const TILE_T *B, ptrdiff_t b_rs, ptrdiff_t b_cs, TILE_T *C, ptrdiff_t ldc, int accumulate,
                  const TILE_T *bias, const TILE_T *res, ptrdiff_t ldres, TILE_T *H, ptrdiff_t ldh,
                  const TILE_T *mask, ptrdiff_t ldmask, double *colsum)
{
    TILE_T packed[TILE_BUF] __attribute__((aligned(64)));
    for (int p0 = 0; p0 < k; p0 += TILE_KC) {
        int kc = k - p0 < TILE_KC ? k - p0 : TILE_KC;
        int acc = accumulate || p0 > 0;
        const TILE_T *bias_p = acc ? NULL : bias;
        TILE_T *H_p = p0 + kc >= k ? H : NULL;
        const TILE_T *res_p = p0 + kc >= k ? res : NULL, *mask_p = p0 + kc >= k ? mask : NULL;
        double *colsum_p = p0 + kc >= k ? colsum : NULL;
        int nc = TILE_BUF / kc / TILE_NR * TILE_NR;
        const TILE_T *Ap = A + p0 * a_cs;
        for (int j0 = 0; j0 < n; j0 += nc) {
            int ncols = n - j0 < nc ? n - j0 : nc;
            const TILE_T *Bp = B + p0 * b_rs + j0 * b_cs;
            const TILE_T *bias_j = bias_p ? bias_p + j0 : NULL;
            TILE_T *H_j = H_p ? H_p + j0 : NULL;
            const TILE_T *res_j = res_p ? res_p + j0 : NULL, *mask_j = mask_p ? mask_p + j0 : NULL;
            double *colsum_j = colsum_p ? colsum_p + j0 : NULL;
            if (b_cs == 1) {
                /* whole panels in place, and a last one of exactly one vector (read one vector per row);
                   a last narrower or wider one packed */
                int full = ncols / TILE_NR * TILE_NR;
                if (ncols - full == TILE_VW)
                    full = ncols;
                if (full > 0)
                    TILE_FN(_block)(m, kc, Ap, a_rs, a_cs, Bp, b_rs, TILE_NR, full, C + j0, ldc, acc, bias_j,
                                    res_j, ldres, H_j, ldh, mask_j, ldmask, colsum_j);
                if (full < ncols) {
                    TILE_FN(_pack_b)(kc, ncols - full, Bp + full, b_rs, 1, packed);
                    TILE_FN(_block)(m, kc, Ap, a_rs, a_cs, packed, TILE_NR, kc * TILE_NR, ncols - full,
                                    C + j0 + full, ldc, acc, bias_j ? bias_j + full : NULL,
                                    res_j ? res_j + full : NULL, ldres, H_j ? H_j + full : NULL, ldh,
                                    mask_j ? mask_j + full : NULL, ldmask, colsum_j ? colsum_j + full : NULL);
                }
            } else {
                TILE_FN(_pack_b)(kc, ncols, Bp, b_rs, b_cs, packed);
                TILE_FN(_block)(m, kc, Ap, a_rs, a_cs, packed, TILE_NR, kc * TILE_NR, ncols, C + j0, ldc,
                                acc, bias_j, res_j, ldres, H_j, ldh, mask_j, ldmask, colsum_j);
            }
        }
    }
}

/* C (m x n, row stride ldc) = A @ B (+ C when accumulate; else + bias in every row when bias is given)
   (+ res, rows ldres apart, when given); then C = where(mask > 0, C, +0) when mask (m x n, rows ldmask
   apart: the backward of a ReLU whose z is mask) is given; then H (rows ldh apart) = relu(C) when H is
   given, and colsum[j] += C[i, j] for i = 0, 1, ..., in double, when colsum (n,) is given. */
static TILE_TARGET void
TILE_NAME(int m, int n, int k, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
          const TILE_T *B, ptrdiff_t b_rs, ptrdiff_t b_cs, TILE_T *C, ptrdiff_t ldc, int accumulate,
          const TILE_T *bias, const TILE_T *res, ptrdiff_t ldres, TILE_T *H, ptrdiff_t ldh,
          const TILE_T *mask, ptrdiff_t ldmask, double *colsum)
{
    if (m <= 0 || n <= 0)
        return;
    /* a forward into fewer than 16 units over a k of several vectors (an output layer: X @ W.T, both
       read along p) runs as dot products; a tile would leave most of its lanes empty */
    const int dots = a_cs == 1 && b_rs == 1 && (n == 1 || (n < 16 && k >= 8 * TILE_VW));
    if (m == 1 && n > 1 && k > 0 && b_cs == 1 && !dots && !bias && !res && !H && !mask && !colsum) {
        TILE_FN(_one_row)(n, k, A, a_cs, B, b_rs, C, accumulate);
        return;
    }
    if (k > 0 && n > 1 && !dots) {
        TILE_FN(_blocked)(m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, bias, res, ldres, H, ldh,
                          mask, ldmask, colsum);
        return;
    }
    /* no product (k = 0), dot products or one column: the bias is written first and the product added
       to it, and the ReLU is a pass of its own */
    if (bias && !accumulate) {
        for (int i = 0; i < m; i++)
            memcpy(C + i * ldc, bias, (size_t)n * sizeof(TILE_T));
        accumulate = 1;
    }
    if (k <= 0) {
        if (!accumulate)
            for (int i = 0; i < m; i++)
                memset(C + i * ldc, 0, (size_t)n * sizeof(TILE_T));
    } else if (dots) {
        TILE_FN(_dots)(m, n, k, A, a_rs, B, b_cs, C, ldc, accumulate);
    } else if (m > 1 && ldc == 1) {
        /* A matrix-vector product: as C.T = B.T @ A.T (the same memory when C is a column), one row
           of C.T runs across full vectors instead of one lane of each tile. */
        TILE_FN(_blocked)(1, m, k, B, 0, b_rs, A, a_cs, a_rs, C, 0, accumulate, NULL, NULL, 0, NULL, 0, NULL, 0,
                          NULL);
    } else {
        TILE_FN(_blocked)(m, n, k, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate, NULL, NULL, 0, NULL, 0, NULL, 0,
                          NULL);
    }
    if (res)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                C[i * ldc + j] = C[i * ldc + j] + res[i * ldres + j];
    if (mask)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                C[i * ldc + j] = mask[i * ldmask + j] > 0 ? C[i * ldc + j] : 0;
    if (H)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                TILE_T z = C[i * ldc + j];
                H[i * ldh + j] = z > 0 ? z : 0;
            }
    if (colsum)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                colsum[j] += C[i * ldc + j];
}

#undef TILE_HAS_TRANSPOSE
#undef TILE_LANES
#undef TILE_VW
#undef TILE_MR
#undef TILE_NV
#undef TILE_NR
#undef TILE_KC
#undef TILE_PUNROLL
#undef TILE_BUF
#undef TILE_T
#undef TILE_IT
#undef TILE_TBYTES
#undef TILE_VBYTES
#undef TILE_NAME
#undef TILE_TARGET
#undef TILE_SPLAT
#undef TILE_FN
#undef TILE_CAT
#undef TILE_CAT2
