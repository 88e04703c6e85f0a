# Losses on a batch, mean-reduced as PyTorch's reduction="mean": value and gradient in one pass.
# Every loss returns the mean (as a double) and writes d(mean loss)/d(yhat) into G.


cdef double l1_core(const floating[:, ::1] Yhat, const floating[:, ::1] Y,
                    floating[:, ::1] G) noexcept nogil:
    # d|r|/dr = sign(r) with sign(0) = 0 (PyTorch's l1_loss).
    cdef Py_ssize_t i, j, n = Yhat.shape[0], m = Yhat.shape[1]
    cdef double r, total = 0.0, scale = 1.0 / (n * m)
    for i in range(n):
        for j in range(m):
            r = <double>Yhat[i, j] - Y[i, j]
            total += fabs(r)
            G[i, j] = <floating>(scale if r > 0 else (-scale if r < 0 else 0.0))
    return total * scale


cdef double mse_core(const floating[:, ::1] Yhat, const floating[:, ::1] Y,
                     floating[:, ::1] G) noexcept nogil:
    cdef Py_ssize_t i, j, n = Yhat.shape[0], m = Yhat.shape[1]
    cdef double r, total = 0.0, scale = 1.0 / (n * m)
    for i in range(n):
        for j in range(m):
            r = <double>Yhat[i, j] - Y[i, j]
            total += r * r
            G[i, j] = <floating>(2.0 * r * scale)
    return total * scale


cdef inline double sigmoid(double z) noexcept nogil:
    cdef double e
    if z >= 0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


cdef double bce_core(const floating[:, ::1] Z, const floating[:, ::1] Y,
                     floating[:, ::1] G) noexcept nogil:
    # softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)): never log(sigmoid), never overflows.
    cdef Py_ssize_t i, j, n = Z.shape[0], m = Z.shape[1]
    cdef double z, y, total = 0.0, scale = 1.0 / (n * m)
    for i in range(n):
        for j in range(m):
            z = Z[i, j]
            y = Y[i, j]
            total += (z if z > 0 else 0.0) - y * z + log1p(exp(-fabs(z)))
            G[i, j] = <floating>((sigmoid(z) - y) * scale)
    return total * scale


cdef double cross_entropy_core(const floating[:, ::1] Z, const int64_t[::1] T,
                               floating[:, ::1] G) noexcept nogil:
    # Per row: logsumexp(z) - z[t], with the row max subtracted; gradient (softmax - onehot) / n.
    cdef Py_ssize_t i, j, n = Z.shape[0], m = Z.shape[1]
    cdef double zmax, s, lse, total = 0.0, scale = 1.0 / n
    for i in range(n):
        zmax = Z[i, 0]
        for j in range(1, m):
            if Z[i, j] > zmax:
                zmax = Z[i, j]
        s = 0.0
        for j in range(m):
            s += exp(<double>Z[i, j] - zmax)
        lse = zmax + log(s)
        total += lse - Z[i, T[i]]
        for j in range(m):
            G[i, j] = <floating>(exp(<double>Z[i, j] - lse) * scale)
        G[i, T[i]] = <floating>(G[i, T[i]] - scale)
    return total * scale


def l1_loss(const floating[:, ::1] yhat, const floating[:, ::1] y, floating[:, ::1] grad):
    """mean |yhat - y|; grad = sign(yhat - y) / N with sign(0) = 0. All (n, m)."""
    cdef double loss
    with nogil:
        loss = l1_core(yhat, y, grad)
    return loss


def mse_loss(const floating[:, ::1] yhat, const floating[:, ::1] y, floating[:, ::1] grad):
    """mean (yhat - y)^2; grad = 2 (yhat - y) / N. All (n, m)."""
    cdef double loss
    with nogil:
        loss = mse_core(yhat, y, grad)
    return loss


def bce_loss(const floating[:, ::1] logits, const floating[:, ::1] y, floating[:, ::1] grad):
    """mean softplus(z) - y z on logits z, targets in [0, 1]; grad = (sigmoid(z) - y) / N."""
    cdef double loss
    with nogil:
        loss = bce_core(logits, y, grad)
    return loss


def cross_entropy_loss(const floating[:, ::1] logits, const int64_t[::1] target,
                       floating[:, ::1] grad):
    """mean over rows of logsumexp(z) - z[target]; logits (n, c), target (n,) in [0, c)."""
    cdef double loss
    with nogil:
        loss = cross_entropy_core(logits, target, grad)
    return loss
