# Optimizer updates over the flat parameter buffer, PyTorch's formulas (torch.optim.SGD / Adam).
# Each update is computed in double and rounded once into the parameter's dtype.


cdef void sgd_core(floating[::1] P, const floating[::1] G, floating[::1] B,
                   double lr, double momentum, double dampening, double weight_decay,
                   bint nesterov, bint first_step) noexcept nogil:
    # d = g + wd p; b = d on the first step, else momentum b + (1 - dampening) d;
    # d = d + momentum b (nesterov) or b; p -= lr d.
    cdef Py_ssize_t i
    cdef double d, buf
    for i in range(P.shape[0]):
        d = <double>G[i] + weight_decay * P[i]
        if momentum != 0:
            buf = d if first_step else momentum * B[i] + (1.0 - dampening) * d
            B[i] = <floating>buf
            d = d + momentum * buf if nesterov else buf
        P[i] = <floating>(P[i] - lr * d)


cdef void adam_core(floating[::1] P, const floating[::1] G, floating[::1] M, floating[::1] V,
                    double lr, double beta1, double beta2, double eps, double weight_decay,
                    Py_ssize_t step) noexcept nogil:
    # L2 weight decay added to the gradient (Adam, not AdamW); bias-corrected moments; step >= 1.
    cdef Py_ssize_t i
    cdef double d, m, v
    cdef double step_size = lr / (1.0 - beta1 ** step)
    cdef double sqrt_bc2 = sqrt(1.0 - beta2 ** step)
    for i in range(P.shape[0]):
        d = <double>G[i] + weight_decay * P[i]
        m = beta1 * M[i] + (1.0 - beta1) * d
        v = beta2 * V[i] + (1.0 - beta2) * d * d
        M[i] = <floating>m
        V[i] = <floating>v
        P[i] = <floating>(P[i] - step_size * m / (sqrt(v) / sqrt_bc2 + eps))


def sgd_step(floating[::1] params, const floating[::1] grads, floating[::1] momentum_buffer,
             double lr, double momentum, double dampening, double weight_decay,
             bint nesterov, bint first_step):
    """One torch.optim.SGD step over flat buffers of equal length, in place."""
    with nogil:
        sgd_core(params, grads, momentum_buffer, lr, momentum, dampening, weight_decay,
                 nesterov, first_step)


def adam_step(floating[::1] params, const floating[::1] grads, floating[::1] exp_avg,
              floating[::1] exp_avg_sq, double lr, double beta1, double beta2, double eps,
              double weight_decay, Py_ssize_t step):
    """One torch.optim.Adam step (step counts from 1) over flat buffers, in place."""
    with nogil:
        adam_core(params, grads, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step)
