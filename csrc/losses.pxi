# Losses on a batch, mean-reduced as PyTorch's reduction="mean": value and gradient in one pass.
# Every loss returns the mean (as a double) and writes d(mean loss)/d(yhat) into G. Cores take pointers
# to C-contiguous (n, m) buffers.
#
# Weighted batches (sample weights w, one per row, float64): the loss is the weighted mean of the rows'
# losses, sum_i w_i l_i / sum_i w_i, where l_i is the row's mean over its m outputs (cross-entropy: the
# row's term), as PyTorch's reduction="none" followed by (l * w).sum() / w.sum(); an integer weight counts
# a row that many times. A batch whose weights are all 0 has loss 0 and gradient 0. Rows of weight 0 are
# skipped (their gradient is 0 even where their loss is not finite).

cdef extern from "loss_terms.h" nogil:
    enum:  # the losses' numbers, written once (loss_terms.h)
        LOSS_L1
        LOSS_MSE
        LOSS_BCE
        LOSS_CROSS_ENTROPY
        LOSS_KIND_COUNT
    const char* loss_kind_names[]

LOSS_NAMES = tuple(loss_kind_names[i].decode() for i in range(LOSS_KIND_COUNT))
LOSS_KINDS = {name: kind for kind, name in enumerate(LOSS_NAMES)}


cdef extern from "loss_terms.h" nogil:
    # one element's loss term; its gradient, scaled by 1/N, in g
    double loss_l1_term(double yhat, double y, double scale, double* g)
    double loss_mse_term(double yhat, double y, double scale, double* g)
    double loss_bce_term(double z, double y, double scale, double* g)
    # whole batches of l1 and mse, in vectorised loops (the same terms)
    double loss_l1_batch_f(const float* yhat, const float* y, float* g, Py_ssize_t size, double scale)
    double loss_l1_batch_d(const double* yhat, const double* y, double* g, Py_ssize_t size, double scale)
    double loss_mse_batch_f(const float* yhat, const float* y, float* g, Py_ssize_t size, double scale)
    double loss_mse_batch_d(const double* yhat, const double* y, double* g, Py_ssize_t size, double scale)


cdef double l1_ptr(const floating* Yhat, const floating* Y, floating* G,
                   Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    # |yhat - y|, gradient sign(yhat - y) / N with sign(0) = 0 (PyTorch's l1_loss)
    if floating is float:
        return loss_l1_batch_f(Yhat, Y, G, n * m, 1.0 / (n * m))
    else:
        return loss_l1_batch_d(Yhat, Y, G, n * m, 1.0 / (n * m))


cdef double mse_ptr(const floating* Yhat, const floating* Y, floating* G,
                    Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    # (yhat - y)^2, gradient 2 (yhat - y) / N
    if floating is float:
        return loss_mse_batch_f(Yhat, Y, G, n * m, 1.0 / (n * m))
    else:
        return loss_mse_batch_d(Yhat, Y, G, n * m, 1.0 / (n * m))


cdef double bce_ptr(const floating* Z, const floating* Y, floating* G,
                    Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t i
    cdef double g, total = 0.0, scale = 1.0 / (n * m)
    for i in range(n * m):
        total += loss_bce_term(Z[i], Y[i], scale, &g)
        G[i] = <floating>g
    return total * scale


cdef inline double row_cross_entropy(const floating* z, int64_t t, floating* g, double scale,
                                     Py_ssize_t m) noexcept nogil:
    """logsumexp(z) - z[t] of one row of m logits; g = (softmax(z) - onehot(t)) * scale."""
    cdef Py_ssize_t j
    cdef double zmax = z[0], s = 0.0, lse
    for j in range(1, m):
        if z[j] > zmax:
            zmax = z[j]
    for j in range(m):
        s += exp(<double>z[j] - zmax)
    lse = zmax + log(s)
    for j in range(m):
        g[j] = <floating>(exp(<double>z[j] - lse) * scale)
    g[t] = <floating>(g[t] - scale)
    return lse - z[t]


cdef double cross_entropy_ptr(const floating* Z, const int64_t* T, floating* G,
                              Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    # Per row: logsumexp(z) - z[t], with the row max subtracted; gradient (softmax - onehot) / n.
    cdef Py_ssize_t i
    cdef double total = 0.0, scale = 1.0 / n
    for i in range(n):
        total += row_cross_entropy(Z + i * m, T[i], G + i * m, scale, m)
    return total * scale


cdef double loss_ptr(int kind, const floating* Yhat, const floating* Y, const int64_t* T, floating* G,
                     Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    """The loss of the given kind (Y for l1/mse/bce, class indices T for cross-entropy)."""
    if kind == LOSS_L1:
        return l1_ptr(Yhat, Y, G, n, m)
    if kind == LOSS_MSE:
        return mse_ptr(Yhat, Y, G, n, m)
    if kind == LOSS_BCE:
        return bce_ptr(Yhat, Y, G, n, m)
    return cross_entropy_ptr(Yhat, T, G, n, m)


cdef double weighted_loss_ptr(int kind, const floating* Yhat, const floating* Y, const int64_t* T,
                              const double* W, floating* G, Py_ssize_t n, Py_ssize_t m,
                              double* weight_sum) noexcept nogil:
    """sum_i w_i l_i / sum_i w_i for the n rows (see the top of this file); G its gradient; the sum of
    the weights in *weight_sum. Y for l1/mse/bce, class indices T for cross-entropy."""
    cdef Py_ssize_t i, j, k
    cdef double wsum = 0.0, total = 0.0, row, scale, g
    for i in range(n):
        wsum += W[i]
    weight_sum[0] = wsum
    if wsum == 0.0:
        memset(G, 0, n * m * sizeof(floating))
        return 0.0
    # per row: d(loss)/d(yhat_ij) = w_i / (wsum * m) * d(element term)/d(yhat_ij)
    scale = 1.0 / wsum if kind == LOSS_CROSS_ENTROPY else 1.0 / (wsum * m)
    for i in range(n):
        if W[i] == 0.0:
            memset(G + i * m, 0, m * sizeof(floating))
            continue
        if kind == LOSS_CROSS_ENTROPY:
            row = row_cross_entropy(Yhat + i * m, T[i], G + i * m, W[i] * scale, m)
        else:
            row = 0.0
            for j in range(m):
                k = i * m + j
                if kind == LOSS_L1:
                    row += loss_l1_term(Yhat[k], Y[k], W[i] * scale, &g)
                elif kind == LOSS_MSE:
                    row += loss_mse_term(Yhat[k], Y[k], W[i] * scale, &g)
                else:
                    row += loss_bce_term(Yhat[k], Y[k], W[i] * scale, &g)
                G[k] = <floating>g
        total += W[i] * row
    return total * scale


def weighted_loss(str loss, const floating[:, ::1] yhat, y, const double[::1] weight,
                  floating[:, ::1] grad):
    """(loss, weight sum) of a weighted batch (see losses.pxi): yhat (n, m); y (n, m) in yhat's dtype
    for l1/mse/bce, int64 class indices (n,) for cross_entropy; weight (n,) float64, finite, >= 0;
    grad (n, m) receives d(loss)/d(yhat)."""
    cdef int kind = LOSS_KINDS[loss]
    cdef const floating[:, ::1] targets
    cdef const int64_t[::1] classes
    cdef const floating* Y = NULL
    cdef const int64_t* T = NULL
    cdef double value, wsum
    if kind == LOSS_CROSS_ENTROPY:
        classes = y
        T = &classes[0]
    else:
        targets = y
        Y = &targets[0, 0]
    with nogil:
        value = weighted_loss_ptr(kind, &yhat[0, 0], Y, T, &weight[0], &grad[0, 0], yhat.shape[0],
                                  yhat.shape[1], &wsum)
    return value, wsum


def l1_loss(const floating[:, ::1] yhat, const floating[:, ::1] y, floating[:, ::1] grad):
    """mean |yhat - y|; grad = sign(yhat - y) / N with sign(0) = 0. All (n, m)."""
    cdef double loss
    with nogil:
        loss = l1_ptr(&yhat[0, 0], &y[0, 0], &grad[0, 0], yhat.shape[0], yhat.shape[1])
    return loss


def mse_loss(const floating[:, ::1] yhat, const floating[:, ::1] y, floating[:, ::1] grad):
    """mean (yhat - y)^2; grad = 2 (yhat - y) / N. All (n, m)."""
    cdef double loss
    with nogil:
        loss = mse_ptr(&yhat[0, 0], &y[0, 0], &grad[0, 0], yhat.shape[0], yhat.shape[1])
    return loss


def bce_loss(const floating[:, ::1] logits, const floating[:, ::1] y, floating[:, ::1] grad):
    """mean softplus(z) - y z on logits z, targets in [0, 1]; grad = (sigmoid(z) - y) / N."""
    cdef double loss
    with nogil:
        loss = bce_ptr(&logits[0, 0], &y[0, 0], &grad[0, 0], logits.shape[0], logits.shape[1])
    return loss


def cross_entropy_loss(const floating[:, ::1] logits, const int64_t[::1] target,
                       floating[:, ::1] grad):
    """mean over rows of logsumexp(z) - z[target]; logits (n, c), target (n,) in [0, c)."""
    cdef double loss
    with nogil:
        loss = cross_entropy_ptr(&logits[0, 0], &target[0], &grad[0, 0], logits.shape[0],
                                 logits.shape[1])
    return loss
