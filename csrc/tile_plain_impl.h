/* The small product as plain loops, for compilers without GNU vector extensions; included by tile.h
 * once per type, with TILE_T (float or double) and TILE_NAME (the function to define). The contract is
 * tile_impl.h's.
 */
static void TILE_NAME(int m, int n, int k, const TILE_T *A, ptrdiff_t a_rs, ptrdiff_t a_cs, const TILE_T *B,
                      ptrdiff_t b_rs, ptrdiff_t b_cs, TILE_T *C, ptrdiff_t ldc, int accumulate,
                      const TILE_T *bias, const TILE_T *res, ptrdiff_t ldres, TILE_T *H, ptrdiff_t ldh,
                      const TILE_T *mask, ptrdiff_t ldmask, double *colsum)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            TILE_T acc = 0;
            for (int p = 0; p < k; p++)
                acc += A[i * a_rs + p * a_cs] * B[p * b_rs + j * b_cs];
            TILE_T z = accumulate ? C[i * ldc + j] + acc : bias ? acc + bias[j] : acc;
            if (res)
                z = z + res[i * ldres + j];
            if (mask)
                z = mask[i * ldmask + j] > 0 ? z : 0;
            C[i * ldc + j] = z;
            if (H)
                H[i * ldh + j] = z > 0 ? z : 0;
            if (colsum)
                colsum[j] += z;
        }
}
