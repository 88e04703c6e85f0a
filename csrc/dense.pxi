# Dense layer: Z (+)= X @ W.T + b and its backward pass. W is (out, in), PyTorch's nn.Linear layout.


cdef void dense_fwd_core(const floating[:, ::1] X,    # IN  (n, k)
                         const floating[:, ::1] W,    # IN  (m, k)
                         const floating[::1] b,       # IN  (m,), read only if has_bias
                         floating[:, ::1] Z,          # OUT (n, m)
                         bint has_bias, bint accumulate) noexcept nogil:
    cdef Py_ssize_t n = X.shape[0], k = X.shape[1], m = W.shape[0]
    cdef Py_ssize_t i, o, p
    cdef double acc
    cdef floating beta
    if n == 0 or m == 0:
        return
    if k > 0 and use_blas(n, m, k):
        beta = 1 if accumulate else 0
        if has_bias:
            for i in range(n):
                for o in range(m):
                    Z[i, o] = Z[i, o] + b[o] if accumulate else b[o]
            beta = 1
        gemm_rowmajor(c'n', c't', <int>n, <int>m, <int>k, 1, &X[0, 0], <int>k, &W[0, 0], <int>k,
                      beta, &Z[0, 0], <int>m)
        return
    for i in range(n):
        for o in range(m):
            acc = Z[i, o] if accumulate else 0.0
            if has_bias:
                acc += b[o]
            for p in range(k):
                acc += <double>X[i, p] * W[o, p]
            Z[i, o] = <floating>acc


cdef void dense_bwd_core(const floating[:, ::1] dZ,   # IN  (n, m)
                         const floating[:, ::1] X,    # IN  (n, k)
                         const floating[:, ::1] W,    # IN  (m, k)
                         floating[:, ::1] dW,         # OUT (m, k)  overwritten
                         floating[::1] db,            # OUT (m,)    overwritten if has_bias
                         floating[:, ::1] dX,         # OUT (n, k)  written if need_dx
                         bint has_bias, bint need_dx, bint accumulate_dx) noexcept nogil:
    cdef Py_ssize_t n = X.shape[0], k = X.shape[1], m = W.shape[0]
    cdef Py_ssize_t i, o, p
    cdef double acc
    if m == 0 or (k == 0 and not has_bias):
        return
    if has_bias:
        for o in range(m):
            acc = 0.0
            for i in range(n):
                acc += dZ[i, o]
            db[o] = <floating>acc
    if k == 0:
        return
    # dW = dZ.T @ X
    if n > 0 and use_blas(m, k, n):
        gemm_rowmajor(c't', c'n', <int>m, <int>k, <int>n, 1, &dZ[0, 0], <int>m, &X[0, 0], <int>k,
                      0, &dW[0, 0], <int>k)
    else:
        for o in range(m):
            for p in range(k):
                acc = 0.0
                for i in range(n):
                    acc += <double>dZ[i, o] * X[i, p]
                dW[o, p] = <floating>acc
    if not need_dx or n == 0:
        return
    # dX (+)= dZ @ W
    if use_blas(n, k, m):
        gemm_rowmajor(c'n', c'n', <int>n, <int>k, <int>m, 1, &dZ[0, 0], <int>m, &W[0, 0], <int>k,
                      1 if accumulate_dx else 0, &dX[0, 0], <int>k)
    else:
        for i in range(n):
            for p in range(k):
                acc = dX[i, p] if accumulate_dx else 0.0
                for o in range(m):
                    acc += <double>dZ[i, o] * W[o, p]
                dX[i, p] = <floating>acc


def dense_fwd(const floating[:, ::1] X, const floating[:, ::1] W, const floating[::1] b,
              floating[:, ::1] Z, bint has_bias, bint accumulate):
    """Z = X @ W.T (+ b) (+ Z when accumulate). X (n, k), W (m, k), b (m,) or empty, Z (n, m)."""
    with nogil:
        dense_fwd_core(X, W, b, Z, has_bias, accumulate)


def dense_bwd(const floating[:, ::1] dZ, const floating[:, ::1] X, const floating[:, ::1] W,
              floating[:, ::1] dW, floating[::1] db, floating[:, ::1] dX,
              bint has_bias, bint need_dx, bint accumulate_dx):
    """dW = dZ.T @ X, db = dZ.sum(0), dX (+)= dZ @ W. Shapes as dense_fwd; dX (n, k)."""
    with nogil:
        dense_bwd_core(dZ, X, W, dW, db, dX, has_bias, need_dx, accumulate_dx)
