/* The scalar path: training steps of a network whose input and layers all have width 1 (the
 * exercise's network), row by row in registers instead of through batch kernels.
 *
 *   scalar_step_f / _d (L, layers, skips, P, G, X, Y, rows, nb, loss) -> mean loss
 *       forward, loss and backward of nb rows of X (targets Y; rows: their indices, or NULL for the
 *       first nb); G gets every parameter's gradient.
 *   scalar_sgd_chunk_f / _d (net, chunk)
 *       a whole chunk of steps with plain SGD (no momentum), the update fused into the loop:
 *       fused_chunk's contract is run_chunk's in train.pxi, step for step, for a chunk that starts an
 *       epoch (first_step 0; it neither reads nor writes epoch_total, epoch_all_zero, time_budget:
 *       train.pxi's scalar_sgd_segments runs it in whole epochs and keeps the clock).
 *
 * The same math as the batch path (dense.pxi, activations.pxi, losses.pxi, optim.pxi): products in
 * the data's type, loss terms from loss_terms.h and updates in double. With one row per step the
 * operations come in the same order and both paths agree to the last bit; with more rows the sums over
 * rows (of the loss and of each gradient) run row by row here while the batch kernels add them in SIMD
 * lanes, so the two agree to rounding (an ulp or so per sum), not bit for bit. Depths 1 to 4 get copies with the layer loops unrolled (a shape fixed at compile
 * time is what makes a scalar loop fast); deeper chains run the same code with a run-time depth.
 */
#ifndef SKIPNET_SCALAR_H
#define SKIPNET_SCALAR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "loss_terms.h"
#include "plan.h"
#include "watch.h"
#include "rate_rule.h"

/* scalar_sgd_chunk's limits (deeper or more connected chains go through run_chunk) */
enum { SCALAR_MAX_LAYERS = 16, SCALAR_MAX_SKIPS = 32, SCALAR_MAX_PARAMS = 2 * 16 + 32 };

/* One call's worth of steps (train.pxi's run_chunk): what to run, and what happened. */
typedef struct {
    const int64_t *orders;   /* IN  (epochs x n_rows) row order of each epoch; NULL: in order */
    const double *lrs;       /* IN  learning rate of each step, of each epoch of the chunk (lrs_per_epoch;
                                    0: the epoch of first_step), or of all steps when n_lrs == 1 */
    ptrdiff_t n_lrs;
    int lrs_per_epoch;       /* IN  lrs holds one rate per epoch (a per-epoch schedule's), not per step */
    double *losses;          /* OUT loss of each step before its update */
    double *totals;          /* OUT per completed epoch: sum of step loss x rows */
    ptrdiff_t n_steps, steps_per_epoch;
    ptrdiff_t opt_step;      /* IN  optimizer steps taken before this chunk */
    double first_loss;       /* IN/OUT the fit's first loss (valid if have_first) */
    int have_first;
    ptrdiff_t first_step;    /* IN  step within its epoch at which the chunk starts (row 0 of orders is
                                    that epoch's order); 0: the chunk starts an epoch */
    double epoch_total;      /* IN/OUT the epoch in progress: sum of loss x rows before first_step, and
                                    after the chunk's last step */
    int epoch_all_zero;      /* IN/OUT the epoch in progress had only zero gradients so far */
    double time_budget;      /* IN  seconds after which the chunk pauses after a whole step; 0: never */
    ptrdiff_t done;          /* OUT steps recorded */
    int status;              /* OUT FUSED_OK / FUSED_LOSS_DIVERGED / FUSED_NONFINITE_UPDATE / FUSED_PAUSED */
    int zero_epoch;          /* OUT the last completed epoch had only zero gradients */
    /* the diagnostics' statistics (watch.h); NULL pointers: none are kept */
    void *unit_max;          /* IN/OUT per hidden ReLU unit (layer by layer), the network's type: the
                                    largest z of the epoch in progress so far (-inf at its start) */
    void *unit_epochs;       /* OUT per completed epoch with statistics, its row (of n_units): unit_max
                                    at its end */
    ptrdiff_t n_units;
    ptrdiff_t stats_every, stats_epoch;  /* IN epoch e of the chunk keeps statistics when (stats_epoch + e)
                                    is a multiple of stats_every (the epochs the monitor checks) */
    plateau_watch *watch;    /* IN/OUT the plateau rule over the epoch losses; the chunk stops after an
                                    epoch where a plateau begins (the second, with plateau_params) */
    int plateau;             /* OUT the chunk stopped there */
    void *plateau_params;    /* IN  n_params in the network's type, or NULL: the weights at the end of the
                                    first epoch where a plateau begins are copied there and the chunk runs on */
    ptrdiff_t plateau_epoch; /* IN/OUT -1, or the epoch of the chunk whose weights plateau_params holds */
    int dead_seen;           /* IN/OUT set when an epoch that keeps statistics ends with a unit whose largest
                                    z is <= 0 (a dead unit; NaN is not), so the monitor need not look */
    rate_rule *rule;         /* IN/OUT ReduceLROnPlateau's rule at each completed epoch (rate_rule.h), or
                                    NULL; lrs then points at rule->current */
} fused_chunk;

enum { FUSED_OK = 0, FUSED_LOSS_DIVERGED = 1, FUSED_NONFINITE_UPDATE = 2, FUSED_PAUSED = 3 };

/* The pause clock of a chunk: the loop returns to its caller (which checks for Ctrl-C) after about
   time_budget seconds of steps. The clock is read at steps spaced so that its cost stays negligible
   for any step length: at most doubling the steps between reads, and aiming at half the time left. */
typedef struct {
    double start, budget;
    ptrdiff_t next;          /* read the clock after this many steps of the chunk */
} fused_clock;

static inline double fused_seconds(void)
{
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

static inline fused_clock fused_clock_start(double budget)
{
    fused_clock clk = {budget > 0 ? fused_seconds() : 0.0, budget, budget > 0 ? 1 : PTRDIFF_MAX};
    return clk;
}

/* After ``steps`` steps of the chunk: true when the budget is spent (the chunk pauses). */
static inline int fused_clock_expired(fused_clock *clk, ptrdiff_t steps)
{
    const double elapsed = fused_seconds() - clk->start;
    if (elapsed >= clk->budget)
        return 1;
    const double per_step = elapsed / (double)steps;
    ptrdiff_t ahead = steps;  /* at most double the steps between reads */
    if (per_step > 0 && 0.5 * (clk->budget - elapsed) / per_step < (double)ahead)
        ahead = (ptrdiff_t)(0.5 * (clk->budget - elapsed) / per_step);
    clk->next = steps + (ahead > 1 ? ahead : 1);
    return 0;
}
enum { KEEP_NONE = 0, KEEP_PREV = 1, KEEP_CUR = 2 };  /* which weights a stopped chunk leaves */

/* A width-1 network, its buffers and its fit, for scalar_sgd_chunk (element type per function). */
typedef struct {
    int n_layers, loss;
    const plan_layer *layers;
    const plan_skip *skips;
    ptrdiff_t n_params, n_rows, batch;
    void *params, *spare, *grads;  /* current and last good parameters (run_chunk's meaning) */
    void *scratch;                 /* n_params more */
    const void *X, *Y;
    double weight_decay, divergence_factor;  /* divergence_factor 0: no limit */
} scalar_net;

/* Shapes compiled in whole: with the plan a constant, every offset and flag folds into the code and
   the weights live in registers, as in a loop written by hand for that one network. The exercise's
   network (docs/design.md section 1: 1-1-1-1, ReLU, ReLU, identity, a learned skip from the first hidden
   layer into the output) without biases and with them; other width-1 chains take the copies above. */
enum { SCALAR_KNOWN_MAX_PARAMS = 8 };

typedef struct {
    int n_layers, ns1, ns2;  /* depth; the number of skips into layers 1 and 2 */
    ptrdiff_t n_params;
    plan_layer layers[3];
    plan_skip skips[1];
} scalar_known;

static const scalar_known scalar_known_shapes[] = {
    /* w0 w1 w2 skip */
    {3, 0, 1, 4, {{0, 0, 1, 0, 0, 0, 0}, {1, 0, 1, 0, 1, 0, 0}, {2, 0, 0, 0, 0, 0, 1}}, {{0, 3, 0}}},
    /* w0 b0 w1 b1 w2 b2 skip */
    {3, 0, 1, 7, {{0, 1, 1, 1, 0, 0, 0}, {2, 3, 1, 1, 1, 0, 0}, {4, 5, 0, 1, 0, 0, 1}}, {{0, 6, 0}}},
};

/* The index in scalar_known_shapes of a width-1 network's plan (L layers, n_params parameters), or -1. */
static inline int scalar_known_index(int L, ptrdiff_t n_params, const plan_layer *layers,
                                     const plan_skip *skips)
{
    for (int i = 0; i < (int)(sizeof(scalar_known_shapes) / sizeof(scalar_known_shapes[0])); i++) {
        const scalar_known *kn = &scalar_known_shapes[i];
        int same = L == kn->n_layers && n_params == kn->n_params;
        for (int k = 0; same && k < kn->n_layers; k++) {
            const plan_layer *a = &layers[k], *b = &kn->layers[k];
            same = a->w == b->w && a->b == b->b && a->relu == b->relu && a->bias == b->bias &&
                   a->dense_acc == b->dense_acc && a->skip_begin == b->skip_begin &&
                   a->skip_end == b->skip_end;
        }
        for (int k = 0; same && k < kn->ns1 + kn->ns2; k++) {
            const plan_skip *a = &skips[k], *b = &kn->skips[k];
            same = a->src == b->src && a->weight == b->weight && a->acc == b->acc;
        }
        if (same)
            return i;
    }
    return -1;
}

/* Trainer._divergence: a non-finite loss, or one above factor x the first (factor 0: no limit) */
static inline int fused_loss_diverged(double value, double first, double factor)
{
    if (value - value != 0)
        return 1;
    return factor > 0 && first > 0 && value > factor * first;
}

#define SCALAR_T float
#define SCALAR_UINT uint32_t
#define SCALAR_NAME scalar_step_f
#define SCALAR_CHUNK_NAME scalar_sgd_chunk_f
#include "scalar_impl.h"
#undef SCALAR_T
#undef SCALAR_UINT
#undef SCALAR_NAME
#undef SCALAR_CHUNK_NAME

#define SCALAR_T double
#define SCALAR_UINT uint64_t
#define SCALAR_NAME scalar_step_d
#define SCALAR_CHUNK_NAME scalar_sgd_chunk_d
#include "scalar_impl.h"
#undef SCALAR_T
#undef SCALAR_UINT
#undef SCALAR_NAME
#undef SCALAR_CHUNK_NAME

#endif
