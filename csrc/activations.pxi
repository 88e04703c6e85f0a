# Element-wise kernels over flat buffers: relu and identity-skip addition (the loops: elementwise.h).


cdef inline void relu_fwd_ptr(const floating* Z, floating* H, Py_ssize_t size) noexcept nogil:
    if floating is float:
        ew_relu_fwd_f(Z, H, size)
    else:
        ew_relu_fwd_d(Z, H, size)


cdef inline void relu_bwd_ptr(const floating* dH, const floating* Z, floating* dZ,
                              Py_ssize_t size) noexcept nogil:
    # relu'(0) = 0, as PyTorch: the gradient passes only where z > 0. dZ may alias dH.
    if floating is float:
        ew_relu_bwd_f(dH, Z, dZ, size)
    else:
        ew_relu_bwd_d(dH, Z, dZ, size)


cdef inline void relu_bwd_bias_grad_ptr(const floating* dH, const floating* Z, floating* dZ, floating* db,
                                        Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    # relu_bwd_ptr, then dense.pxi's bias_grad of its dZ (n x m), in one pass: the same bits
    if floating is float:
        ew_relu_bwd_col_sums_f(dH, Z, dZ, db, n, m)
    else:
        ew_relu_bwd_col_sums_d(dH, Z, dZ, db, n, m)


cdef inline void relu_bwd_pass_ptr(const floating* dH, const floating* Z, floating* dZ, floating* db,
                                   Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    # A ReLU's backward as a pass of its own over dH (n x m; dZ may be dH), with the layer's bias
    # gradient db (m,) in the same pass when db is not NULL: for the gradients that did not leave a
    # product's epilogue already masked (a BLAS product, an empty one, the top layer's dz)
    if db != NULL:
        relu_bwd_bias_grad_ptr(dH, Z, dZ, db, n, m)
    else:
        relu_bwd_ptr(dH, Z, dZ, n * m)


cdef inline void add_into_ptr(floating* Y, const floating* X, Py_ssize_t size,
                              bint accumulate) noexcept nogil:
    if floating is float:
        ew_add_into_f(Y, X, size, accumulate)
    else:
        ew_add_into_d(Y, X, size, accumulate)


def relu_fwd(const floating[::1] Z, floating[::1] H):
    """H = max(Z, 0) element-wise (flat views of equal length)."""
    if Z.shape[0]:
        with nogil:
            relu_fwd_ptr(&Z[0], &H[0], Z.shape[0])


def relu_bwd(const floating[::1] dH, const floating[::1] Z, floating[::1] dZ):
    """dZ = dH where Z > 0, else 0 (relu'(0) = 0). dZ may be dH itself."""
    if Z.shape[0]:
        with nogil:
            relu_bwd_ptr(&dH[0], &Z[0], &dZ[0], Z.shape[0])


def relu_bwd_bias_grad(const floating[:, ::1] dH, const floating[:, ::1] Z, floating[:, ::1] dZ,
                       floating[::1] db):
    """dZ = relu_bwd(dH, Z) and db = dZ.sum(0) (dense_bwd's bias gradient) in one pass, bit for bit the
    two of them: the fused path's ReLU layers with a bias. dH, Z, dZ (n, m), dZ may be dH; db (m,)."""
    cdef Py_ssize_t n = dH.shape[0], m = dH.shape[1]
    if not (Z.shape[0] == dZ.shape[0] == n and Z.shape[1] == dZ.shape[1] == db.shape[0] == m):
        raise ValueError(f"dH, Z and dZ must have one shape (n, m) and db (m,), got ({n}, {m}), "
                         f"({Z.shape[0]}, {Z.shape[1]}), ({dZ.shape[0]}, {dZ.shape[1]}) and ({db.shape[0]},)")
    if db.shape[0]:
        with nogil:
            relu_bwd_bias_grad_ptr(&dH[0, 0] if n else NULL, &Z[0, 0] if n else NULL,
                                   &dZ[0, 0] if n else NULL, &db[0], n, m)


def add_into(floating[::1] Y, const floating[::1] X, bint accumulate):
    """Y = X, or Y += X when accumulate: identity-skip forward (into z) and backward (into dh)."""
    if Y.shape[0]:
        with nogil:
            add_into_ptr(&Y[0], &X[0], Y.shape[0], accumulate)


cdef bint all_finite_ptr(const floating* x, Py_ssize_t size) noexcept nogil:
    # x - x is 0 for finite x and NaN for NaN or infinity; no early exit, so the loop vectorises
    cdef Py_ssize_t i
    cdef bint bad = False
    for i in range(size):
        bad = bad | (x[i] - x[i] != 0)
    return not bad


def all_finite(x):
    """Whether no element of the C-contiguous float32 or float64 array x (any shape) is NaN or infinite
    (one pass, no temporary). The buffer is read directly: a fused-type signature would cost more to
    dispatch than the check of a small batch."""
    cdef Py_buffer view
    cdef bint ok = True
    try:
        PyObject_GetBuffer(x, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    except (BufferError, ValueError):  # NumPy raises ValueError for a strided array
        raise ValueError("all_finite needs a C-contiguous array") from None
    cdef const char* fmt = view.format
    cdef char kind = fmt[0] if fmt != NULL and fmt[0] != 0 and fmt[1] == 0 else 0
    try:
        if kind != c'f' and kind != c'd':
            raise TypeError("all_finite needs a float32 or float64 array, got buffer format "
                            f"{(fmt or b'').decode(errors='replace')!r}")
        if view.len:
            with nogil:
                if kind == c'f':
                    ok = all_finite_ptr(<const float*>view.buf, view.len // 4)
                else:
                    ok = all_finite_ptr(<const double*>view.buf, view.len // 8)
    finally:
        PyBuffer_Release(&view)
    return ok
