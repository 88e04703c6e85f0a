# Losses on a batch, mean-reduced as PyTorch's reduction="mean": value and gradient in one pass.
# Every loss returns the mean (as a double) and writes d(mean loss)/d(yhat) into G. Cores take pointers
# to C-contiguous (n, m) buffers.

cdef enum LossKind:
    LOSS_L1 = 0
    LOSS_MSE = 1
    LOSS_BCE = 2
    LOSS_CROSS_ENTROPY = 3

LOSS_KINDS = {"l1": LOSS_L1, "mse": LOSS_MSE, "bce": LOSS_BCE, "cross_entropy": LOSS_CROSS_ENTROPY}


cdef extern from "loss_terms.h" nogil:
    # one element's loss term; its gradient, scaled by 1/N, in g
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


cdef double cross_entropy_ptr(const floating* Z, const int64_t* T, floating* G,
                              Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    # Per row: logsumexp(z) - z[t], with the row max subtracted; gradient (softmax - onehot) / n.
    cdef Py_ssize_t i, j
    cdef const floating* z
    cdef floating* g
    cdef double zmax, s, lse, total = 0.0, scale = 1.0 / n
    for i in range(n):
        z = Z + i * m
        g = G + i * m
        zmax = z[0]
        for j in range(1, m):
            if z[j] > zmax:
                zmax = z[j]
        s = 0.0
        for j in range(m):
            s += exp(<double>z[j] - zmax)
        lse = zmax + log(s)
        total += lse - z[T[i]]
        for j in range(m):
            g[j] = <floating>(exp(<double>z[j] - lse) * scale)
        g[T[i]] = <floating>(g[T[i]] - scale)
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
