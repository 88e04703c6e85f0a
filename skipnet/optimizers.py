"""Optimizers over a Network's flat parameter buffer: SGD and Adam with PyTorch's formulas and defaults.

On the cython backend a step is one kernel call over the whole buffer; on the numpy backend the
reference optimizer updates the named views. Either way the state (momentum, Adam moments) lives in
buffers twin to the parameters, so a second ``Trainer.fit`` continues where the first stopped.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _validation as V
from . import reference


class Optimizer:
    """Base: ``step(lr)`` applies the network's current gradient buffer to its parameters."""

    name = ""

    def __init__(self, net, weight_decay: float = 0.0):
        self.net = net
        self.weight_decay = V.check_float("weight_decay", weight_decay, minimum=0.0)
        self.steps = 0

    def step(self, lr: float) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the state (step count, momentum or moment buffers), as a freshly made optimizer."""
        raise NotImplementedError

    def is_idle(self) -> bool:
        """True when a zero gradient would leave every parameter unchanged (no momentum still moving,
        no weight decay pulling a nonzero weight)."""
        raise NotImplementedError

    def _decay_idle(self) -> bool:
        return self.weight_decay == 0 or not self.net._params.any()


class SGD(Optimizer):
    """torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov)."""

    name = "sgd"

    def __init__(self, net, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(net, weight_decay)
        self.momentum = V.check_float("momentum", momentum, minimum=0.0)
        self.dampening = V.check_float("dampening", dampening, minimum=0.0, maximum=1.0)
        self.nesterov = V.check_bool("nesterov", nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0 (as torch.optim.SGD)")
        self.buffer = np.zeros_like(net._params)
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.buffer[...] = 0
        self._ref = reference.SGD(self.momentum, self.dampening, self.weight_decay, self.nesterov)

    def step(self, lr: float) -> None:
        net = self.net
        if net.backend == "cython":
            K.sgd_step(net._params, net._grads, self.buffer, lr, self.momentum, self.dampening,
                       self.weight_decay, self.nesterov, self.steps == 0)
        else:
            self._ref.step(net._param_views, net._grad_views, lr)
            if self.momentum:
                for name, view in net._views(self.buffer).items():
                    view[...] = self._ref.buffers[name]
        self.steps += 1

    def is_idle(self) -> bool:
        return self._decay_idle() and (self.momentum == 0 or not self.buffer.any())


class Adam(Optimizer):
    """torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay) with L2 decay in the gradient."""

    name = "adam"

    def __init__(self, net, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(net, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = V.check_float("betas[0]", betas[0], minimum=0.0, maximum=1.0)
        self.beta2 = V.check_float("betas[1]", betas[1], minimum=0.0, maximum=1.0)
        if self.beta1 >= 1 or self.beta2 >= 1:
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        self.eps = V.check_float("eps", eps, positive=True)
        self.exp_avg = np.zeros_like(net._params)
        self.exp_avg_sq = np.zeros_like(net._params)
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.exp_avg[...] = 0
        self.exp_avg_sq[...] = 0
        self._ref = reference.Adam(self.beta1, self.beta2, self.eps, self.weight_decay)

    def step(self, lr: float) -> None:
        net = self.net
        self.steps += 1
        if net.backend == "cython":
            K.adam_step(net._params, net._grads, self.exp_avg, self.exp_avg_sq, lr, self.beta1,
                        self.beta2, self.eps, self.weight_decay, self.steps)
        else:
            self._ref.step(net._param_views, net._grad_views, lr)
            for name, view in net._views(self.exp_avg).items():
                view[...] = self._ref.m[name]
            for name, view in net._views(self.exp_avg_sq).items():
                view[...] = self._ref.v[name]

    def is_idle(self) -> bool:
        return self._decay_idle() and not self.exp_avg.any()


def make_optimizer(net, name: str, *, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                   betas=(0.9, 0.999), eps=1e-8) -> Optimizer:
    V.check_choice("optimizer", name, V.OPTIMIZERS)
    if name == "sgd":
        return SGD(net, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                   nesterov=nesterov)
    return Adam(net, betas=betas, eps=eps, weight_decay=weight_decay)
