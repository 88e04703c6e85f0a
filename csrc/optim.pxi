# Optimizer updates over the flat parameter buffer, PyTorch's formulas (torch.optim.SGD / Adam).
# Each update is computed in double and rounded once into the parameter's dtype.
#
# The cores read parameters from P and write the updated ones to P_out, which is P itself on the
# per-op path; the fused epoch (train.pxi) writes into a second buffer instead, so the weights before
# the update survive as the "last good" ones at no extra cost. They return UPDATE_* flags: whether any
# gradient was nonzero and whether any updated parameter is NaN or infinite.

cdef enum:
    UPDATE_GRAD_NONZERO = 1
    UPDATE_NONFINITE = 2

cdef enum OptimizerKind:
    OPT_SGD = 0
    OPT_ADAM = 1

OPTIMIZER_KINDS = {"sgd": OPT_SGD, "adam": OPT_ADAM}


cdef inline int update_flags(bint grad_nonzero, bint nonfinite) noexcept nogil:
    return (UPDATE_GRAD_NONZERO if grad_nonzero else 0) | (UPDATE_NONFINITE if nonfinite else 0)


cdef int sgd_ptr(const floating* P, floating* P_out, const floating* G, floating* B, Py_ssize_t size,
                 double lr, double momentum, double dampening, double weight_decay,
                 bint nesterov, bint first_step) noexcept nogil:
    # d = g + wd p; b = d on the first step, else momentum b + (1 - dampening) d;
    # d = d + momentum b (nesterov) or b; p -= lr d.
    cdef Py_ssize_t i
    cdef double d, buf
    cdef floating p
    cdef bint nonzero = False, nonfinite = False
    for i in range(size):
        nonzero = nonzero | (G[i] != 0)
        d = <double>G[i] + weight_decay * P[i]
        if momentum != 0:
            buf = d if first_step else momentum * B[i] + (1.0 - dampening) * d
            B[i] = <floating>buf
            d = d + momentum * buf if nesterov else buf
        p = <floating>(P[i] - lr * d)
        nonfinite = nonfinite | (p - p != 0)  # true for NaN and +-inf only
        P_out[i] = p
    return update_flags(nonzero, nonfinite)


cdef int adam_ptr(const floating* P, floating* P_out, const floating* G, floating* M, floating* V,
                  Py_ssize_t size, double lr, double beta1, double beta2, double eps,
                  double weight_decay, Py_ssize_t step) noexcept nogil:
    # L2 weight decay added to the gradient (Adam, not AdamW); bias-corrected moments; step >= 1.
    cdef Py_ssize_t i
    cdef double d, m, v
    cdef double step_size = lr / (1.0 - beta1 ** step)
    cdef double sqrt_bc2 = sqrt(1.0 - beta2 ** step)
    cdef floating p
    cdef bint nonzero = False, nonfinite = False
    for i in range(size):
        nonzero = nonzero | (G[i] != 0)
        d = <double>G[i] + weight_decay * P[i]
        m = beta1 * M[i] + (1.0 - beta1) * d
        v = beta2 * V[i] + (1.0 - beta2) * d * d
        M[i] = <floating>m
        V[i] = <floating>v
        p = <floating>(P[i] - step_size * m / (sqrt(v) / sqrt_bc2 + eps))
        nonfinite = nonfinite | (p - p != 0)
        P_out[i] = p
    return update_flags(nonzero, nonfinite)


def sgd_step(floating[::1] params, const floating[::1] grads, floating[::1] momentum_buffer,
             double lr, double momentum, double dampening, double weight_decay,
             bint nesterov, bint first_step):
    """One torch.optim.SGD step over flat buffers of equal length, in place."""
    if params.shape[0]:
        with nogil:
            sgd_ptr(&params[0], &params[0], &grads[0], &momentum_buffer[0], params.shape[0], lr,
                    momentum, dampening, weight_decay, nesterov, first_step)


def adam_step(floating[::1] params, const floating[::1] grads, floating[::1] exp_avg,
              floating[::1] exp_avg_sq, double lr, double beta1, double beta2, double eps,
              double weight_decay, Py_ssize_t step):
    """One torch.optim.Adam step (step counts from 1) over flat buffers, in place."""
    if params.shape[0]:
        with nogil:
            adam_ptr(&params[0], &params[0], &grads[0], &exp_avg[0], &exp_avg_sq[0], params.shape[0],
                     lr, beta1, beta2, eps, weight_decay, step)
