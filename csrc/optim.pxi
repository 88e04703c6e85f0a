# Optimizer updates over the flat parameter buffer, PyTorch's formulas (torch.optim.SGD / Adam).
# Each update is computed in double and rounded once into the parameter's dtype (the loops: elementwise.h).
#
# The cores read parameters from P and write the updated ones to P_out, which is P itself on the
# per-op path; the fused epoch (train.pxi) writes into a second buffer instead, so the weights before
# the update survive as the "last good" ones at no extra cost. They return UPDATE_* flags: whether any
# gradient was nonzero and whether any updated parameter is NaN or infinite.

cdef enum OptimizerKind:
    OPT_SGD = 0
    OPT_ADAM = 1

OPTIMIZER_KINDS = {"sgd": OPT_SGD, "adam": OPT_ADAM}


cdef inline int sgd_ptr(const floating* P, floating* P_out, const floating* G, floating* B,
                        Py_ssize_t size, double lr, double momentum, double dampening,
                        double weight_decay, bint nesterov, bint first_step) noexcept nogil:
    if floating is float:
        return ew_sgd_f(P, P_out, G, B, size, lr, momentum, dampening, weight_decay, nesterov,
                        first_step)
    else:
        return ew_sgd_d(P, P_out, G, B, size, lr, momentum, dampening, weight_decay, nesterov,
                        first_step)


cdef inline int adam_ptr(const floating* P, floating* P_out, const floating* G, floating* M,
                         floating* V, Py_ssize_t size, double lr, double beta1, double beta2,
                         double eps, double weight_decay, Py_ssize_t step) noexcept nogil:
    # step >= 1
    cdef double step_size = lr / (1.0 - beta1 ** step)
    cdef double sqrt_bc2 = sqrt(1.0 - beta2 ** step)
    if floating is float:
        return ew_adam_f(P, P_out, G, M, V, size, step_size, sqrt_bc2, beta1, beta2, eps,
                         weight_decay)
    else:
        return ew_adam_d(P, P_out, G, M, V, size, step_size, sqrt_bc2, beta1, beta2, eps,
                         weight_decay)


def sgd_step(floating[::1] params, const floating[::1] grads, floating[::1] momentum_buffer,
             double lr, double momentum, double dampening, double weight_decay,
             bint nesterov, bint first_step):
    """One torch.optim.SGD step over flat buffers of equal length, in place.

    Returns (any gradient nonzero, any updated parameter NaN or infinite): the checks the trainer makes.
    """
    cdef int flags = 0
    if params.shape[0]:
        with nogil:
            flags = sgd_ptr(&params[0], &params[0], &grads[0], &momentum_buffer[0], params.shape[0], lr,
                            momentum, dampening, weight_decay, nesterov, first_step)
    return _update_flags(flags)


def adam_step(floating[::1] params, const floating[::1] grads, floating[::1] exp_avg,
              floating[::1] exp_avg_sq, double lr, double beta1, double beta2, double eps,
              double weight_decay, Py_ssize_t step):
    """One torch.optim.Adam step (step counts from 1) over flat buffers, in place.

    Returns (any gradient nonzero, any updated parameter NaN or infinite), as sgd_step.
    """
    cdef int flags = 0
    if params.shape[0]:
        with nogil:
            flags = adam_ptr(&params[0], &params[0], &grads[0], &exp_avg[0], &exp_avg_sq[0],
                             params.shape[0], lr, beta1, beta2, eps, weight_decay, step)
    return _update_flags(flags)


cdef tuple _update_flags(int flags):
    return bool(flags & UPDATE_GRAD_NONZERO), bool(flags & UPDATE_NONFINITE)
