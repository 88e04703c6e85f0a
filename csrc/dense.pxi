# Dense layer: Z (+)= X @ W.T + b (and H = relu(Z) from the same pass) and its backward pass. W is
# (out, in), PyTorch's nn.Linear layout.
# Cores take pointers to C-contiguous buffers and their sizes, so the fused epoch (train.pxi) calls them
# on slices of one workspace; the def wrappers below serve the per-op path.

cdef void dense_fwd_ptr(const floating* X,    # IN  (n, k)
                        const floating* W,    # IN  (m, k)
                        const floating* b,    # IN  (m,), read only if has_bias
                        floating* Z,          # OUT (n, m)
                        Py_ssize_t n, Py_ssize_t k, Py_ssize_t m,
                        bint has_bias, bint accumulate,
                        floating* H=NULL,                 # OUT (n, m) relu(Z), written if not NULL
                        const floating* R=NULL) noexcept nogil:  # IN (n, m) added to Z before the relu
    if n == 0 or m == 0:
        return
    if has_bias and accumulate:  # Z += b first, then the product: (Z + b) + X @ W.T
        if floating is float:
            ew_bias_rows_f(Z, b, n, m, True)
        else:
            ew_bias_rows_d(Z, b, n, m, True)
        has_bias = False
    # Z = X @ W.T (+ b) (+ R): B[p, o] = W[o, p]
    matmul_bias_relu(n, m, k, X, k, 1, W, 1, k, Z, m, accumulate, b if has_bias else NULL, R, m, H, m)


cdef inline void bias_grad(const floating* dZ, floating* db, Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    """db = dZ.sum(0), accumulated in double, row by row (elementwise.h)."""
    if floating is float:
        ew_col_sums_f(dZ, db, n, m)
    else:
        ew_col_sums_d(dZ, db, n, m)


cdef bint dense_bwd_ptr(const floating* dZ,   # IN  (n, m)
                        const floating* X,    # IN  (n, k)
                        const floating* W,    # IN  (m, k)
                        floating* dW,         # OUT (m, k)  overwritten
                        floating* db,         # OUT (m,)    overwritten if has_bias
                        floating* dX,         # OUT (n, k)  written if need_dx
                        Py_ssize_t n, Py_ssize_t k, Py_ssize_t m,
                        bint has_bias, bint need_dx, bint accumulate_dx,
                        const floating* relu_z=NULL,  # IN  (n, k) z of the ReLU that X is, or NULL
                        floating* relu_db=NULL) noexcept nogil:  # OUT (k,) that layer's bias gradient
    """dW = dZ.T @ X, db = dZ.sum(0) when has_bias, dX (+)= dZ @ W when need_dx. With relu_z, dX is the
    last term of the gradient of X = relu(relu_z) and leaves as that layer's dZ (relu_bwd_ptr, and
    relu_db = its column sums when not NULL, relu_bwd_bias_grad_ptr's bits): returns whether it did."""
    if m == 0:
        return False
    if has_bias:
        bias_grad(dZ, db, n, m)
    if k == 0:
        return False
    # dW = dZ.T @ X: A[o, i] = dZ[i, o]
    matmul(m, k, n, dZ, 1, m, X, k, 1, dW, k, False)
    if need_dx and n > 0:
        # dX (+)= dZ @ W
        if relu_z != NULL:
            matmul_relu_bwd(n, k, m, dZ, m, 1, W, k, 1, dX, accumulate_dx, relu_z, relu_db)
            return True
        matmul(n, k, m, dZ, m, 1, W, k, 1, dX, k, accumulate_dx)
    return False


def dense_fwd(const floating[:, ::1] X, const floating[:, ::1] W, const floating[::1] b,
              floating[:, ::1] Z, bint has_bias, bint accumulate):
    """Z = X @ W.T (+ b) (+ Z when accumulate). X (n, k), W (m, k), b (m,) or empty, Z (n, m)."""
    with nogil:
        dense_fwd_ptr(&X[0, 0] if X.shape[0] * X.shape[1] else NULL,
                      &W[0, 0] if W.shape[0] * W.shape[1] else NULL,
                      &b[0] if has_bias and b.shape[0] else NULL,
                      &Z[0, 0] if Z.shape[0] * Z.shape[1] else NULL,
                      X.shape[0], X.shape[1], W.shape[0], has_bias, accumulate)


def dense_fwd_relu(const floating[:, ::1] X, const floating[:, ::1] W, const floating[::1] b,
                   floating[:, ::1] Z, floating[:, ::1] H, bint has_bias, const floating[:, ::1] R=None):
    """Z = X @ W.T (+ b) (+ R) and H = relu(Z), in one pass over Z: what dense_fwd, add_into(Z, R) and
    relu_fwd give one after the other. Shapes as dense_fwd; H and R (a residual, optional) (n, m)."""
    cdef const floating* residual = NULL
    if R is not None:
        if R.shape[0] != Z.shape[0] or R.shape[1] != Z.shape[1]:
            raise ValueError(f"R must have Z's shape ({Z.shape[0]}, {Z.shape[1]}), got ({R.shape[0]}, {R.shape[1]})")
        residual = &R[0, 0] if R.shape[0] * R.shape[1] else NULL
    with nogil:
        dense_fwd_ptr(&X[0, 0] if X.shape[0] * X.shape[1] else NULL,
                      &W[0, 0] if W.shape[0] * W.shape[1] else NULL,
                      &b[0] if has_bias and b.shape[0] else NULL,
                      &Z[0, 0] if Z.shape[0] * Z.shape[1] else NULL,
                      X.shape[0], X.shape[1], W.shape[0], has_bias, False,
                      &H[0, 0] if H.shape[0] * H.shape[1] else NULL, residual)


def dense_bwd(const floating[:, ::1] dZ, const floating[:, ::1] X, const floating[:, ::1] W,
              floating[:, ::1] dW, floating[::1] db, floating[:, ::1] dX,
              bint has_bias, bint need_dx, bint accumulate_dx):
    """dW = dZ.T @ X, db = dZ.sum(0), dX (+)= dZ @ W. Shapes as dense_fwd; dX (n, k)."""
    with nogil:
        dense_bwd_ptr(&dZ[0, 0] if dZ.shape[0] * dZ.shape[1] else NULL,
                      &X[0, 0] if X.shape[0] * X.shape[1] else NULL,
                      &W[0, 0] if W.shape[0] * W.shape[1] else NULL,
                      &dW[0, 0] if dW.shape[0] * dW.shape[1] else NULL,
                      &db[0] if has_bias and db.shape[0] else NULL,
                      &dX[0, 0] if need_dx and dX.shape[0] * dX.shape[1] else NULL,
                      X.shape[0], X.shape[1], W.shape[0], has_bias, need_dx, accumulate_dx)


def dense_bwd_relu(const floating[:, ::1] dZ, const floating[:, ::1] X, const floating[:, ::1] W,
                   floating[:, ::1] dW, floating[:, ::1] dX, const floating[:, ::1] Z_below,
                   floating[::1] db_below, bint accumulate_dx):
    """dense_bwd without a bias, X being relu(Z_below): dW = dZ.T @ X, dX (+)= dZ @ W, then dX = the
    layer below's dZ (relu_bwd(dX, Z_below)) and, when db_below is not empty, db_below = dX.sum(0): the
    bits of dense_bwd then relu_bwd_bias_grad (relu_bwd), as the fused backward pass takes them.
    dZ (n, m), X (n, k), W (m, k), dW (m, k), dX and Z_below (n, k), db_below (k,) or (0,)."""
    cdef Py_ssize_t n = dZ.shape[0], m = dZ.shape[1], k = X.shape[1]
    if not (X.shape[0] == n and W.shape[0] == m and W.shape[1] == k and dW.shape[0] == m and dW.shape[1] == k
            and dX.shape[0] == n and dX.shape[1] == k and Z_below.shape[0] == n and Z_below.shape[1] == k):
        shapes = ", ".join(f"{name} ({a.shape[0]}, {a.shape[1]})" for name, a in
                           (("dZ", dZ), ("X", X), ("W", W), ("dW", dW), ("dX", dX), ("Z_below", Z_below)))
        raise ValueError(f"dense_bwd_relu needs dZ (n, m), X (n, k), W and dW (m, k), dX and Z_below (n, k); "
                         f"got {shapes}")
    if db_below.shape[0] not in (0, k):
        raise ValueError(f"db_below must have {k} entries (or none), got {db_below.shape[0]}")
    cdef bint masked
    with nogil:
        masked = dense_bwd_ptr(&dZ[0, 0] if n * m else NULL, &X[0, 0] if n * k else NULL,
                               &W[0, 0] if m * k else NULL, &dW[0, 0] if m * k else NULL, <floating*>NULL,
                               &dX[0, 0] if n * k else NULL, n, k, m, False, True, accumulate_dx,
                               &Z_below[0, 0] if n * k else NULL, &db_below[0] if db_below.shape[0] else NULL)
        if not masked and k:  # no product (n or m = 0): the ReLU's backward as a pass of its own
            relu_bwd_pass_ptr(&dX[0, 0] if n else NULL, &Z_below[0, 0] if n else NULL, &dX[0, 0] if n else NULL,
                              &db_below[0] if db_below.shape[0] else NULL, n, k)
