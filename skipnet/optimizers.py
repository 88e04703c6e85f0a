"""Optimizers over a Network's flat parameter buffer: SGD and Adam with PyTorch's formulas and defaults.

On the cython backend a step is one kernel call over the whole buffer; on the numpy backend the
reference optimizer updates the named views. Either way the state (momentum, Adam moments) lives in
buffers twin to the parameters, and only there (the reference optimizer updates named views of them, so
nothing is copied per step), so a second ``Trainer.fit`` continues where the first stopped.

The step contract: ``step(lr)`` returns ``StepFlags`` (any gradient nonzero, any updated parameter
non-finite), computed by the kernel in the same pass as the update; ``fused_arguments()`` is the one
place that hands the optimizer's kind, state buffers and settings to the fused kernel. Every setting is
validated when assigned, with the constructor's own check; an optimizer is bound to its network.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _kernels as K
from . import _validation as V
from . import reference
from ._settings import Checked, Fixed, Setting

_BOUND = "an optimizer is bound to the network whose buffers it updates; make a new one for another network"


def _non_negative(name, value):
    return V.check_float(name, value, minimum=0.0)


def _unit_interval(name, value):
    return V.check_float(name, value, minimum=0.0, maximum=1.0)


def _beta(name, value):
    value = V.check_float(name, value, minimum=0.0, maximum=1.0)
    if value >= 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return value


MAX_STEPS = 2**62  # the kernels take a 64-bit step count


def _step_count(name, value):
    return V.check_int(name, value, minimum=0, maximum=MAX_STEPS)


class StepFlags(NamedTuple):
    """What an update saw: any gradient element nonzero; any updated parameter NaN or infinite."""

    grad_nonzero: bool
    nonfinite: bool


class Optimizer(Checked):
    """Base: ``step(lr)`` applies the network's current gradient buffer to its parameters."""

    name = ""
    net = Fixed(_BOUND, "The Network this optimizer updates.")
    weight_decay = Setting(_non_negative, "L2 penalty added to the gradient (torch.optim's weight_decay).")
    steps = Setting(_step_count, "Steps taken since creation or the last reset (Adam's bias correction).")

    def __init__(self, net, weight_decay: float = 0.0):
        Optimizer.net.init(self, net)
        self.weight_decay = weight_decay
        self.steps = 0

    def count_steps(self, count: int) -> None:
        """Add ``count`` steps applied to the network (by ``step``, or by a fused kernel outside this
        object) to ``steps``, which Adam's bias correction reads. ValueError past 2**62. Written past
        the setting's check (a Python call per write): a count needs only its bound checked."""
        count = V.check_int("count", count, minimum=0) if type(count) is not int or count < 0 else count
        steps = self.steps + count
        if steps > MAX_STEPS:
            raise ValueError(f"steps must stay <= {MAX_STEPS}: {self.steps} + {count} steps exceeds it")
        self.__dict__["steps"] = steps

    @property
    def _core(self):
        return self.net.internals

    def step(self, lr: float) -> StepFlags:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the state (step count, momentum or moment buffers), as a freshly made optimizer."""
        raise NotImplementedError

    def is_idle(self) -> bool:
        """True when a zero gradient would leave every parameter unchanged (no momentum still moving,
        no weight decay pulling a nonzero weight)."""
        raise NotImplementedError

    def fused_arguments(self) -> dict:
        """The keyword arguments of FusedNet.bind that describe this optimizer (kind, state, settings)."""
        raise NotImplementedError

    def validate(self) -> None:
        """Check the settings together (each is checked alone when assigned); called before a fit."""

    def _decay_idle(self) -> bool:
        return self.weight_decay == 0 or not self._core.params.any()

    def _state_views(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of a state buffer, for the reference optimizer to update in place (made at each
        numpy-backend step, not kept: views stored in the reference would unpickle as copies)."""
        return self._core.views(state)

    def _numpy_step_flags(self) -> StepFlags:
        core = self._core
        return StepFlags(bool(core.grads.any()), not V.all_finite(core.params))


class SGD(Optimizer):
    """torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov)."""

    name = "sgd"
    momentum = Setting(_non_negative, "Momentum factor (0: plain SGD).")
    dampening = Setting(_unit_interval, "Dampening of the momentum, in [0, 1].")
    nesterov = Setting(V.check_bool, "Nesterov momentum (needs momentum > 0 and dampening 0).")

    def __init__(self, net, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(net, weight_decay)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.validate()
        self._buffer = np.zeros_like(self._core.params)
        self.reset()

    @property
    def buffer(self) -> np.ndarray:
        """The momentum buffer, (n_parameters,) in the network's dtype (twin of the parameters)."""
        return self._buffer

    def validate(self) -> None:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0 (as torch.optim.SGD)")

    def reset(self) -> None:
        self.steps = 0
        self._buffer[...] = 0
        self._ref = reference.SGD(self.momentum, self.dampening, self.weight_decay, self.nesterov)

    def step(self, lr: float) -> StepFlags:
        core = self._core
        if self.net.backend == "cython":
            flags = StepFlags(*K.sgd_step(core.params, core.grads, self._buffer, lr, self.momentum,
                                          self.dampening, self.weight_decay, self.nesterov, self.steps == 0))
        else:
            ref = self._ref
            ref.momentum, ref.dampening, ref.weight_decay, ref.nesterov = (
                self.momentum, self.dampening, self.weight_decay, self.nesterov)
            ref.buffers = self._state_views(self._buffer)
            ref.step(core.param_views, core.grad_views, lr)
            flags = self._numpy_step_flags()
        self.count_steps(1)
        return flags

    def is_idle(self) -> bool:
        return self._decay_idle() and (self.momentum == 0 or not self._buffer.any())

    def fused_arguments(self) -> dict:
        return {"optimizer": "sgd", "state1": self._buffer, "state2": None, "momentum": self.momentum,
                "dampening": self.dampening, "weight_decay": self.weight_decay, "nesterov": self.nesterov}


class Adam(Optimizer):
    """torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay) with L2 decay in the gradient."""

    name = "adam"
    beta1 = Setting(_beta, "Decay of the first moment, in [0, 1).")
    beta2 = Setting(_beta, "Decay of the second moment, in [0, 1).")
    eps = Setting(lambda name, value: V.check_float(name, value, positive=True),
                  "Term added to the denominator (> 0).")

    def __init__(self, net, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(net, weight_decay)
        self.betas = betas
        self.eps = eps
        self._exp_avg = np.zeros_like(self._core.params)
        self._exp_avg_sq = np.zeros_like(self._core.params)
        self.reset()

    @property
    def betas(self) -> tuple[float, float]:
        """(beta1, beta2), as torch.optim.Adam's ``betas``."""
        return self.beta1, self.beta2

    @betas.setter
    def betas(self, betas) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        beta1, beta2 = _beta("betas[0]", betas[0]), _beta("betas[1]", betas[1])
        self.beta1, self.beta2 = beta1, beta2

    @property
    def exp_avg(self) -> np.ndarray:
        """First moment, (n_parameters,) in the network's dtype."""
        return self._exp_avg

    @property
    def exp_avg_sq(self) -> np.ndarray:
        """Second moment, (n_parameters,) in the network's dtype."""
        return self._exp_avg_sq

    def reset(self) -> None:
        self.steps = 0
        self._exp_avg[...] = 0
        self._exp_avg_sq[...] = 0
        self._ref = reference.Adam(self.beta1, self.beta2, self.eps, self.weight_decay)

    def step(self, lr: float) -> StepFlags:
        core = self._core
        self.count_steps(1)
        if self.net.backend == "cython":
            return StepFlags(*K.adam_step(core.params, core.grads, self._exp_avg, self._exp_avg_sq, lr,
                                          self.beta1, self.beta2, self.eps, self.weight_decay, self.steps))
        ref = self._ref
        ref.beta1, ref.beta2, ref.eps, ref.weight_decay, ref.t = (
            self.beta1, self.beta2, self.eps, self.weight_decay, self.steps - 1)
        ref.m, ref.v = self._state_views(self._exp_avg), self._state_views(self._exp_avg_sq)
        ref.step(core.param_views, core.grad_views, lr)
        return self._numpy_step_flags()

    def is_idle(self) -> bool:
        return self._decay_idle() and not self._exp_avg.any()

    def fused_arguments(self) -> dict:
        return {"optimizer": "adam", "state1": self._exp_avg, "state2": self._exp_avg_sq, "beta1": self.beta1,
                "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay}


def make_optimizer(net, name: str, *, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                   betas=(0.9, 0.999), eps=1e-8) -> Optimizer:
    V.check_choice("optimizer", name, V.OPTIMIZERS)
    if name == "sgd":
        return SGD(net, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                   nesterov=nesterov)
    return Adam(net, betas=betas, eps=eps, weight_decay=weight_decay)
