"""Diagnostics: dead ReLU units, gradient flow per layer, loss plateaus and constant outputs.

Each function takes a Network and data (validated like ``Network.forward``) and returns a small
dataclass whose ``str()`` is a human explanation and whose fields are what tests and reports use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _validation as V

LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------- dead units
@dataclass
class LayerDeadUnits:
    """Dead units of one hidden ReLU layer: ``units`` never activate (z <= 0 for every sample)."""

    layer: int
    width: int
    units: list[int]
    max_preactivation: np.ndarray  # (width,) the largest z of each unit over the data

    @property
    def fraction(self) -> float:
        return len(self.units) / self.width


@dataclass
class DeadUnits:
    """Per hidden ReLU layer, which units output 0 for every sample of the data, and why."""

    layers: dict[int, LayerDeadUnits]
    n_samples: int

    @property
    def n_dead(self) -> int:
        return sum(len(d.units) for d in self.layers.values())

    @property
    def n_units(self) -> int:
        return sum(d.width for d in self.layers.values())

    @property
    def fraction(self) -> float:
        """Dead units / hidden ReLU units (0 when the network has none)."""
        return self.n_dead / self.n_units if self.n_units else 0.0

    @property
    def dead_layers(self) -> list[int]:
        """Hidden layers in which every unit is dead: no signal passes them at all."""
        return [k for k, d in self.layers.items() if len(d.units) == d.width]

    def __str__(self) -> str:
        if not self.n_dead:
            return f"no dead ReLU units on {self.n_samples} samples"
        lines = [(f"{self.n_dead} of {self.n_units} ReLU units are dead on {self.n_samples} samples "
                  f"({self.fraction:.0%}): their pre-activation is <= 0 for every sample, so they output 0 "
                  "and pass no gradient")]
        for k, d in self.layers.items():
            if d.units:
                worst = ", ".join(f"unit {u} (max z = {d.max_preactivation[u]:.4g})" for u in d.units[:8])
                more = f" and {len(d.units) - 8} more" if len(d.units) > 8 else ""
                lines.append(f"  layer {k}: {len(d.units)}/{d.width} dead: {worst}{more}")
        return "\n".join(lines)


def dead_units(net, X) -> DeadUnits:
    """Which hidden ReLU units never activate on X (n, n_inputs): z <= 0 for every sample."""
    V.check_network("net", net)
    X = V.as_features("X", X, net.n_inputs, net.dtype)
    net._check_workspace(X.shape[0])
    with net._exclusive():
        p = net._detailed_pass(X)
    layers = {}
    for k, layer in enumerate(net.layers[:-1]):
        if layer.activation != "relu":
            continue
        zmax = p.z[k].max(axis=0)
        layers[k] = LayerDeadUnits(k, layer.units, [int(u) for u in np.flatnonzero(zmax <= 0)], zmax)
    return DeadUnits(layers, X.shape[0])


# ------------------------------------------------------------------------------------- gradient flow
@dataclass
class GradientFlow:
    """Gradient norms on one batch: per layer (weight, bias, and the signal dL/dz reaching it) and per
    learned skip. ``zero`` is True when every parameter gradient is exactly 0."""

    loss: float
    layers: list[dict]
    skips: list[dict]
    total_norm: float
    zero: bool

    def __str__(self) -> str:
        lines = [f"loss {self.loss:.6g}, total gradient norm {self.total_norm:.4g}"
                 + (" (exactly zero: no step can change the weights)" if self.zero else "")]
        for row in self.layers:
            bias = f", bias {row['bias_norm']:.4g}" if row["bias_norm"] is not None else ""
            lines.append(f"  layer {row['layer']}: |dL/dW| {row['weight_norm']:.4g}{bias}, "
                         f"|dL/dz| {row['signal_norm']:.4g}")
        for row in self.skips:
            lines.append(f"  skip {row['skip']} ({row['src']} -> {row['dst']}): |dL/dS| {row['weight_norm']:.4g}")
        return "\n".join(lines)


def gradient_flow(net, X, y, loss: str = "l1") -> GradientFlow:
    """Gradient norm per layer and per learned skip for the loss on (X, y); Frobenius norms in float64."""
    X, y = V.check_network("net", net)._check_batch(X, y, loss)
    with net._exclusive():  # the pass writes the gradient buffer read below
        p = net._detailed_pass(X, y, loss)
        grads = {name: g.copy() for name, g in net._grad_views.items()}

    def norm(a):  # scaled first: the squares of gradients past 1e154 would overflow
        a = a.astype(np.float64)
        scale = float(np.abs(a).max(initial=0.0))
        return scale * float(np.linalg.norm(a / scale)) if scale > 0 else 0.0

    layers = []
    for k, layer in enumerate(net.layers):
        layers.append({
            "layer": k,
            "weight_norm": norm(grads[f"layers.{k}.weight"]),
            "bias_norm": norm(grads[f"layers.{k}.bias"]) if layer.bias else None,
            "signal_norm": norm(p.dz[k]),
        })
    skips = [{"skip": i, "src": s.src, "dst": s.dst, "weight_norm": norm(grads[f"skips.{i}.weight"])}
             for i, s in enumerate(net.skips) if not s.identity]
    flat = np.concatenate([g.ravel() for g in grads.values()])
    return GradientFlow(float(p.loss), layers, skips, norm(flat), not flat.any())


# ------------------------------------------------------------------------------------------ plateaus
@dataclass
class Plateau:
    """A flat stretch at the end of a loss curve: ``start`` index, its mean ``level``, relative change."""

    start: int
    level: float
    relative_change: float
    explanation: str = ""
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"loss flat at {self.level:.6g} since index {self.start} (relative change {self.relative_change:.2g})"
        return text + (f": {self.explanation}" if self.explanation else "")


def detect_plateau(losses, window: int = 5, rtol: float = 1e-3) -> Plateau | None:
    """A plateau when the last ``window`` losses vary by less than ``rtol`` relative to their mean.

    ``start`` is the first index of the longest flat tail (extended backwards while it stays flat).
    Returns None when the curve is still moving or shorter than ``window``.
    """
    window = V.check_int("window", window, minimum=2)
    rtol = V.check_float("rtol", rtol, minimum=0.0)
    losses = V.as_real_array("losses", losses).astype(np.float64)
    if losses.ndim != 1:
        raise ValueError(f"losses must be 1-D, got shape {losses.shape}")
    if losses.size < window or not np.isfinite(losses[-window:]).all():
        return None

    def spread(segment):
        level = abs(segment.mean())
        return (segment.max() - segment.min()) / level if level > 0 else segment.max() - segment.min()

    if spread(losses[-window:]) > rtol:
        return None
    start = losses.size - window
    while start > 0 and np.isfinite(losses[start - 1]) and spread(losses[start - 1:]) <= rtol:
        start -= 1
    tail = losses[start:]
    return Plateau(start, float(tail.mean()), float(spread(tail)))


@dataclass
class OutputSpread:
    """How much the network's outputs vary over the data: ``std`` per output and whether it is constant."""

    mean: np.ndarray
    std: np.ndarray
    constant: bool


def output_spread(net, X, rtol: float = 1e-6) -> OutputSpread:
    """Per-output mean and standard deviation of yhat over X; ``constant`` when every std is tiny
    relative to the output's magnitude (exactly the same output for every sample in the dead case)."""
    rtol = V.check_float("rtol", rtol, minimum=0.0)
    yhat = V.check_network("net", net).forward(X).astype(np.float64)
    mean, std = yhat.mean(axis=0), yhat.std(axis=0)
    constant = bool((std <= rtol * np.maximum(1.0, np.abs(mean))).all())
    return OutputSpread(mean, std, constant)


def explain_plateau(net, X, y, loss: str, losses, window: int = 5, rtol: float = 1e-3) -> Plateau | None:
    """Detect a plateau in ``losses`` and explain it from the network's state on (X, y).

    Causes, in the order they are checked: every gradient exactly zero (dead units, or a constant
    output sitting on a kink); the output is constant over the data (for bce at ln 2 = 0.693: the
    network predicts the same logit, 0, for every sample, i.e. probability 0.5); gradients tiny relative
    to the weights (learning too slow); otherwise a genuine minimum or saddle.
    """
    plateau = detect_plateau(losses, window, rtol)
    if plateau is None:
        return None
    dead = dead_units(net, X)
    flow = gradient_flow(net, X, y, loss)
    spread = output_spread(net, X)
    details = {"dead_fraction": dead.fraction, "dead_layers": dead.dead_layers, "gradient_norm": flow.total_norm,
               "zero_gradient": flow.zero, "constant_output": spread.constant,
               "output_mean": spread.mean.tolist(), "output_std": spread.std.tolist()}
    at_ln2 = loss == "bce" and abs(plateau.level - LN2) < 1e-2
    details["at_ln2"] = at_ln2
    parts = []
    if at_ln2:
        parts.append(f"the loss sits at ln 2 = {LN2:.4f}, the loss of predicting probability 0.5 "
                     "(logit 0) for every sample")
    if spread.constant:
        const = ", ".join(f"{m:.4g}" for m in spread.mean)
        parts.append(f"the output is constant over the data (yhat = {const} for every sample)")
    if dead.dead_layers:
        parts.append(f"every unit of hidden layer {', '.join(map(str, dead.dead_layers))} is dead, so no "
                     "input information reaches the output")
    elif dead.n_dead:
        parts.append(f"{dead.fraction:.0%} of the ReLU units are dead")
    if flow.zero:
        parts.append("every gradient is exactly 0: no step can change the weights (fix: re-initialise, e.g. "
                     "init='he' or another seed, lower the learning rate, or add a skip connection)")
    else:
        weight_norm = float(np.linalg.norm(net._params.astype(np.float64)))
        if flow.total_norm < 1e-6 * max(weight_norm, 1.0):
            parts.append(f"gradients are tiny ({flow.total_norm:.2g}) relative to the weights: a larger "
                         "learning rate may help")
    if not parts:
        parts.append("gradients are nonzero and units alive: a minimum or saddle of the loss")
    plateau.explanation = "; ".join(parts)
    plateau.details = details
    return plateau
