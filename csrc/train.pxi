# The fused path: whole epochs of mini-batch steps (gather, forward, loss, backward, update) in one call
# without the GIL, over workspaces allocated once per (network, batch size).
#
# FusedNet holds a network's plan as C structs (plan.h: widths, activations, skips, offsets into the
# flat parameter buffer and into one workspace), so the loop runs no Python per layer or per step; bind()
# attaches a fit's data, optimizer state and options; run() trains a number of steps and reports what
# the trainer needs to keep the per-op path's semantics (skipnet/trainer.py):
#   - losses[g]: the loss of step g before its update; totals[e]: sum over epoch e of loss x batch rows
#     (with sample weights: loss x the batch's sum of weights, and the loss is the weighted one);
#   - the divergence guard (non-finite loss, loss > factor x the fit's first loss, or an update that
#     makes a parameter non-finite): stop, and leave the weights behind the last acceptable loss;
#   - whether every mini-batch gradient of an epoch was exactly zero (run() returns after such an
#     epoch, so the trainer can check the whole training set before going on).
# The step math is the per-op path's, core for core and in the same order, so the two paths agree to
# the last bit; networks whose layers all have width 1 (the exercise) take the scalar path of scalar.h,
# the same math row by row in registers. Weighted fits of such networks take the general loop: the
# scalar path knows no sample weights.
#
# With a validation set bound (bind_validation) and/or a best-weights buffer, each completed epoch also
# gets, with the weights at its end: the validation loss (val_losses[e]), by the per-op path's forward
# cores over chunks of at most a batch of rows into a buffer of all the validation outputs, then one call
# of the per-op path's loss core over all of them (the same bits as Trainer._evaluate: a row's forward
# does not depend on its chunk while every product runs on the register tiles, validates_exactly), and
# the copy of those weights into ``best`` when the monitored value (the validation loss when there is one,
# else the epoch's training loss) is strictly below the best so far (NaN never is): Trainer.restore_best
# without a Python round trip per epoch. Such calls take run_chunk, whose scalar step keeps the scalar
# path's math for width-1 networks (scalar_sgd_segments keeps its weights in registers and has no room
# for the checks).
#
# The last good weights cost no copy: each update reads the current buffer and writes the other one
# (a spare buffer of the FusedNet), and the two swap roles every step. Before the first step of a fit
# there are no earlier weights: a divergence there keeps the current ones.

cdef extern from "watch.h" nogil:
    ctypedef struct plateau_watch:
        int window, n_tail
        double rtol, level, weight_total
        double tail[64]
    enum:
        WATCH_MAX_WINDOW
    bint c_plateau_begins "plateau_begins"(const double* tail, int n, int window, double rtol,
                                            double* level)
    bint plateau_watch_epoch(plateau_watch* w, double total)
    void watch_fold_max_f(const float* Z, ptrdiff_t n, ptrdiff_t m, float* unit_max)
    void watch_fold_max_d(const double* Z, ptrdiff_t n, ptrdiff_t m, double* unit_max)


PLATEAU_MAX_WINDOW = WATCH_MAX_WINDOW  # the longest window plateau_begins takes
MAX_RULE_COUNT = 2**62  # reduce_on_plateau's patience, cooldown and counters (epochs: a fit never reaches more)


def plateau_begins(const double[::1] tail, int window, double rtol, level):
    """The plateau rule of the training monitor (csrc/watch.h), after an epoch: ``tail`` the fit's last
    (at most ``window``) epoch losses, oldest first; ``level`` the level of the plateau reported last, or
    None. Returns (begins, level): whether a new plateau begins with the last loss, and the level of the
    plateau being reported (None when none is)."""
    cdef double lvl = float("nan") if level is None else level
    cdef int n = <int>min(tail.shape[0], window)
    if not 2 <= window <= WATCH_MAX_WINDOW:
        raise ValueError(f"window must lie in [2, {WATCH_MAX_WINDOW}], got {window}")
    begins = c_plateau_begins(&tail[tail.shape[0] - n] if n else NULL, n, window, rtol, &lvl)
    return bool(begins), (None if lvl != lvl else lvl)

cdef extern from "plan.h" nogil:
    ctypedef struct plan_layer:
        ptrdiff_t w, b
        int relu, bias, dense_acc, skip_begin, skip_end
        ptrdiff_t width, in_width, z, h, dh
    ctypedef struct plan_skip:
        ptrdiff_t src, weight
        int acc
        ptrdiff_t width

cdef extern from "rate_rule.h" nogil:
    ctypedef struct rate_rule:
        int mode_max, rel
        double threshold, factor, min_lr, eps
        Py_ssize_t patience, cooldown
        double current, best
        Py_ssize_t num_bad, cooldown_counter
        double weight_total
        double* reduced
    void rate_rule_epoch(rate_rule* r, Py_ssize_t e, double loss)
    Py_ssize_t rate_rule_fixed_epochs(const rate_rule* r)

cdef extern from "scalar.h" nogil:
    ctypedef struct fused_chunk:
        const int64_t* orders       # IN  (epochs x n_rows) row order of each epoch; NULL: in order
        const double* lrs           # IN  learning rate of each step (of each epoch: lrs_per_epoch), or of all when n_lrs == 1
        Py_ssize_t n_lrs
        int lrs_per_epoch
        double* losses              # OUT loss of each step before its update
        double* totals              # OUT per completed epoch: sum of step loss x rows
        Py_ssize_t n_steps, steps_per_epoch
        Py_ssize_t opt_step         # IN  optimizer steps taken before this chunk
        double first_loss           # IN/OUT the fit's first loss (valid if have_first)
        int have_first
        Py_ssize_t first_step       # IN  step within its epoch at which the chunk starts
        double epoch_total          # IN/OUT the epoch in progress: sum of loss x rows so far
        int epoch_all_zero          # IN/OUT the epoch in progress had only zero gradients so far
        double time_budget          # IN  seconds after which the chunk pauses; 0: never
        Py_ssize_t done             # OUT steps recorded
        int status                  # OUT FUSED_*
        int zero_epoch              # OUT the last completed epoch had only zero gradients
        void* unit_max              # IN/OUT largest z per hidden ReLU unit in the epoch so far, or NULL
        void* unit_epochs           # OUT per completed epoch with statistics: unit_max at its end
        Py_ssize_t n_units
        Py_ssize_t stats_every, stats_epoch  # IN the epochs with statistics
        plateau_watch* watch        # IN/OUT the plateau rule (watch.h), or NULL
        int plateau                 # OUT stopped after an epoch where a plateau began
        void* plateau_params        # IN  where the weights of the first such epoch go (then on), or NULL
        Py_ssize_t plateau_epoch    # IN/OUT -1, or that epoch of the chunk
        int dead_seen               # IN/OUT set when a kept epoch ended with a unit's largest z <= 0
        rate_rule* rule             # IN/OUT ReduceLROnPlateau's rule at each completed epoch, or NULL
    ctypedef struct fused_clock:
        Py_ssize_t next
    ctypedef struct scalar_net:
        int n_layers, loss
        const plan_layer* layers
        const plan_skip* skips
        ptrdiff_t n_params, n_rows, batch
        void* params
        void* spare
        void* grads
        void* scratch
        const void* X
        const void* Y
        double weight_decay, divergence_factor
    enum:
        FUSED_OK
        FUSED_LOSS_DIVERGED
        FUSED_NONFINITE_UPDATE
        FUSED_PAUSED
        SCALAR_MAX_LAYERS
        SCALAR_MAX_SKIPS
        SCALAR_MAX_PARAMS
    bint fused_loss_diverged(double value, double first, double factor)
    fused_clock fused_clock_start(double budget)
    bint fused_clock_expired(fused_clock* clk, Py_ssize_t steps)
    int scalar_known_index(int L, ptrdiff_t n_params, const plan_layer* layers, const plan_skip* skips)
    double scalar_step_f(int L, const plan_layer* layers, const plan_skip* skips, const float* P,
                         float* G, const float* X, const float* Y, const int64_t* rows, ptrdiff_t nb,
                         int loss, float* zmax)
    double scalar_step_d(int L, const plan_layer* layers, const plan_skip* skips, const double* P,
                         double* G, const double* X, const double* Y, const int64_t* rows, ptrdiff_t nb,
                         int loss, double* zmax)
    void scalar_sgd_chunk_f(const scalar_net* net, fused_chunk* c)
    void scalar_sgd_chunk_d(const scalar_net* net, fused_chunk* c)


cdef struct Plan:
    Py_ssize_t n_layers, n_skips, n_inputs, n_outputs, batch, n_params
    const plan_layer* layers    # n_layers (plan.h), the batch and the scalar loops alike
    const plan_skip* skips      # n_skips, sorted by destination
    Py_ssize_t xb, yb           # workspace offsets of the gathered batch (shuffled epochs)
    Py_ssize_t scratch          # workspace offset of the scalar path's spare parameters
    bint scalar                 # every width (and n_inputs) is 1, within scalar.h's limits


cdef struct Bound:
    # buffers in the network's dtype (cast per call)
    void* params                # the network's parameters
    void* spare                 # the FusedNet's second parameter buffer
    void* grads
    void* state1                # SGD momentum buffer / Adam first moment
    void* state2                # Adam second moment
    void* work
    int64_t* twork              # gathered class targets
    const void* X
    const void* Y               # targets (l1, mse, bce), or NULL
    const int64_t* T            # class targets (cross_entropy), or NULL
    const double* W             # sample weights (n_rows), or NULL: unweighted
    double* wwork               # gathered sample weights (batch)
    Py_ssize_t n_rows
    int loss, optimizer
    double momentum, dampening, weight_decay, beta1, beta2, eps, divergence_factor
    bint nesterov


cdef struct EpochCheck:
    # what run_chunk does at the end of each completed epoch, with the weights at its end
    const void* X               # validation rows (n_rows, n_inputs) in the network's dtype, or NULL
    const void* Y               # their targets (l1, mse, bce), or NULL
    const int64_t* T            # their class targets (cross_entropy), or NULL
    const double* W             # their sample weights (n_rows), or NULL: unweighted
    Py_ssize_t n_rows
    int loss_kind               # the fit's loss (LOSS_KINDS)
    void* yhat                  # (n_rows, n_outputs) network dtype: the outputs of every chunk
    void* grad                  # (n_rows, n_outputs) network dtype: the loss core's gradient (unused)
    double* val_losses          # OUT validation loss per completed epoch of the call, or NULL: none
    void* best                  # (n_params) network dtype: the best epoch's weights, or NULL: none kept
    double best_value           # IN/OUT the best monitored value so far (+inf: none yet)
    double weight_total         # the training set's rows (or sum of weights): epoch loss = total / it


cdef void forward_pass(const Plan* plan, const floating* P, const floating* Xb, Py_ssize_t nb,
                       floating* work) noexcept nogil:
    """z and h of every layer for the nb rows Xb: CythonEngine.forward, core for core."""
    cdef Py_ssize_t k, s, m
    cdef const plan_layer* lay
    cdef const plan_skip* sk
    cdef const floating* x
    cdef const floating* src
    cdef const floating* residual
    cdef floating* z
    cdef bint fused_relu
    for k in range(plan.n_layers):
        lay = &plan.layers[k]
        m = lay.width
        x = Xb if k == 0 else work + plan.layers[k - 1].h
        z = work + lay.z
        # with no skip into the layer, or one identity skip (a residual), the skip's addition and the
        # ReLU come out of the product's epilogue
        residual = NULL
        if lay.skip_end - lay.skip_begin == 1 and plan.skips[lay.skip_begin].weight < 0:
            sk = &plan.skips[lay.skip_begin]
            residual = Xb if sk.src < 0 else work + plan.layers[sk.src].h
        fused_relu = lay.relu != 0 and (lay.skip_begin == lay.skip_end or residual != NULL)
        dense_fwd_ptr(x, P + lay.w, P + lay.b, z, nb, lay.in_width, m, lay.bias, False,
                      work + lay.h if fused_relu else <floating*>NULL, residual)
        for s in range(lay.skip_begin if residual == NULL else lay.skip_end, lay.skip_end):
            sk = &plan.skips[s]
            src = Xb if sk.src < 0 else work + plan.layers[sk.src].h
            if sk.weight < 0:
                add_into_ptr(z, src, nb * m, True)
            else:
                dense_fwd_ptr(src, P + sk.weight, <floating*>NULL, z, nb, sk.width, m, False, True)
        if lay.relu and not fused_relu:
            relu_fwd_ptr(z, work + lay.h, nb * m)


cdef void backward_pass(const Plan* plan, const floating* P, floating* G, const floating* Xb,
                        Py_ssize_t nb, floating* work) noexcept nogil:
    """From dL/dyhat in the output layer's dh: every parameter gradient (CythonEngine.backward)."""
    cdef Py_ssize_t k, s, m, src
    cdef const plan_layer* lay
    cdef const plan_layer* below
    cdef const plan_skip* sk
    cdef floating* dz
    cdef bint masked = False  # the layer's dh left the layer above's product as its dz already
    for k in range(plan.n_layers - 1, -1, -1):
        lay = &plan.layers[k]
        m = lay.width
        dz = work + lay.dh
        if lay.relu and not masked:  # with the bias gradient in the same pass (dense_bwd_ptr skips it)
            relu_bwd_pass_ptr(dz, work + lay.z, dz, G + lay.b if lay.bias else NULL, nb, m)
        for s in range(lay.skip_begin, lay.skip_end):
            sk = &plan.skips[s]
            src = sk.src
            if sk.weight < 0:
                if src >= 0:
                    add_into_ptr(work + plan.layers[src].dh, dz, nb * m, sk.acc)
            else:
                dense_bwd_ptr(dz, Xb if src < 0 else work + plan.layers[src].h,
                              P + sk.weight, G + sk.weight, <floating*>NULL,
                              <floating*>NULL if src < 0 else work + plan.layers[src].dh,
                              nb, sk.width, m, False, src >= 0, sk.acc)
        # the product into the layer below's dh is the last term of it (every skip out of that layer
        # enters a layer above this dense input, whose terms came first): with a ReLU below, its
        # backward (and bias gradient) is taken as the product leaves the tiles
        below = &plan.layers[k - 1] if k > 0 else NULL
        masked = dense_bwd_ptr(dz, Xb if k == 0 else work + below.h,
                               P + lay.w, G + lay.w, G + lay.b,
                               <floating*>NULL if k == 0 else work + below.dh,
                               nb, lay.in_width, m, lay.bias != 0 and lay.relu == 0, k > 0, lay.dense_acc,
                               work + below.z if below != NULL and below.relu else <floating*>NULL,
                               G + below.b if below != NULL and below.relu and below.bias else <floating*>NULL)


cdef void fold_unit_max(const Plan* plan, const floating* work, Py_ssize_t nb,
                        floating* unit_max) noexcept nogil:
    """unit_max (per hidden ReLU unit, layer by layer) = the larger of itself and z of the nb rows just
    passed forward: the dead-unit statistics (watch.h); a NaN z is passed over."""
    cdef Py_ssize_t k, u = 0
    cdef const plan_layer* lay
    for k in range(plan.n_layers - 1):
        lay = &plan.layers[k]
        if not lay.relu:
            continue
        if floating is float:
            watch_fold_max_f(work + lay.z, nb, lay.width, unit_max + u)
        else:
            watch_fold_max_d(work + lay.z, nb, lay.width, unit_max + u)
        u += lay.width


cdef void keep_params(floating* params, floating* spare, const floating* good,
                      Py_ssize_t size) noexcept nogil:
    """Leave the weights ``good`` (one of the two buffers) in both."""
    if params != good:
        memcpy(params, good, size * sizeof(floating))
    if spare != good:
        memcpy(spare, good, size * sizeof(floating))


cdef void swap_params(floating* a, floating* b, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating t
    for i in range(size):
        t = a[i]
        a[i] = b[i]
        b[i] = t


cdef double validation_loss(const Plan* plan, const EpochCheck* v, const floating* P,
                            floating* work) noexcept nogil:
    """The loss of the validation rows with the weights P: forward_pass over chunks of at most a batch
    (the workspace's rows), each chunk's outputs copied into v.yhat, then the loss over all rows at
    once, CythonEngine.loss_value's cores on the same values in the same order."""
    cdef const floating* X = <const floating*>v.X
    cdef floating* yhat = <floating*>v.yhat
    cdef const plan_layer* out_layer = &plan.layers[plan.n_layers - 1]
    cdef Py_ssize_t start = 0, nb, n_in = plan.n_inputs, n_out = plan.n_outputs
    cdef double weight_sum
    while start < v.n_rows:
        nb = min(plan.batch, v.n_rows - start)
        forward_pass(plan, P, X + start * n_in, nb, work)
        memcpy(yhat + start * n_out, work + out_layer.h, nb * n_out * sizeof(floating))
        start += nb
    if v.W == NULL:
        return loss_ptr(v.loss_kind, yhat, <const floating*>v.Y, v.T, <floating*>v.grad, v.n_rows, n_out)
    return weighted_loss_ptr(v.loss_kind, yhat, <const floating*>v.Y, v.T, v.W, <floating*>v.grad,
                             v.n_rows, n_out, &weight_sum)


cdef void check_epoch(const Plan* plan, EpochCheck* v, Py_ssize_t e, double total, const floating* P,
                      floating* work) noexcept nogil:
    """At the end of epoch e of a call, weights P: its validation loss, and the best weights
    (Trainer._end_epoch and _Run.keep_if_best)."""
    cdef double monitored = total / v.weight_total
    if v.val_losses != NULL:
        monitored = validation_loss(plan, v, P, work)
        v.val_losses[e] = monitored
    if v.best != NULL and monitored < v.best_value:  # strictly lower: NaN never is
        v.best_value = monitored
        memcpy(v.best, P, plan.n_params * sizeof(floating))


# Tags that make run_chunk a loop without sample weights and one with them (b.W != NULL), compiled
# apart, so the unweighted loop carries none of the weighted one's tests.
cdef struct Unweighted:
    char unused
cdef struct Weighted:
    char unused
ctypedef fused weighting:
    Unweighted
    Weighted


cdef void run_chunk(const Plan* plan, const Bound* b, fused_chunk* c, floating* params,
                    const weighting* tag, EpochCheck* check) noexcept nogil:
    """Train c.n_steps steps (see fused_chunk in scalar.h); params is b.params, typed; tag (NULL) says
    whether b.W holds sample weights; check (or NULL) what to do at each epoch's end (EpochCheck)."""
    cdef bint weighted = weighting is Weighted
    cdef floating* cur = params
    cdef floating* old = <floating*>b.spare
    cdef floating* tmp
    cdef floating* G = <floating*>b.grads
    cdef floating* work = <floating*>b.work
    cdef const floating* X = <const floating*>b.X
    cdef const floating* Y = <const floating*>b.Y
    cdef const floating* Xb
    cdef const floating* Yb
    cdef const int64_t* Tb
    cdef const double* Wb = NULL
    cdef const int64_t* order
    cdef const plan_layer* out_layer = &plan.layers[plan.n_layers - 1]
    cdef Py_ssize_t n_in = plan.n_inputs, n_out = plan.n_outputs, n = b.n_rows
    cdef Py_ssize_t g, e, j, i, start, nb, row
    cdef double value, lr, total = c.epoch_total, weight_sum
    cdef bint all_zero = c.epoch_all_zero, fit_started
    cdef bint scalar = plan.scalar and not weighted
    cdef int flags
    cdef fused_clock clock = fused_clock_start(c.time_budget)
    cdef floating* unit_max = <floating*>c.unit_max       # the diagnostics' statistics, or NULL
    cdef floating* unit_epochs = <floating*>c.unit_epochs
    cdef floating zlay[16]                                 # SCALAR_MAX_LAYERS: the scalar step's maxima
    cdef Py_ssize_t k, u
    cdef bint collect = unit_max != NULL and c.stats_epoch % c.stats_every == 0  # this epoch keeps them
    c.done = 0
    c.status = FUSED_OK
    c.zero_epoch = False
    c.plateau = False
    e, j = 0, c.first_step  # epoch within the chunk, step within the epoch
    for g in range(c.n_steps):
        if j == c.steps_per_epoch:
            e += 1
            j = 0
            collect = unit_max != NULL and (c.stats_epoch + e) % c.stats_every == 0
        if j == 0:
            total = 0.0
            all_zero = True
            if collect:
                for i in range(c.n_units):
                    unit_max[i] = -INFINITY
        start = j * plan.batch
        nb = min(plan.batch, n - start)
        if c.orders != NULL:
            order = c.orders + e * n + start
            for i in range(nb):
                row = order[i]
                memcpy(work + plan.xb + i * n_in, X + row * n_in, n_in * sizeof(floating))
                if b.T != NULL:
                    b.twork[i] = b.T[row]
                else:
                    memcpy(work + plan.yb + i * n_out, Y + row * n_out, n_out * sizeof(floating))
            if weighted:
                for i in range(nb):
                    b.wwork[i] = b.W[order[i]]
                Wb = b.wwork
            Xb, Yb, Tb = work + plan.xb, work + plan.yb, b.twork
        else:
            Xb = X + start * n_in
            Yb = Y + start * n_out if Y != NULL else NULL
            Tb = b.T + start if b.T != NULL else NULL
            Wb = b.W + start if weighted else NULL
        lr = c.lrs[0] if c.n_lrs == 1 else c.lrs[e] if c.lrs_per_epoch else c.lrs[g]

        if scalar:
            for k in range(plan.n_layers):
                zlay[k] = -INFINITY
            if floating is float:
                value = scalar_step_f(<int>plan.n_layers, plan.layers, plan.skips, cur, G,
                                      Xb, Yb, NULL, nb, b.loss, zlay if collect else NULL)
            else:
                value = scalar_step_d(<int>plan.n_layers, plan.layers, plan.skips, cur, G,
                                      Xb, Yb, NULL, nb, b.loss, zlay if collect else NULL)
            if collect:  # one unit per layer
                u = 0
                for k in range(plan.n_layers - 1):
                    if plan.layers[k].relu:
                        unit_max[u] = zlay[k] if zlay[k] > unit_max[u] else unit_max[u]
                        u += 1
        else:
            forward_pass(plan, cur, Xb, nb, work)
            if collect:
                fold_unit_max(plan, work, nb, unit_max)
            if not weighted:
                value = loss_ptr(b.loss, work + out_layer.z, Yb, Tb, work + out_layer.dh, nb, n_out)
            else:
                value = weighted_loss_ptr(b.loss, work + out_layer.z, Yb, Tb, Wb, work + out_layer.dh,
                                          nb, n_out, &weight_sum)
        fit_started = c.have_first
        if not c.have_first:
            c.first_loss = value
            c.have_first = True
        if fused_loss_diverged(value, c.first_loss, b.divergence_factor):
            c.losses[g] = value
            c.status = FUSED_LOSS_DIVERGED
            # the weights behind the last acceptable loss: before the previous update, if any
            keep_params(params, <floating*>b.spare, old if fit_started else cur, plan.n_params)
            return
        c.losses[g] = value
        total += value * (weight_sum if weighted else nb)
        if not scalar:
            backward_pass(plan, cur, G, Xb, nb, work)
        if b.optimizer == OPT_SGD:
            flags = sgd_ptr(cur, old, G, <floating*>b.state1, plan.n_params, lr, b.momentum,
                            b.dampening, b.weight_decay, b.nesterov, c.opt_step + g == 0)
        else:
            flags = adam_ptr(cur, old, G, <floating*>b.state1, <floating*>b.state2, plan.n_params, lr,
                             b.beta1, b.beta2, b.eps, b.weight_decay, c.opt_step + g + 1)
        tmp = cur
        cur = old
        old = tmp
        c.done = g + 1
        all_zero = all_zero and not (flags & UPDATE_GRAD_NONZERO)
        if flags & UPDATE_NONFINITE:
            c.status = FUSED_NONFINITE_UPDATE
            keep_params(params, <floating*>b.spare, old, plan.n_params)
            return
        if j == c.steps_per_epoch - 1:
            c.totals[e] = total
            if check != NULL:
                check_epoch(plan, check, e, total, cur, work)
            if c.rule != NULL:  # the rate of the next epoch (the steps read it through c.lrs)
                rate_rule_epoch(c.rule, e, check.val_losses[e] if check != NULL and check.val_losses != NULL
                                else total / c.rule.weight_total)
            if collect:
                memcpy(unit_epochs + e * c.n_units, unit_max, c.n_units * sizeof(floating))
                for i in range(c.n_units):
                    if unit_max[i] <= 0:  # a dead unit (NaN is not one)
                        c.dead_seen = True
                        break
            c.plateau = c.watch != NULL and plateau_watch_epoch(c.watch, total)
            if c.plateau and c.plateau_params != NULL and c.plateau_epoch < 0:
                # the first plateau of the call: its epoch's weights kept for the monitor, and on
                memcpy(c.plateau_params, cur, plan.n_params * sizeof(floating))
                c.plateau_epoch = e
                c.plateau = False
            if all_zero or c.plateau:
                c.zero_epoch = all_zero
                break
        j += 1
        if g + 1 == clock.next and fused_clock_expired(&clock, g + 1):
            c.status = FUSED_PAUSED
            break
    c.epoch_total = total
    c.epoch_all_zero = all_zero
    if cur != params:  # the network's buffer gets the newest weights, the spare the ones before
        swap_params(params, cur, plan.n_params)


cdef void scalar_sgd_segments(scalar_net* snet, fused_chunk* c, bint f32) noexcept nogil:
    """scalar_sgd_chunk over c's steps (from the start of an epoch) in segments of whole epochs, reading
    the pause clock between them: the chunk's loop keeps the weights in registers, which a function
    call inside it (the clock) would prevent, and starting only at epoch starts keeps that loop as
    simple as it was. So the scalar path pauses at epoch ends (a width-1 network's epoch costs some
    20 ns a row: 50 ms is 2.5 million rows)."""
    cdef fused_chunk seg = c[0]
    cdef fused_clock clock = fused_clock_start(c.time_budget)
    cdef Py_ssize_t done = 0, epochs = 0, spe = c.steps_per_epoch, want, phase, completed, k
    seg.time_budget = 0.0
    while True:
        if c.time_budget > 0:  # to the clock's next reading, rounded up to whole epochs
            want = clock.next - done
            seg.n_steps = min(c.n_steps - done, max(1, (want + spe - 1) // spe) * spe)
        else:
            seg.n_steps = c.n_steps - done
        if c.unit_max != NULL:  # the epochs with statistics apart: only they run the loop that keeps them
            phase = (c.stats_epoch + epochs) % c.stats_every
            seg.unit_max = c.unit_max if phase == 0 else NULL
            seg.stats_epoch, seg.stats_every = 0, 1
            seg.n_steps = min(seg.n_steps, (1 if phase == 0 and c.stats_every > 1 else
                                            c.stats_every - phase if phase else seg.n_steps // spe + 1) * spe)
        if c.rule != NULL:  # up to the epoch whose end may lower the rate
            seg.n_steps = min(seg.n_steps, rate_rule_fixed_epochs(c.rule) * spe)
        seg.orders = c.orders + epochs * snet.n_rows if c.orders != NULL else NULL
        seg.lrs = c.lrs if c.n_lrs == 1 else c.lrs + epochs if c.lrs_per_epoch else c.lrs + done
        seg.losses = c.losses + done
        seg.totals = c.totals + epochs
        if c.unit_epochs != NULL:
            seg.unit_epochs = <char*>c.unit_epochs + epochs * c.n_units * (4 if f32 else 8)
        seg.opt_step = c.opt_step + done
        if f32:
            scalar_sgd_chunk_f(snet, &seg)
        else:
            scalar_sgd_chunk_d(snet, &seg)
        if seg.plateau_epoch >= 0:  # the snapshot is taken: a further plateau stops the call
            c.plateau_epoch = epochs + seg.plateau_epoch
            seg.plateau_params, seg.plateau_epoch = NULL, -1
        done += seg.done
        completed = (seg.done if seg.status != FUSED_NONFINITE_UPDATE else seg.done - 1) // spe
        if c.rule != NULL:
            for k in range(completed):
                rate_rule_epoch(c.rule, epochs + k, seg.totals[k] / c.rule.weight_total)
        epochs += seg.done // spe
        if seg.status != FUSED_OK or seg.zero_epoch or seg.plateau or done == c.n_steps:
            break
        if c.time_budget > 0 and fused_clock_expired(&clock, done):
            seg.status = FUSED_PAUSED
            break
    c.done, c.status, c.zero_epoch, c.plateau = done, seg.status, seg.zero_epoch, seg.plateau
    c.dead_seen = seg.dead_seen  # carried from segment to segment
    c.first_loss, c.have_first = seg.first_loss, seg.have_first
    c.epoch_total, c.epoch_all_zero = 0.0, True  # a stop mid-epoch ends the fit: nothing carries over


cdef struct ArrayView:
    char* data               # the first element (NULL when empty)
    Py_ssize_t shape[2]


cdef bint format_is(const char* fmt, Py_ssize_t itemsize, char code) noexcept:
    """A buffer's element format is ``code``: 'd' float64, 'f' float32, 'q' a 64-bit signed integer
    (NumPy's int64 says 'l' where a C long has 64 bits)."""
    if fmt[0] == b'@' or fmt[0] == b'=':  # native byte order, said explicitly
        fmt += 1
    if fmt[0] == 0 or fmt[1] != 0:
        return False
    if code == b'q':
        return itemsize == 8 and (fmt[0] == b'q' or fmt[0] == b'l')
    return fmt[0] == code


cdef int view_array(object array, str name, char code, int ndim, bint writable, ArrayView* out) except -1:
    """The address and shape of a C-contiguous ``ndim``-D array (ndim <= 2) of elements ``code`` (see
    format_is), writable when asked, into ``out``; else a ValueError naming ``name``. The caller keeps
    the array alive while the address is used, and checks the shape it needs. One buffer request checks
    it all: a typed memoryview costs several times as much to acquire, and so do Python-level checks of
    dtype and shape (a fit binds up to eight arrays, and run() takes up to five such per call)."""
    cdef Py_buffer view
    cdef int i, flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)
    cdef bint got = True
    try:
        PyObject_GetBuffer(array, &view, flags)
    except (BufferError, ValueError, TypeError):  # NumPy raises ValueError for a strided array
        got = False
    if got:
        ok = view.ndim == ndim and format_is(view.format, view.itemsize, code)
        if ok:
            out.data = <char*>view.buf if view.len else NULL
            for i in range(ndim):
                out.shape[i] = view.shape[i]
        PyBuffer_Release(&view)
        if ok:
            return 0
    kind = "float64" if code == b'd' else "float32" if code == b'f' else "int64"
    raise ValueError(f"{name} must be a {'writable ' if writable else ''}C-contiguous {ndim}-D {kind} array, got "
                     f"{getattr(array, 'dtype', type(array).__name__)} of shape {getattr(array, 'shape', '?')}")


cdef void* vector_ptr(object array, str name, char code, Py_ssize_t size, bint writable) except? NULL:
    """The address of a C-contiguous 1-D array of ``size`` elements ``code`` (view_array; size < 0: any
    size), NULL when empty; else a ValueError naming ``name``."""
    cdef ArrayView v
    view_array(array, name, code, 1, writable, &v)
    if size >= 0 and v.shape[0] != size:
        raise ValueError(f"{name} must have {size} entries, got {v.shape[0]}")
    return v.data


cdef void* matrix_ptr(object array, str name, char code, Py_ssize_t rows, Py_ssize_t cols,
                      bint writable) except? NULL:
    """The address of a C-contiguous (rows, cols) array of elements ``code`` (view_array; rows < 0: any
    number of rows), NULL when empty; else a ValueError naming ``name``."""
    cdef ArrayView v
    view_array(array, name, code, 2, writable, &v)
    if (rows >= 0 and v.shape[0] != rows) or v.shape[1] != cols:
        raise ValueError(f"{name} must be ({'n' if rows < 0 else rows}, {cols}), got ({v.shape[0]}, {v.shape[1]})")
    return v.data


def dead_units_of(unit_max) -> list:
    """The flat indices, ascending, of the units whose largest z in ``unit_max`` is <= 0 (NaN is not):
    ``(unit_max <= 0).nonzero()[0].tolist()`` in one call. unit_max: the dead-unit statistics, a
    C-contiguous 1-D float32 or float64 array. The training monitor's check after a fused call that saw
    a dead unit: NumPy's comparison and nonzero cost several times as much on these few units."""
    cdef ArrayView v
    cdef Py_ssize_t i
    cdef bint f32 = getattr(getattr(unit_max, "dtype", None), "itemsize", 8) == 4
    view_array(unit_max, "unit_max", b'f' if f32 else b'd', 1, False, &v)
    dead = []
    for i in range(v.shape[0]):
        if ((<float*>v.data)[i] <= 0) if f32 else ((<double*>v.data)[i] <= 0):
            dead.append(i)
    return dead


def aligned_zeros(Py_ssize_t n, dtype):
    """A zeroed (n,) array of ``dtype`` whose first element is 64-byte aligned (a cache line, an AVX-512
    vector). NumPy aligns to 16 bytes; with the workspace at any 16-byte offset, its rows of 16 floats
    straddle cache lines or not as the allocator happens to place it, and the same fused call took a few
    percent longer or shorter from one network to the next (bench/README.md, "Figures behind comments
    in the source")."""
    import numpy as np

    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n * itemsize + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start:start + n * itemsize].view(dtype)


cdef class FusedNet:
    """A network's plan and workspace for fused epochs at one batch size.

    FusedNet(n_inputs, batch, layers, skips, params, grads): ``layers`` is a sequence of
    (width, relu, bias, w_offset, b_offset, dense_acc) per layer, ``skips`` of
    (src, dst, weight_offset or -1 for identity, acc), in the order their contributions are added;
    offsets index the flat parameter buffer ``params`` (1-D, float32 or float64) and its twin
    ``grads``. The accumulate flags say whether a backward contribution adds to dh[k-1] / dh[src] or
    is the first to reach it (skipnet._engine.CythonEngine computes them). The plan is trusted; every
    array whose address it keeps (here, in bind, bind_validation and run) is checked first by one
    buffer request (view_array: element type, dimensions, contiguity, writability where the kernels
    write, and the shape they read), and a ValueError names the array that is not what they need.
    """
    cdef Plan plan
    cdef Bound bound
    cdef scalar_net snet        # the scalar path's view of plan and bound (plain SGD only)
    cdef bint f32
    cdef public object watch_level  # after run() with a watch: the plateau level after its last epoch
    cdef public Py_ssize_t plateau_epoch  # after run(): the epoch whose weights plateau_params got, or -1
    cdef public object rule_state  # after run() with reduce_on_plateau: (current, best, num_bad, cooldown_counter)
    cdef public bint dead_seen  # after run(): a row of unit_epochs it wrote has a unit <= 0 (dead)
    cdef Py_ssize_t units  # hidden ReLU units, layer by layer (n_units)
    cdef plan_layer* layer_plan  # the plan's arrays (owned: freed with the object)
    cdef plan_skip* skip_plan
    cdef double* rates  # run()'s rates from a plan (rate_plan), kept from call to call
    cdef Py_ssize_t rates_size
    cdef object params, grads, spare, work, twork, wwork  # owners of the memory used
    cdef object data                                       # arrays of the bound fit
    cdef EpochCheck check                                  # the bound validation set (bind_validation)
    cdef object validation                                 # its arrays and output buffers, or None

    def __init__(self, Py_ssize_t n_inputs, Py_ssize_t batch, layers, skips, params, grads):
        import numpy as np

        cdef Py_ssize_t k, size, used, begin, n_layers = len(layers), n_skips = len(skips)
        self.f32 = params.dtype == np.float32
        widths = [int(layer[0]) for layer in layers]
        order = sorted(range(n_skips), key=lambda i: (skips[i][1], i))  # by destination, stably
        self.layer_plan = <plan_layer*>PyMem_Malloc(n_layers * sizeof(plan_layer))
        self.skip_plan = <plan_skip*>PyMem_Malloc(max(n_skips, 1) * sizeof(plan_skip))
        if self.layer_plan == NULL or self.skip_plan == NULL:
            raise MemoryError()
        scalar = (n_inputs == 1 and all(w == 1 for w in widths) and n_layers <= SCALAR_MAX_LAYERS
                  and n_skips <= SCALAR_MAX_SKIPS and params.shape[0] <= SCALAR_MAX_PARAMS)
        for row, i in enumerate(order):
            src, dst, weight, acc = skips[i]
            self.skip_plan[row] = plan_skip(src=src, weight=weight, acc=acc,
                                            width=n_inputs if src < 0 else widths[src])
        used = begin = 0
        for k, (width, relu, bias, w_off, b_off, dense_acc) in enumerate(layers):
            size = batch * width
            n_into = sum(1 for i in order if skips[i][1] == k)
            # 64 elements between buffers: buffers of sizes that are multiples of 4 KiB would otherwise
            # start at the same address modulo 4 KiB, and a loop reading one while writing the next
            # (relu: z -> h) stalls on the false dependencies the CPU then sees (4K aliasing)
            z = used
            h = z + size + 64 if relu else z
            dh = h + size + 64
            used = dh + size + 64
            self.layer_plan[k] = plan_layer(
                w=w_off, b=b_off if bias else 0, relu=relu, bias=bias, dense_acc=dense_acc,
                skip_begin=begin, skip_end=begin + n_into, width=width,
                in_width=n_inputs if k == 0 else widths[k - 1], z=z, h=h, dh=dh)
            begin += n_into
        self.plan.scratch = used  # the scalar path's third parameter buffer
        used += params.shape[0] if scalar else 0
        self.plan.xb = used
        self.plan.yb = used + batch * n_inputs
        used = self.plan.yb + batch * widths[n_layers - 1]
        self.work = aligned_zeros(used, params.dtype)
        self.twork = np.zeros(batch, np.int64)
        self.wwork = np.zeros(batch, np.float64)
        self.params, self.grads = params, grads
        self.spare = aligned_zeros(params.shape[0], params.dtype)
        self.plan.n_layers = n_layers
        self.plan.n_skips = n_skips
        self.plan.n_inputs = n_inputs
        self.plan.n_outputs = widths[n_layers - 1]
        self.plan.batch = batch
        self.plan.n_params = params.shape[0]
        self.plan.layers = self.layer_plan
        self.plan.skips = self.skip_plan
        self.plan.scalar = scalar
        self.units = sum(widths[k] for k in range(n_layers - 1) if layers[k][1])
        cdef char code = b'f' if self.f32 else b'd'  # the network's dtype, as a buffer format
        self.bound.params = vector_ptr(params, "params", code, -1, True)
        self.bound.grads = vector_ptr(grads, "grads", code, self.plan.n_params, True)
        self.bound.spare = vector_ptr(self.spare, "spare", code, -1, True)
        self.bound.work = vector_ptr(self.work, "work", code, -1, True)
        self.bound.twork = <int64_t*>vector_ptr(self.twork, "twork", b'q', -1, True)
        self.bound.wwork = <double*>vector_ptr(self.wwork, "wwork", b'd', -1, True)
        self.data = None
        self.validation = None
        self.watch_level = None
        self.plateau_epoch = -1
        self.dead_seen = False

    def __dealloc__(self):
        PyMem_Free(self.layer_plan)
        PyMem_Free(self.skip_plan)
        PyMem_Free(self.rates)

    @property
    def nbytes(self):
        """Bytes this object holds beyond the network's own buffers (workspace, spare parameters)."""
        return (self.work.nbytes + self.twork.nbytes + self.wwork.nbytes + self.spare.nbytes
                + self.plan.n_layers * sizeof(plan_layer) + max(self.plan.n_skips, 1) * sizeof(plan_skip)
                + self.rates_size * sizeof(double))

    @property
    def n_units(self):
        """Hidden ReLU units (layers before the output, layer by layer): the length of run()'s unit_max."""
        return self.units

    @property
    def scalar(self):
        """True when every layer (and the input) has width 1: the scalar path runs."""
        return bool(self.plan.scalar)

    @property
    def compiled_shape(self):
        """Which of scalar.h's shapes compiled in whole (the exercise's network without biases: 0,
        with biases: 1) this network is, or -1; plain SGD on such a network keeps its weights in
        registers."""
        if not self.plan.scalar:
            return -1
        return scalar_known_index(<int>self.plan.n_layers, self.plan.n_params, self.plan.layers,
                                  self.plan.skips)

    def bind(self, X, Y, T, state1, state2, str loss, str optimizer, double momentum=0.0,
             double dampening=0.0, double weight_decay=0.0, bint nesterov=False, double beta1=0.9,
             double beta2=0.999, double eps=1e-8, divergence_factor=None, sample_weight=None):
        """Attach one fit: X (n, n_inputs); targets Y (n, n_outputs) for l1/mse/bce or class indices T
        (n,) int64 for cross_entropy (the other None); state1/state2 the optimizer's buffers (SGD
        momentum / Adam moments), all C-contiguous in the network's dtype; sample_weight None or (n,)
        float64, finite, >= 0 (each step's loss is then its batch's weighted mean, see losses.pxi). A
        fit starts here: its first run() has no earlier weights to fall back on."""
        if self.data is not None:
            raise RuntimeError("this network is already being trained (by a fit in another thread?); "
                               "train separate networks (Network.copy()) in parallel instead")
        cdef char code = b'f' if self.f32 else b'd'
        cdef Py_ssize_t n_params = self.plan.n_params
        cdef ArrayView xv
        view_array(X, "X", code, 2, False, &xv)
        if xv.shape[1] != self.plan.n_inputs:
            raise ValueError(f"X must be (n, {self.plan.n_inputs}), got ({xv.shape[0]}, {xv.shape[1]})")
        cdef Py_ssize_t n = xv.shape[0]
        self.bound.X = xv.data
        self.bound.Y = matrix_ptr(Y, "Y", code, n, self.plan.n_outputs, False) if Y is not None else NULL
        self.bound.T = <int64_t*>vector_ptr(T, "T", b'q', n, False) if T is not None else NULL
        self.bound.W = <const double*>vector_ptr(sample_weight, "sample_weight", b'd', n, False) \
            if sample_weight is not None else NULL
        self.bound.n_rows = n
        self.bound.state1 = vector_ptr(state1, "state1", code, n_params, True)
        self.bound.state2 = vector_ptr(state2, "state2", code, n_params, True) if state2 is not None else NULL
        self.bound.loss = LOSS_KINDS[loss]
        self.bound.optimizer = OPTIMIZER_KINDS[optimizer]
        self.bound.momentum = momentum
        self.bound.dampening = dampening
        self.bound.weight_decay = weight_decay
        self.bound.nesterov = nesterov
        self.bound.beta1 = beta1
        self.bound.beta2 = beta2
        self.bound.eps = eps
        self.bound.divergence_factor = 0.0 if divergence_factor is None else divergence_factor
        self.data = (X, Y, T, state1, state2, sample_weight)  # bound: kept alive until unbind()
        if self.plan.scalar:
            self.snet = scalar_net(
                n_layers=self.plan.n_layers, loss=self.bound.loss, layers=self.plan.layers,
                skips=self.plan.skips, n_params=self.plan.n_params, n_rows=self.bound.n_rows,
                batch=self.plan.batch, params=self.bound.params, spare=self.bound.spare,
                grads=self.bound.grads,
                scratch=<char*>self.bound.work + self.plan.scratch * (4 if self.f32 else 8),
                X=self.bound.X, Y=self.bound.Y,
                weight_decay=self.bound.weight_decay, divergence_factor=self.bound.divergence_factor)

    def validates_exactly(self, Py_ssize_t n_rows):
        """Whether run()'s validation loss over n_rows rows is Trainer._evaluate's to the last bit: the
        per-op pass takes all rows at once, run() chunks of at most a batch, and a row's outputs do not
        depend on the rows beside it on the register tiles, while BLAS gemm (products of m*n*k at or
        above the threshold, blas_thresholds) may sum differently. True when n_rows fits one batch or
        every forward product over n_rows rows runs on the tiles (BLAS-sized networks validate between
        calls: a Python round trip costs little next to their products)."""
        cdef Py_ssize_t k, s
        cdef const plan_layer* lay
        if n_rows <= self.plan.batch:
            return True
        for k in range(self.plan.n_layers):
            lay = &self.layer_plan[k]
            if use_blas(n_rows, lay.width, lay.in_width, FORM_FORWARD):
                return False
            for s in range(lay.skip_begin, lay.skip_end):
                if self.skip_plan[s].weight >= 0 and use_blas(n_rows, lay.width, self.skip_plan[s].width,
                                                              FORM_FORWARD):
                    return False
        return True

    def bind_validation(self, X, Y, T, sample_weight=None):
        """Attach the bound fit's validation set, after bind(): X (n, n_inputs); targets Y (n, n_outputs)
        for l1/mse/bce or class indices T (n,) int64 for cross_entropy (the other None), C-contiguous in
        the network's dtype; sample_weight None or (n,) float64, finite, >= 0, not all 0. run() then gives
        its loss at each completed epoch (val_losses). unbind() drops it."""
        import numpy as np

        if self.data is None:
            raise RuntimeError("FusedNet.bind_validation needs bind() first")
        if X.shape[0] == 0:
            raise ValueError("the validation set must have at least one row")
        cdef char code = b'f' if self.f32 else b'd'
        cdef ArrayView xv
        view_array(X, "X", code, 2, False, &xv)
        if xv.shape[1] != self.plan.n_inputs:
            raise ValueError(f"X must be (n, {self.plan.n_inputs}), got ({xv.shape[0]}, {xv.shape[1]})")
        cdef Py_ssize_t n = xv.shape[0]
        yhat = np.empty((n, self.plan.n_outputs), self.params.dtype)
        grad = np.empty_like(yhat)
        self.check.X = xv.data
        self.check.Y = matrix_ptr(Y, "Y", code, n, self.plan.n_outputs, False) if Y is not None else NULL
        self.check.T = <int64_t*>vector_ptr(T, "T", b'q', n, False) if T is not None else NULL
        self.check.W = <const double*>vector_ptr(sample_weight, "sample_weight", b'd', n, False) \
            if sample_weight is not None else NULL
        self.check.n_rows = n
        self.check.loss_kind = self.bound.loss
        self.check.yhat = matrix_ptr(yhat, "yhat", code, n, self.plan.n_outputs, True)
        self.check.grad = matrix_ptr(grad, "grad", code, n, self.plan.n_outputs, True)
        self.validation = (X, Y, T, sample_weight, yhat, grad)  # kept alive until unbind()

    def unbind(self):
        """Drop the references to the last fit's arrays (its validation set's too)."""
        self.data = None
        self.validation = None
        self.check.X = self.check.Y = NULL
        self.check.T = NULL
        self.check.W = NULL
        self.bound.X = self.bound.Y = self.bound.state1 = self.bound.state2 = NULL
        self.bound.T = NULL
        self.bound.W = NULL

    def run(self, orders, lrs, losses, totals,
            Py_ssize_t n_steps, Py_ssize_t steps_per_epoch, Py_ssize_t opt_step, first_loss,
            Py_ssize_t first_step=0, double epoch_total=0.0, bint epoch_all_zero=True,
            double time_budget=0.0, unit_max=None, unit_epochs=None, Py_ssize_t stats_every=1,
            Py_ssize_t stats_epoch=0, watch=None, val_losses=None, best=None, best_value=None,
            weight_total=None, plateau_params=None, reduce_on_plateau=None, bint lrs_per_epoch=False,
            rate_plan=None):
        """Train up to n_steps steps without the GIL, from step ``first_step`` of an epoch.

        orders: None (rows in order) or int64 (epochs, n) with each epoch's row order, row 0 the
        epoch of first_step; lrs: one rate per step, a single rate for all, or with lrs_per_epoch one
        per epoch of the call (a per-epoch schedule's, lrs[0] for the epoch of first_step), or None with
        rate_plan = (pieces, first, per_epoch): the rates are the plan's (schedule_rates) at positions
        first + k, for each step k of the call, or with per_epoch for each epoch k of it, filled here
        into a buffer this object keeps (a built-in schedule's rates, with no array made per call); losses
        (>= n_steps) and totals (>= epochs) are written. first_loss: the fit's first loss, or None
        before its first step. epoch_total, epoch_all_zero: the epoch in progress so far (when first_step > 0).
        time_budget: seconds after which the chunk pauses after a whole step (0: never).
        Returns (steps_done, status, first_loss, zero_epoch, epoch_total, epoch_all_zero): status
        "ok" = ran every step, or stopped after an epoch whose gradients were all exactly zero
        (zero_epoch True); "paused" = the time budget ran out after steps_done whole steps; "loss" =
        the loss of step steps_done diverged (its value is in losses[steps_done]; the weights are those
        before the previous update); "update" = the update of step steps_done - 1 made a parameter
        non-finite (the weights are those before it). The last two values describe the epoch in
        progress after the last step run (its sum of loss x rows, its all-zero flag).

        The training diagnostics' statistics (csrc/watch.h), all None or given together: unit_max
        (n_units,) in the network's dtype, the largest z of every hidden ReLU unit over the epoch in
        progress (IN/OUT; reset at each epoch's start); unit_epochs (>= epochs, n_units) gets it at the
        end of each completed epoch that keeps statistics: epoch e of the call (0: the epoch of
        first_step) does when stats_epoch + e is a multiple of stats_every, the others cost nothing;
        watch = (window, rtol, level or None, weight_total, tail): the
        plateau rule over the epoch losses (total / weight_total), tail the fit's last epoch losses
        (float64, at most window - 1 used). Status "plateau": stopped after an epoch where a plateau
        began (as "ok" otherwise). With plateau_params ((n_params,) in the network's dtype, needs
        watch), the first epoch of the call where a plateau begins does not stop it: its weights are
        copied there and ``plateau_epoch`` becomes its index in the call; status "plateau" then means a
        second plateau began in the last completed epoch. After the call, ``plateau_epoch`` is -1 when
        nothing was copied, and ``watch_level`` the plateau level after the last completed epoch (None:
        none is being reported); ``dead_seen`` says whether a row it wrote into unit_epochs has a unit
        whose largest z is <= 0 (a dead unit; NaN is not).

        At the end of each completed epoch e of the call, with the weights at its end: val_losses
        (>= epochs, float64; needs bind_validation) gets the validation loss in val_losses[e]; best
        (n_params,) in the network's dtype, with best_value (1,) float64 IN/OUT the best monitored value
        so far (+inf: none yet), gets those weights when the monitored value is strictly below
        best_value[0], which becomes that value: the validation loss when val_losses is given, else the
        epoch loss totals[e] / weight_total. Such calls do not take the scalar path's register loop
        (width-1 networks run the batch loop's scalar step).

        reduce_on_plateau = (mode, threshold_mode, threshold, factor, min_lr, eps, patience, cooldown, current,
        best, num_bad_epochs, cooldown_counter, weight_total, reduced): ReduceLROnPlateau's settings and
        state (csrc/rate_rule.h), applied at the end of each completed epoch e of the call to its
        monitored loss (val_losses[e] when given, else totals[e] / weight_total); the steps run at the
        rate in use (lrs is not read) and reduced (float64, >= epochs) gets the new rate after epoch e,
        or NaN. After the call, ``rule_state`` is (current, best, num_bad_epochs, cooldown_counter); without
        reduce_on_plateau, None."""
        cdef fused_chunk c
        cdef plateau_watch w
        cdef rate_rule rule
        cdef const double[::1] tail
        cdef int i
        cdef ArrayView lv, sv, tv, uv, ev, ov
        cdef char code = b'f' if self.f32 else b'd'  # the network's dtype, as a buffer format
        if self.data is None:
            raise RuntimeError("FusedNet.run needs bind() first")
        if not 0 <= first_step < steps_per_epoch or n_steps < 0:
            raise ValueError(f"first_step must lie in [0, {steps_per_epoch}) and n_steps be >= 0, got {first_step}, "
                             f"{n_steps}")
        # the epochs the call may touch (its first: the epoch of first_step): the sizes it reads and writes
        cdef Py_ssize_t epochs = (first_step + max(n_steps, 1) - 1) // steps_per_epoch + 1
        if rate_plan is not None:
            lv.data = self.planned_rates(rate_plan, n_steps, epochs)
            lrs_per_epoch = rate_plan[2]
            lv.shape[0] = epochs if lrs_per_epoch else max(n_steps, 1)
        else:
            view_array(lrs, "lrs", b'd', 1, False, &lv)
        view_array(losses, "losses", b'd', 1, True, &sv)
        view_array(totals, "totals", b'd', 1, True, &tv)
        if lv.shape[0] < (epochs if lrs_per_epoch else n_steps) and lv.shape[0] != 1 \
                or lv.shape[0] == 0 or sv.shape[0] < n_steps or tv.shape[0] < epochs:
            raise ValueError(f"a call of {n_steps} steps over {epochs} epochs needs lrs of 1 or "
                             f"{epochs if lrs_per_epoch else n_steps}, losses of >= {n_steps} and totals of >= "
                             f"{epochs}, got {lv.shape[0]}, {sv.shape[0]}, {tv.shape[0]}")
        c.orders = NULL
        if orders is not None:
            view_array(orders, "orders", b'q', 2, False, &ov)
            if ov.shape[0] < epochs or ov.shape[1] != self.bound.n_rows:
                raise ValueError(f"orders must be ({epochs}+, {self.bound.n_rows}), got ({ov.shape[0]}, "
                                 f"{ov.shape[1]})")
            c.orders = <int64_t*>ov.data
        c.lrs = <double*>lv.data
        c.n_lrs = lv.shape[0]
        c.lrs_per_epoch = lrs_per_epoch
        c.losses = <double*>sv.data
        c.totals = <double*>tv.data
        c.n_steps = n_steps
        c.steps_per_epoch = steps_per_epoch
        c.opt_step = opt_step
        c.have_first = first_loss is not None
        c.first_loss = first_loss if first_loss is not None else 0.0
        c.first_step = first_step
        c.epoch_total = epoch_total if first_step else 0.0
        c.epoch_all_zero = epoch_all_zero if first_step else True
        c.time_budget = time_budget
        c.unit_max = c.unit_epochs = NULL
        c.n_units = 0
        c.watch = NULL
        if stats_every < 1 or stats_epoch < 0:
            raise ValueError(f"stats_every must be >= 1 and stats_epoch >= 0, got {stats_every}, {stats_epoch}")
        c.stats_every, c.stats_epoch = stats_every, stats_epoch
        if unit_max is not None:
            view_array(unit_max, "unit_max", code, 1, True, &uv)
            view_array(unit_epochs, "unit_epochs", code, 2, True, &ev)
            if uv.shape[0] != self.units or ev.shape[1] != self.units or ev.shape[0] < epochs:
                raise ValueError(f"unit_max must have {self.units} entries (the n_units) and unit_epochs >= {epochs} "
                                 f"rows of as many, got {unit_max.shape} and {unit_epochs.shape}")
            c.n_units = self.units
            c.unit_max = uv.data
            c.unit_epochs = ev.data
        if watch is not None:
            window, rtol, level, weight_total, tail = watch
            if not 2 <= window <= WATCH_MAX_WINDOW:
                raise ValueError(f"window must lie in [2, {WATCH_MAX_WINDOW}], got {window}")
            w.window, w.rtol, w.weight_total = window, rtol, weight_total
            w.level = float("nan") if level is None else level
            w.n_tail = <int>min(tail.shape[0], w.window - 1)
            for i in range(w.n_tail):
                w.tail[i] = tail[tail.shape[0] - w.n_tail + i]
            c.watch = &w
        self.watch_level = None
        self.plateau_epoch = -1
        c.plateau_params, c.plateau_epoch, c.dead_seen = NULL, -1, False
        c.rule = NULL
        self.rule_state = None
        if reduce_on_plateau is not None:
            self.set_rate_rule(&rule, reduce_on_plateau, epochs)
            c.rule, c.lrs, c.n_lrs, c.lrs_per_epoch = &rule, &rule.current, 1, False
        if plateau_params is not None:
            if watch is None:
                raise ValueError("plateau_params is given with watch")
            c.plateau_params = vector_ptr(plateau_params, "plateau_params", code, self.plan.n_params, True)
        cdef EpochCheck* check = self.epoch_check(val_losses, best, best_value, weight_total, epochs)
        # width-1 networks with plain SGD from an epoch's start: the whole loop in scalar.h
        cdef bint scalar_sgd = (self.plan.scalar and self.bound.optimizer == OPT_SGD and check == NULL
                                and self.bound.momentum == 0 and self.bound.W == NULL and first_step == 0)
        cdef bint weighted = self.bound.W != NULL
        with nogil:
            if scalar_sgd:
                scalar_sgd_segments(&self.snet, &c, self.f32)
            elif self.f32 and weighted:
                run_chunk(&self.plan, &self.bound, &c, <float*>self.bound.params, <Weighted*>NULL, check)
            elif self.f32:
                run_chunk(&self.plan, &self.bound, &c, <float*>self.bound.params, <Unweighted*>NULL, check)
            elif weighted:
                run_chunk(&self.plan, &self.bound, &c, <double*>self.bound.params, <Weighted*>NULL, check)
            else:
                run_chunk(&self.plan, &self.bound, &c, <double*>self.bound.params, <Unweighted*>NULL, check)
        if check != NULL and best is not None:
            best_value[0] = check.best_value
        if c.watch != NULL:
            self.watch_level = None if w.level != w.level else w.level
            self.plateau_epoch = c.plateau_epoch
        self.dead_seen = c.dead_seen
        if c.rule != NULL:
            self.rule_state = (rule.current, rule.best, rule.num_bad, rule.cooldown_counter)
        status = ("ok", "loss", "update", "paused")[c.status]
        return (c.done, "plateau" if c.plateau and status == "ok" else status,
                (c.first_loss if c.have_first else None), bool(c.zero_epoch), c.epoch_total,
                bool(c.epoch_all_zero))

    cdef char* planned_rates(self, rate_plan, Py_ssize_t n_steps, Py_ssize_t epochs) except NULL:
        """run()'s rates from rate_plan = (pieces, first, per_epoch): the plan's at positions first + k for
        each step k of the call (or each epoch k, per_epoch), in this object's buffer."""
        cdef double rows[ROWS_MAX * ROW]
        cdef double* grown
        if type(rate_plan) is not tuple or len(rate_plan) != 3:
            raise ValueError(f"rate_plan must be (pieces, first, per_epoch), got {rate_plan!r}")
        pieces, first, per_epoch = rate_plan
        cdef Py_ssize_t count = read_pieces(pieces, rows), at = first
        cdef Py_ssize_t n = epochs if per_epoch else max(n_steps, 1)
        if at < 0 or at > MAX_POSITION - n:
            raise ValueError(f"rate_plan's first position must lie in [0, 2**53 - {n}], got {first}")
        if n > self.rates_size:
            grown = <double*>PyMem_Realloc(self.rates, n * sizeof(double))
            if grown == NULL:
                raise MemoryError()
            self.rates, self.rates_size = grown, n
        fill_pieces(rows, count, at, self.rates, n)
        return <char*>self.rates

    cdef int set_rate_rule(self, rate_rule* rule, args, Py_ssize_t epochs) except -1:
        """run()'s reduce_on_plateau tuple (validated) into ``rule``; ``epochs``: the most the call may complete."""
        cdef ArrayView rv
        # typed: each number converted once, and the checks below compare C values, not Python objects
        cdef double threshold, factor, min_lr, eps, current, best, weight_total
        cdef Py_ssize_t patience, cooldown, num_bad, cooldown_counter
        (mode, threshold_mode, threshold, factor, min_lr, eps, patience, cooldown, current, best, num_bad,
         cooldown_counter, weight_total, reduced) = args
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"reduce_on_plateau: mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs', got "
                             f"{mode!r}, {threshold_mode!r}")
        cdef Py_ssize_t top = MAX_RULE_COUNT
        if not (0 <= patience <= top and 0 <= cooldown <= top and 0 <= num_bad <= top and 0 <= cooldown_counter <= top):
            raise ValueError(f"reduce_on_plateau: patience, cooldown and the counters must lie in [0, {MAX_RULE_COUNT}], "
                             f"got {(patience, cooldown, num_bad, cooldown_counter)}")
        if not (0 < factor < 1 and threshold >= 0 and min_lr >= 0 and eps >= 0 and current >= 0
                and weight_total > 0 and best == best):
            raise ValueError("reduce_on_plateau: needs 0 < factor < 1, threshold, min_lr, eps, current >= 0, "
                             "weight_total > 0 and a best that is not NaN")
        view_array(reduced, "reduce_on_plateau's reduced", b'd', 1, True, &rv)
        if rv.shape[0] < epochs:
            raise ValueError(f"reduce_on_plateau: reduced must be a 1-D float64 array of at least {epochs} entries")
        rule.mode_max, rule.rel = mode == "max", threshold_mode == "rel"
        rule.threshold, rule.factor, rule.min_lr, rule.eps = threshold, factor, min_lr, eps
        rule.patience, rule.cooldown, rule.num_bad, rule.cooldown_counter = patience, cooldown, num_bad, cooldown_counter
        rule.current, rule.best, rule.weight_total = current, best, weight_total
        rule.reduced = <double*>rv.data
        return 0

    cdef EpochCheck* epoch_check(self, val_losses, best, best_value, weight_total, Py_ssize_t epochs) except? NULL:
        """run()'s epoch-end checks from its arguments (validated; ``epochs``: the most the call may
        complete), or NULL when it has none."""
        cdef ArrayView vv
        if val_losses is None and best is None:
            return NULL
        self.check.val_losses = NULL
        self.check.best = NULL
        if val_losses is not None:
            if self.validation is None:
                raise RuntimeError("FusedNet.run(val_losses=...) needs bind_validation() first")
            view_array(val_losses, "val_losses", b'd', 1, True, &vv)
            if vv.shape[0] < epochs:
                raise ValueError(f"val_losses must be a 1-D float64 array of at least {epochs} entries")
            self.check.val_losses = <double*>vv.data
        if best is not None:
            self.check.best = vector_ptr(best, "best", b'f' if self.f32 else b'd', self.plan.n_params, True)
            if best_value is None:
                raise ValueError("best needs best_value, a (1,) float64 array")
            self.check.best_value = (<double*>vector_ptr(best_value, "best_value", b'd', 1, True))[0]
            if val_losses is None and (weight_total is None or not weight_total > 0):
                raise ValueError("best without val_losses needs weight_total > 0 (the epoch loss's divisor)")
        self.check.weight_total = 1.0 if weight_total is None else weight_total
        return &self.check
