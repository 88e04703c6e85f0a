/* Row orders for shuffled epochs (orders.pxi): uniform permutations drawn from a NumPy Generator's bit
 * generator, at a few nanoseconds a row (Generator.permutation's general path costs about 11).
 *
 * bitgen_t is NumPy's C interface to a BitGenerator (numpy/random/bitgen.h, the struct behind the
 * "BitGenerator" capsule of every numpy.random.BitGenerator); declared here so that the build needs no
 * NumPy header. The draws only go through its function pointers, so any bit generator works, and its
 * state (including a buffered half of a 64-bit draw) stays the generator's own.
 */
#ifndef SKIPNET_ORDERS_H
#define SKIPNET_ORDERS_H

#include <stddef.h>
#include <stdint.h>

#define ORDERS_MAX_ROWS 4294967295LL  /* 2^32 - 1: the bounded draws are 32-bit */

typedef struct bitgen {
    void *state;
    uint64_t (*next_uint64)(void *st);
    uint32_t (*next_uint32)(void *st);
    double (*next_double)(void *st);
    uint64_t (*next_raw)(void *st);
} bitgen_t;

/* A uniform integer in [0, range), 1 <= range <= 2^32 - 1: Lemire's multiply-and-reject on 32-bit draws
   (one multiplication; a division only when the low half falls below range, a rejection rarer still). */
static inline uint32_t orders_bounded(bitgen_t *g, uint32_t range)
{
    uint64_t m = (uint64_t)g->next_uint32(g->state) * range;
    if ((uint32_t)m < range) {
        const uint32_t threshold = (uint32_t)(-range) % range;
        while ((uint32_t)m < threshold)
            m = (uint64_t)g->next_uint32(g->state) * range;
    }
    return (uint32_t)(m >> 32);
}

/* Each of the k rows of out (k x n, row-major, n <= ORDERS_MAX_ROWS) gets a uniform permutation of
   0..n-1, row after row: the inside-out Fisher-Yates shuffle, one bounded draw per element (k rows in
   one call draw what k calls of one row draw). */
static void orders_draw(bitgen_t *g, int64_t *out, ptrdiff_t k, ptrdiff_t n)
{
    for (ptrdiff_t r = 0; r < k; r++) {
        int64_t *row = out + r * n;
        for (ptrdiff_t i = 0; i < n; i++) {
            const ptrdiff_t j = (ptrdiff_t)orders_bounded(g, (uint32_t)(i + 1));
            row[i] = row[j];  /* j == i: overwritten next */
            row[j] = i;
        }
    }
}

#endif
