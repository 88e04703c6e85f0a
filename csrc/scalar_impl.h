/* One element type of the scalar path; included by scalar.h with SCALAR_T and SCALAR_NAME defined. */

#define SCALAR_CAT2(a, b) a##b
#define SCALAR_CAT(a, b) SCALAR_CAT2(a, b)
#define SCALAR_FN(suffix) SCALAR_CAT(SCALAR_NAME, suffix)

/* Plain SGD (optim.pxi's sgd_ptr with momentum 0) applied to each parameter as soon as its gradient
   is complete, reading ``from`` and writing ``to``; the flags as sgd_ptr's, found without NaN-aware
   compares: a gradient is nonzero when a bit other than the sign is set, and x * 0 is NaN exactly
   when x is infinite or NaN. */
typedef struct {
    double lr, weight_decay;
    SCALAR_UINT nonzero;
    double nan_probe;
} SCALAR_FN(_update);

/* every parameter gets one gradient term per row: the first row writes it, later rows add; after
   the last row's term it is complete, and (with u) updated */
static inline __attribute__((always_inline)) void
SCALAR_FN(_grad)(SCALAR_T *G, ptrdiff_t i, SCALAR_T term, int first, int last, SCALAR_FN(_update) *u,
                 const SCALAR_T *from, SCALAR_T *to)
{
    SCALAR_T g = first ? term : G[i] + term;
    G[i] = g;
    if (u && last) {
        SCALAR_UINT bits;
        memcpy(&bits, &g, sizeof(bits));
        u->nonzero |= bits << 1;
        double d = (double)g;
        if (u->weight_decay != 0) /* as torch.optim: no term, so a non-finite p cannot make NaN */
            d += u->weight_decay * from[i];
        SCALAR_T p = (SCALAR_T)(from[i] - u->lr * d);
        u->nan_probe += p * 0.0;
        to[i] = p;
    }
}

/* h[j] of a source j (-1: the input x). With a fixed depth, a chain of selects over constant indices
   rather than an indexed load, so that h can stay in registers. */
static inline __attribute__((always_inline)) SCALAR_T
SCALAR_FN(_source)(const int L, const int fixed, ptrdiff_t j, SCALAR_T x, const SCALAR_T *h)
{
    if (!fixed)
        return j < 0 ? x : h[j];
    SCALAR_T v = x;
    for (int t = 0; t < L; t++)
        v = j == t ? h[t] : v;
    return v;
}

/* a contribution to dh[j]: the first to reach it overwrites, later ones add (selects, as above) */
static inline __attribute__((always_inline)) void
SCALAR_FN(_back)(const int L, const int fixed, ptrdiff_t j, SCALAR_T *dh, SCALAR_T term, int acc)
{
    if (!fixed) {
        dh[j] = acc ? dh[j] + term : term;
        return;
    }
    for (int t = 0; t < L; t++)
        if (j == t)
            dh[t] = acc ? dh[t] + term : term;
}

/* Forward, loss and backward of nb rows (row i is X[rows[i]], or X[i] without rows; scale = 1/nb):
   the mean loss, and every parameter's gradient in G; with u, also the SGD update. With nb a
   constant 1 the row loop disappears.
   Layer k's skips are sk[begin(k) .. begin(k) + count(k)). With ``fixed`` set, L <= 3 and the counts
   are the constants ns1, ns2 (layer 0 can have none): every loop unrolls and the plan, read at
   constant indices, can live in registers. Otherwise they come from lay[k].
   With zmax (one per layer), zmax[k] becomes the largest z[k] seen, for each hidden ReLU layer k. */
static inline __attribute__((always_inline)) double
SCALAR_FN(_step)(const int L, const int fixed, const int ns1, const int ns2, const plan_layer *lay,
                 const plan_skip *sk, const SCALAR_T *P, SCALAR_T *G, const SCALAR_T *X,
                 const SCALAR_T *Y, const int64_t *rows, ptrdiff_t nb, double scale, int loss,
                 SCALAR_FN(_update) *u, SCALAR_T *to, SCALAR_T *zmax)
{
    SCALAR_T z[SCALAR_MAX_LAYERS], h[SCALAR_MAX_LAYERS], dh[SCALAR_MAX_LAYERS];
    for (int k = 0; k < L; k++)
        h[k] = dh[k] = 0; /* each is written before it is read; this tells the compiler so */
    double total = 0.0, g;
#define SKIP_BEGIN(k) (fixed ? ((k) == 2 ? ns1 : 0) : lay[k].skip_begin)
#define SKIP_END(k) (fixed ? ((k) == 1 ? ns1 : (k) == 2 ? ns1 + ns2 : 0) : lay[k].skip_end)
    for (ptrdiff_t i = 0; i < nb; i++) {
        const ptrdiff_t row = rows ? rows[i] : i;
        const SCALAR_T x = X[row];
        const int first = i == 0, last = i == nb - 1;
        /* forward: z[k] = W h[k-1] (+ b) + skips, h[k] = relu(z[k]) or z[k] */
#pragma GCC unroll 4
        for (int k = 0; k < L; k++) {
            SCALAR_T zk = P[lay[k].w] * (k == 0 ? x : h[k - 1]);
            if (lay[k].bias)
                zk = zk + P[lay[k].b];
            for (int s = SKIP_BEGIN(k); s < SKIP_END(k); s++) {
                SCALAR_T hs = SCALAR_FN(_source)(L, fixed, sk[s].src, x, h);
                zk = zk + (sk[s].weight < 0 ? hs : P[sk[s].weight] * hs);
            }
            z[k] = zk;
            h[k] = lay[k].relu ? (zk > 0 ? zk : 0) : zk; /* compiles to a compare-and-mask */
            if (zmax && lay[k].relu && k < L - 1) {
                /* through memory (volatile): held in registers, the largest z's pushed the step's
                   weights out of them (bench/README.md, "Figures behind comments in the source") */
                volatile SCALAR_T *largest = zmax;
                const SCALAR_T seen = largest[k];
                largest[k] = zk > seen ? zk : seen;  /* a NaN is passed over, as by maxps */
            }
        }
        if (loss == LOSS_L1)
            total += loss_l1_term(z[L - 1], Y[row], scale, &g);
        else if (loss == LOSS_MSE)
            total += loss_mse_term(z[L - 1], Y[row], scale, &g);
        else
            total += loss_bce_term(z[L - 1], Y[row], scale, &g);
        dh[L - 1] = (SCALAR_T)g;
        /* backward, last layer first: skips into k, then the dense input of k */
#pragma GCC unroll 4
        for (int k = L - 1; k >= 0; k--) {
            const SCALAR_T dz = lay[k].relu ? (z[k] > 0 ? dh[k] : 0) : dh[k];
            for (int s = SKIP_BEGIN(k); s < SKIP_END(k); s++) {
                ptrdiff_t src = sk[s].src;
                SCALAR_T hs = SCALAR_FN(_source)(L, fixed, src, x, h);
                if (sk[s].weight >= 0)
                    SCALAR_FN(_grad)(G, sk[s].weight, dz * hs, first, last, u, P, to);
                if (src >= 0)
                    SCALAR_FN(_back)(L, fixed, src, dh, sk[s].weight < 0 ? dz : dz * P[sk[s].weight],
                                     sk[s].acc);
            }
            SCALAR_FN(_grad)(G, lay[k].w, dz * (k == 0 ? x : h[k - 1]), first, last, u, P, to);
            if (lay[k].bias)
                SCALAR_FN(_grad)(G, lay[k].b, dz, first, last, u, P, to);
            if (k > 0)
                SCALAR_FN(_back)(L, fixed, k - 1, dh, dz * P[lay[k].w], lay[k].dense_acc);
        }
    }
#undef SKIP_BEGIN
#undef SKIP_END
    return total * scale;
}

/* One step with the plan read at run time (any depth): run_chunk's scalar path for optimizers other
   than plain SGD; zmax (per layer, or NULL) as _step's. */
static double SCALAR_NAME(int L, const plan_layer *lay, const plan_skip *sk, const SCALAR_T *P,
                          SCALAR_T *G, const SCALAR_T *X, const SCALAR_T *Y, const int64_t *rows,
                          ptrdiff_t nb, int loss, SCALAR_T *zmax)
{
    return SCALAR_FN(_step)(L, 0, 0, 0, lay, sk, P, G, X, Y, rows, nb, 1.0 / (double)nb, loss, NULL, NULL,
                            zmax);
}

/* The per-layer maxima of the hidden ReLU layers, in unit order (one unit per layer), into out. */
static inline void SCALAR_FN(_units_out)(int L, const plan_layer *lay, const SCALAR_T *zmax, SCALAR_T *out)
{
    for (int k = 0, u = 0; k < L - 1; k++)
        if (lay[k].relu)
            out[u++] = zmax[k];
}

/* run_chunk (train.pxi) for a width-1 network and plain SGD: the same steps, checks and outputs, with
   the update fused into the step. Since the update is written before the step's loss is checked, the
   weights rotate through three buffers: the last good ones (prev), the current ones (cur) and the
   next ones (next, the scalar_net's scratch); a rejected step leaves prev and cur untouched.
   With ``stats`` (a constant: c->unit_max is set), the diagnostics' statistics are kept too; the
   plateau watch (and its snapshot) runs when c->watch is set. */
static inline __attribute__((always_inline)) void
SCALAR_FN(_sgd_run)(const int L, const int fixed, const int ns1, const int ns2, const int one_row,
                    const int stats, const scalar_net *net, fused_chunk *c, plan_layer *lay,
                    plan_skip *sk, const scalar_known *known, const int loss)
{
    SCALAR_T *params = (SCALAR_T *)net->params, *spare = (SCALAR_T *)net->spare;
    SCALAR_T *cur = params, *prev = spare, *next = (SCALAR_T *)net->scratch, *tmp;
    SCALAR_T *G = (SCALAR_T *)net->grads;
    /* a known shape: the current and next weights in local arrays indexed by constants, which the
       compiler keeps in registers (as a loop written for the one network would); each step stores
       the weights it replaces in spare, the last good ones, instead of rotating pointers */
    SCALAR_T kcur[SCALAR_KNOWN_MAX_PARAMS], knext[SCALAR_KNOWN_MAX_PARAMS];
    if (known) {
#pragma GCC unroll 8
        for (int i = 0; i < known->n_params; i++) {
            kcur[i] = params[i];
            knext[i] = 0;
        }
        cur = kcur;
        next = knext;
    }
    const SCALAR_T *X = (const SCALAR_T *)net->X, *Y = (const SCALAR_T *)net->Y;
    const ptrdiff_t n = net->n_rows, spe = c->steps_per_epoch, np = net->n_params;
    const ptrdiff_t n_steps = c->n_steps, batch = one_row ? 1 : net->batch;
    const double inv_batch = 1.0 / (double)batch;
    const double wd = net->weight_decay, factor = net->divergence_factor;
    const int64_t *orders = c->orders;
    const double *lrs = c->lrs;
    const int lr_per_step = c->n_lrs > 1 && !c->lrs_per_epoch, lr_per_epoch = c->n_lrs > 1 && c->lrs_per_epoch;
    double *losses = c->losses;
    /* the plan in local copies (the caller's arrays): nothing written in the loop can alias them */
    for (int k = 0; k < L; k++)
        lay[k] = known ? known->layers[k] : net->layers[k];
    for (int k = 0; k < (fixed ? ns1 + ns2 : lay[L - 1].skip_end); k++)
        sk[k] = known ? known->skips[k] : net->skips[k];
    /* the plan the steps read: a known shape's straight from scalar_known_shapes, whose entries the
       compiler folds into the code, so that every parameter index is a constant and the weights stay in
       registers (read through the local copy, they went through the stack: the exercise 11.4 -> 8.6 ns
       a step) */
    const plan_layer *step_layers = known ? known->layers : lay;
    const plan_skip *step_skips = known ? known->skips : sk;
    double total = 0.0, first = c->first_loss;
    int all_zero = 1, have_first = c->have_first;
    ptrdiff_t e = 0, j = 0, g;
    int keep = KEEP_NONE;   /* on a divergence: the weights to leave in params and spare */
    SCALAR_T zmax[SCALAR_MAX_LAYERS];  /* per layer: the largest z of the epoch so far (with stats) */
    for (int k = 0; k < SCALAR_MAX_LAYERS; k++)
        zmax[k] = -INFINITY;
    SCALAR_T *unit_epochs = (SCALAR_T *)c->unit_epochs;
    c->status = FUSED_OK;
    c->zero_epoch = 0;
    c->plateau = 0;
    /* epoch by epoch: the steps of an epoch run in an inner loop that calls no function, so that the
       compiler keeps the step's values in registers there (no xmm register survives a call); the
       epoch's end (statistics, plateau watch) comes after it */
    for (g = 0; g < n_steps;) {
        const ptrdiff_t end = g + (spe - j < n_steps - g ? spe - j : n_steps - g);
        if (j == 0) {
            total = 0.0;
            all_zero = 1;
            if (stats)
                for (int k = 0; k < L; k++)
                    zmax[k] = -INFINITY;
        }
        for (; g < end; g++, j++) {
            const ptrdiff_t start = j * batch;
            const ptrdiff_t nb = one_row ? 1 : batch < n - start ? batch : n - start;
            const int64_t *rows = orders ? orders + e * n + start : NULL;
            SCALAR_FN(_update) u = {lrs[lr_per_step ? g : lr_per_epoch ? e : 0], wd, 0, 0.0};
            const double value = SCALAR_FN(_step)(L, fixed, ns1, ns2, step_layers, step_skips, cur, G,
                                                  rows ? X : X + start,
                                                  rows ? Y : Y + start, rows, nb,
                                                  nb == batch ? inv_batch : 1.0 / (double)nb, loss, &u, next,
                                                  stats ? zmax : NULL);
            const int fit_started = have_first;
            if (!have_first) {
                first = value;
                have_first = 1;
            }
            losses[g] = value;
            if (fused_loss_diverged(value, first, factor)) {
                c->status = FUSED_LOSS_DIVERGED;
                keep = fit_started ? KEEP_PREV : KEEP_CUR; /* the fit's first step has no earlier weights */
                goto stopped;
            }
            total += value * (double)nb;
            all_zero = all_zero && !u.nonzero;
            if (u.nan_probe != u.nan_probe) {
                g++;
                c->status = FUSED_NONFINITE_UPDATE;
                keep = KEEP_CUR;
                goto stopped;
            }
            if (known) {
#pragma GCC unroll 8
                for (int i = 0; i < known->n_params; i++) {
                    spare[i] = kcur[i];
                    kcur[i] = knext[i];
                }
            } else {
                tmp = prev;
                prev = cur;
                cur = next;
                next = tmp;
            }
        }
        if (j == spe) {  /* the epoch is complete */
            c->totals[e] = total;
            if (stats) {
                SCALAR_FN(_units_out)(L, lay, zmax, unit_epochs + e * c->n_units);
                for (int k = 0; k < L - 1; k++)
                    c->dead_seen |= lay[k].relu && zmax[k] <= 0;
            }
            c->plateau = c->watch && plateau_watch_epoch(c->watch, total);
            if (c->plateau && c->plateau_params && c->plateau_epoch < 0) {
                /* the first plateau of the chunk: its epoch's weights kept, and on */
                SCALAR_T *snapshot = (SCALAR_T *)c->plateau_params;
                if (known) {
#pragma GCC unroll 8
                    for (int i = 0; i < known->n_params; i++)
                        snapshot[i] = kcur[i];
                } else {
                    memcpy(snapshot, cur, (size_t)np * sizeof(SCALAR_T));
                }
                c->plateau_epoch = e;
                c->plateau = 0;
            }
            if (all_zero || c->plateau) {
                c->zero_epoch = all_zero;
                break;
            }
            e++;
            j = 0;
        }
    }
stopped:
    if (stats)
        SCALAR_FN(_units_out)(L, lay, zmax, (SCALAR_T *)c->unit_max);
    c->done = g;
    c->first_loss = first;
    c->have_first = have_first;
    /* params gets the newest weights (or those kept), spare the ones before them; element by element
       with constant indices for a known shape, so its arrays never need an address */
    if (known) {
#pragma GCC unroll 8
        for (int i = 0; i < known->n_params; i++) {
            const SCALAR_T newest = keep == KEEP_PREV ? spare[i] : kcur[i];
            params[i] = newest;
            spare[i] = keep == KEEP_NONE ? spare[i] : newest;
        }
    } else {
        SCALAR_T newest[SCALAR_MAX_PARAMS], before[SCALAR_MAX_PARAMS];
        memcpy(newest, keep == KEEP_PREV ? prev : cur, (size_t)np * sizeof(SCALAR_T));
        memcpy(before, keep == KEEP_NONE ? prev : newest, (size_t)np * sizeof(SCALAR_T));
        memcpy(params, newest, (size_t)np * sizeof(SCALAR_T));
        memcpy(spare, before, (size_t)np * sizeof(SCALAR_T));
    }
}

/* GCC's SLP vectorizer packs pairs of the weights into vectors (their copies from step to step), which
   moves them through the stack: a store and a reload on the chain of dependent operations from one step
   to the next. Without it the weights stay in registers (the exercise: 13.2 -> 10.4 ns a step). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void SCALAR_CHUNK_NAME(const scalar_net *net, fused_chunk *c)
{
    const int L = net->n_layers;
    const int ns1 = L > 1 ? net->layers[1].skip_end - net->layers[1].skip_begin : 0;
    const int ns2 = L > 2 ? net->layers[2].skip_end - net->layers[2].skip_begin : 0;
    plan_layer lay[SCALAR_MAX_LAYERS], lay3[3];
    plan_skip sk[SCALAR_MAX_SKIPS], sk3[3];
    /* depth <= 3 with at most one skip into layer 1 and two into layer 2: a copy per shape (depth,
       those skip counts, one row per step or more), with plan arrays small enough to be kept in
       registers; anything else (deeper, or repeated skips) the general copy */
    const int shape = L == 1                         ? 0
                      : L == 2 && ns1 <= 1            ? 1 + ns1
                      : L == 3 && ns1 <= 1 && ns2 <= 2 ? 3 + 3 * ns1 + ns2
                                                      : -1;
#define SCALAR_SHAPES(one)                                                                           \
    switch (shape) {                                                                                 \
    case 0: SCALAR_FN(_sgd_run)(1, 1, 0, 0, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 1: SCALAR_FN(_sgd_run)(2, 1, 0, 0, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 2: SCALAR_FN(_sgd_run)(2, 1, 1, 0, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 3: SCALAR_FN(_sgd_run)(3, 1, 0, 0, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 4: SCALAR_FN(_sgd_run)(3, 1, 0, 1, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 5: SCALAR_FN(_sgd_run)(3, 1, 0, 2, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 6: SCALAR_FN(_sgd_run)(3, 1, 1, 0, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 7: SCALAR_FN(_sgd_run)(3, 1, 1, 1, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    case 8: SCALAR_FN(_sgd_run)(3, 1, 1, 2, one, 0, net, c, lay3, sk3, NULL, net->loss); break;                          \
    default: SCALAR_FN(_sgd_run)(L, 0, 0, 0, 0, 0, net, c, lay, sk, NULL, net->loss); break;                             \
    }
#define SCALAR_KNOWN_RUN(i, stats)                                                                   \
    do {                                                                                             \
        const scalar_known *kn = &scalar_known_shapes[i];                                            \
        if (net->batch == 1 && net->loss == LOSS_L1)                                               \
            SCALAR_FN(_sgd_run)(kn->n_layers, 1, kn->ns1, kn->ns2, 1, stats, net, c, lay3, sk3, kn, LOSS_L1); \
        else if (net->batch == 1 && net->loss == LOSS_MSE)                                         \
            SCALAR_FN(_sgd_run)(kn->n_layers, 1, kn->ns1, kn->ns2, 1, stats, net, c, lay3, sk3, kn, LOSS_MSE); \
        else if (net->batch == 1)                                                                    \
            SCALAR_FN(_sgd_run)(kn->n_layers, 1, kn->ns1, kn->ns2, 1, stats, net, c, lay3, sk3, kn, LOSS_BCE); \
        else                                                                                         \
            SCALAR_FN(_sgd_run)(kn->n_layers, 1, kn->ns1, kn->ns2, 0, stats, net, c, lay3, sk3, kn, net->loss); \
    } while (0)
    /* the shapes compiled in whole (scalar.h's scalar_known_shapes), when the plan is one of them */
    const int stats = c->unit_max != NULL;
    switch (scalar_known_index(net->n_layers, net->n_params, net->layers, net->skips)) {
    case 0: if (stats) SCALAR_KNOWN_RUN(0, 1); else SCALAR_KNOWN_RUN(0, 0); return;
    case 1: if (stats) SCALAR_KNOWN_RUN(1, 1); else SCALAR_KNOWN_RUN(1, 0); return;
    default: break;
    }
    /* other shapes keep the statistics in the copy that reads its plan at run time */
    if (stats)
        SCALAR_FN(_sgd_run)(L, 0, 0, 0, 0, 1, net, c, lay, sk, NULL, net->loss);
    else if (net->batch == 1)
        SCALAR_SHAPES(1)
    else
        SCALAR_SHAPES(0)
#undef SCALAR_SHAPES
#undef SCALAR_KNOWN_RUN
}

#undef SCALAR_FN
#undef SCALAR_CAT
#undef SCALAR_CAT2
