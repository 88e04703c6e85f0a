# Element-wise kernels over flat (contiguous, 1-D) views: relu and identity-skip addition.


cdef void relu_fwd_core(const floating[::1] Z, floating[::1] H) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating z
    for i in range(Z.shape[0]):
        z = Z[i]
        H[i] = z if z > 0 else 0


cdef void relu_bwd_core(const floating[::1] dH, const floating[::1] Z,
                        floating[::1] dZ) noexcept nogil:
    # relu'(0) = 0, as PyTorch: the gradient passes only where z > 0. dZ may alias dH.
    cdef Py_ssize_t i
    for i in range(Z.shape[0]):
        dZ[i] = dH[i] if Z[i] > 0 else 0


cdef void add_into_core(floating[::1] Y, const floating[::1] X, bint accumulate) noexcept nogil:
    cdef Py_ssize_t i
    if accumulate:
        for i in range(Y.shape[0]):
            Y[i] = Y[i] + X[i]
    else:
        for i in range(Y.shape[0]):
            Y[i] = X[i]


def relu_fwd(const floating[::1] Z, floating[::1] H):
    """H = max(Z, 0) element-wise (flat views of equal length)."""
    with nogil:
        relu_fwd_core(Z, H)


def relu_bwd(const floating[::1] dH, const floating[::1] Z, floating[::1] dZ):
    """dZ = dH where Z > 0, else 0 (relu'(0) = 0). dZ may be dH itself."""
    with nogil:
        relu_bwd_core(dH, Z, dZ)


def add_into(floating[::1] Y, const floating[::1] X, bint accumulate):
    """Y = X, or Y += X when accumulate: identity-skip forward (into z) and backward (into dh)."""
    with nogil:
        add_into_core(Y, X, accumulate)
