"""Diagnostics: dead ReLU units, gradient flow per layer, loss plateaus and constant outputs.

Each function takes a Network and data (validated like ``Network.forward``) and returns a small
dataclass whose ``str()`` is a human explanation and whose fields are what tests and reports use.

Per-layer results read the same way in every result: ``result.by_layer`` is a dict from the layer's
index in ``net.layers`` (the k of ``layers.k.weight``) to one record per layer, a dataclass with
documented fields (``DeadUnits.by_layer[k]`` a LayerDeadUnits, ``GradientFlow.by_layer[k]`` a
LayerGradient), so results of one network join on the key: ``flow.by_layer[k].signal_norm`` beside
``dead.by_layer[k].fraction``. (``DeadUnits.layers`` is the same dict; ``GradientFlow.layers`` and
``.skips``, lists of dicts, hold the same numbers in their original form and stay as they are.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _kernels as K
from . import _validation as V
from ._core import NetworkInternals
from ._deprecation import keyword_from
from ._engine import hidden_relu_layers
from ._settings import Checked, Fixed, Setting
from .network import Network
from .reference import LN2


# ---------------------------------------------------------------------------------------- dead units
@dataclass
class LayerDeadUnits:
    """Dead units of one hidden ReLU layer: ``units`` never activate (z <= 0 for every sample).

    layer : int
        The layer's index in ``net.layers``.
    width : int
        Its number of units.
    units : list of int
        The dead units' indices, ascending.
    max_preactivation : ndarray (width,), the network's dtype
        The largest pre-activation z of each unit over the data (a unit is dead when it is <= 0).
    """

    layer: int
    width: int
    units: list[int]
    max_preactivation: np.ndarray  # (width,) the largest z of each unit over the data

    @property
    def fraction(self) -> float:
        """Dead units / ``width``."""
        return len(self.units) / self.width


@dataclass
class DeadUnits:
    """Per hidden ReLU layer, which units output 0 for every sample of the data, and why.

    ``layers`` (also ``by_layer``, the name every per-layer result shares) maps the index in
    ``net.layers`` of each hidden ReLU layer to its LayerDeadUnits."""

    layers: dict[int, LayerDeadUnits]
    n_samples: int

    @property
    def by_layer(self) -> dict[int, LayerDeadUnits]:
        """Layer index -> LayerDeadUnits: ``layers`` itself, under the name GradientFlow shares."""
        return self.layers

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

    def _repr_html_(self) -> str:
        rows = [(f"layer {k}", f"{len(d.units)}/{d.width} dead ({d.fraction:.0%})"
                 + (f": units {', '.join(map(str, d.units[:16]))}" if d.units else "")) for k, d in self.layers.items()]
        return _html("dead ReLU units", str(self).splitlines()[0], rows)


def _html(title: str, text: str, rows) -> str:
    """A result's notebook view: its title, its sentence and a table."""
    from html import escape

    from ._views import table_html

    return (f"<div class='skipnet-diagnostics'><p><b>{escape(title)}</b>: {escape(text)}</p>"
            f"{table_html(rows, 'skipnet-diagnostics-table')}</div>")


def _core(net: Network) -> NetworkInternals:
    if not isinstance(net, Network):
        raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
    return net.internals


def dead_units(net, X) -> DeadUnits:
    """Which hidden ReLU units never activate on X (n, n_inputs): z <= 0 for every sample."""
    X = _core(net).check_features(X)
    with net.internals.reading():  # a forward pass: any number of threads at once
        p = net.internals.detailed_pass(X)
    return _dead_from_maxima(net, [p.z[k].max(axis=0) for k in hidden_relu_layers(net.layers)], X.shape[0])


def _dead_from_maxima(net, maxima, n_samples: int) -> DeadUnits:
    """DeadUnits from the largest z of each unit (one (width,) array per hidden ReLU layer, in order)."""
    layers = {}
    for k, zmax in zip(hidden_relu_layers(net.layers), maxima):
        layers[k] = LayerDeadUnits(k, net.layers[k].units, np.flatnonzero(zmax <= 0).tolist(), zmax)
    return DeadUnits(layers, n_samples)


def split_units(net, unit_max: np.ndarray) -> list[np.ndarray]:
    """A flat (n_units,) array over the hidden ReLU units, layer by layer (the fused kernel's dead-unit
    statistics), as one view per hidden ReLU layer."""
    views, start = [], 0
    for k in hidden_relu_layers(net.layers):
        width = net.layers[k].units
        views.append(unit_max[start:start + width])
        start += width
    return views


# ------------------------------------------------------------------------------------- gradient flow
@dataclass(frozen=True)
class LayerGradient:
    """Gradient norms of one layer on a batch (Frobenius norms, computed in float64).

    layer : int
        The layer's index in ``net.layers``; its parameters are ``layers.{layer}.weight`` and ``.bias``.
    weight_norm : float
        Norm of the loss's gradient with respect to the layer's weight.
    bias_norm : float or None
        Norm of the gradient with respect to its bias; None for a layer without a bias.
    signal_norm : float
        Norm of dL/dz, the gradient reaching the layer's pre-activations, over the batch's rows.
    """

    layer: int
    weight_norm: float
    bias_norm: float | None
    signal_norm: float


@dataclass(frozen=True)
class SkipGradient:
    """Gradient norm of one learned skip on a batch (Frobenius norm, computed in float64).

    skip : int
        The skip's index in ``net.skips``; its weight is ``skips.{skip}.weight``.
    src, dst : int
        The layers it joins (``src`` -1: the input).
    weight_norm : float
        Norm of the loss's gradient with respect to the skip's weight.
    """

    skip: int
    src: int
    dst: int
    weight_norm: float


@dataclass
class GradientFlow:
    """Gradient norms on one batch: per layer (weight, bias, and the signal dL/dz reaching it) and per
    learned skip. ``zero`` is True when every parameter gradient is exactly 0.

    ``by_layer`` (layer index -> LayerGradient, every layer) and ``by_skip`` (skip index ->
    SkipGradient, learned skips) are the per-layer form every result shares (DeadUnits.by_layer):
    records with documented fields, found by the layer's index rather than by position in a list.
    ``layers`` (a list of dicts with keys layer, weight_norm, bias_norm, signal_norm, one per layer in
    order) and ``skips`` (dicts with keys skip, src, dst, weight_norm) hold the same numbers in the
    original form, kept as they are."""

    loss: float
    layers: list[dict]
    skips: list[dict]
    total_norm: float
    zero: bool

    @property
    def by_layer(self) -> dict[int, LayerGradient]:
        """Layer index -> LayerGradient, built from ``layers``."""
        return {row["layer"]: LayerGradient(row["layer"], row["weight_norm"], row["bias_norm"],
                                            row["signal_norm"]) for row in self.layers}

    @property
    def by_skip(self) -> dict[int, SkipGradient]:
        """Skip index (in ``net.skips``) -> SkipGradient of each learned skip, built from ``skips``."""
        return {row["skip"]: SkipGradient(row["skip"], row["src"], row["dst"], row["weight_norm"])
                for row in self.skips}

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

    def _repr_html_(self) -> str:
        return _html("gradient flow", str(self).splitlines()[0], [tuple(line.strip().split(": ", 1))
                                                                  for line in str(self).splitlines()[1:]])


def gradient_flow(net, X, y, loss: str = "l1") -> GradientFlow:
    """Gradient norm per layer and per learned skip for the loss on (X, y); Frobenius norms in float64."""
    core = _core(net)
    X, y = core.check_batch(X, y, loss)
    with core.writing():  # the pass writes the gradient buffer read below
        p = core.detailed_pass(X, y, loss)
        grads = {name: g.copy() for name, g in core.grad_views.items()}

    def norm(a):  # scaled first: the squares of gradients past 1e154 would overflow
        a = a.astype(np.float64)
        scale = float(np.abs(a).max(initial=0.0))
        if not np.isfinite(scale):  # an infinite entry makes the norm infinite (NaN stays NaN)
            return scale
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
    cause: str = ""

    def __str__(self) -> str:
        text = f"loss flat at {self.level:.6g} since index {self.start} (relative change {self.relative_change:.2g})"
        return text + (f": {self.explanation}" if self.explanation else "")


def _relative_spread(segment: np.ndarray) -> float:
    """(max - min) / |mean| of a stretch of losses (absolute when the mean is 0)."""
    level = abs(segment.mean())
    width = segment.max() - segment.min()
    return width / level if level > 0 else width


def detect_plateau(losses, window: int = 5, rtol: float = 1e-3) -> Plateau | None:
    """A plateau when the last ``window`` losses vary by less than ``rtol`` relative to their mean.

    ``start`` is the first index of the longest flat tail (extended backwards while it stays flat).
    Returns None when the curve is still moving or shorter than ``window``. Linear in the curve's length.
    """
    window = V.check_int("window", window, minimum=2)
    rtol = V.check_float("rtol", rtol, minimum=0.0)
    losses = V.as_real_array("losses", losses).astype(np.float64)
    if losses.ndim != 1:
        raise ValueError(f"losses must be 1-D, got shape {losses.shape}")
    if losses.size < window or not np.isfinite(losses[-window:]).all():
        return None
    if _relative_spread(losses[-window:]) > rtol:
        return None
    # spread of every tail losses[s:], from running max/min/mean taken from the end
    rev = losses[::-1]
    with np.errstate(invalid="ignore"):
        tail_max = np.maximum.accumulate(rev)[::-1]
        tail_min = np.minimum.accumulate(rev)[::-1]
        tail_mean = np.abs((np.cumsum(rev) / np.arange(1, rev.size + 1))[::-1])
        width = tail_max - tail_min
        spread = np.where(tail_mean > 0, width / np.where(tail_mean > 0, tail_mean, 1.0), width)
    flat = np.isfinite(losses) & np.isfinite(spread) & (spread <= rtol)
    start = losses.size - window
    while start > 0 and flat[start - 1]:
        start -= 1
    tail = losses[start:]
    return Plateau(start, float(tail.mean()), float(_relative_spread(tail)))


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
    _core(net)  # the type check
    yhat = net.forward(X).astype(np.float64)
    mean, std = yhat.mean(axis=0), yhat.std(axis=0)
    constant = bool((std <= rtol * np.maximum(1.0, np.abs(mean))).all())
    return OutputSpread(mean, std, constant)


def constant_loss(y, loss: str) -> float:
    """The lowest loss a constant prediction reaches on targets y: what a network scores when its
    output ignores the input. bce: the entropy of the label frequency per output (ln 2 = 0.6931 for
    balanced labels); cross_entropy: the entropy of the class frequencies; mse: the variance of y;
    l1: the mean absolute deviation from the median. Averaged over outputs like the losses."""
    V.check_choice("loss", loss, V.LOSSES)
    y = np.asarray(y)
    if loss == "cross_entropy":
        q = np.bincount(y.astype(np.int64).ravel()) / y.size
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())
    y = y.astype(np.float64).reshape(y.shape[0], -1)
    if loss == "mse":
        return float(((y - y.mean(axis=0)) ** 2).mean())
    if loss == "l1":
        return float(np.abs(y - np.median(y, axis=0)).mean())
    p = y.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log1p(-p), 0.0))
    return float(h.mean())


# why a loss stops moving, most fundamental first; Diagnosis.cause is one of these keys
CAUSES = {
    "input_scale": "the input features are far from unit scale: standardise them",
    "exploding": "the loss grew or the divergence guard fired: the learning rate is too large",
    "dead_layer": "every unit of a hidden layer is dead, so the output ignores the input",
    "zero_gradient": "every gradient is exactly zero, so no step can change the weights",
    "symmetric_units": "units of a hidden layer are identical: the initialisation did not break symmetry",
    "constant_output": "the output is the same for every sample",
    "saddle": "the output barely varies and the gradients are small: a saddle around the constant prediction",
    "tiny_gradient": "the gradients are tiny relative to the weights: learning is too slow",
    "none": "gradients are nonzero and units alive: a minimum or saddle of the loss",
}


@dataclass
class Diagnosis:
    """The state of a network on (X, y), read for why training is (or would be) stuck.

    ``cause`` is a key of CAUSES; ``explanation`` says it in words with the numbers and the fix.
    """

    loss: float
    cause: str
    explanation: str
    dead: DeadUnits
    flow: GradientFlow
    spread: OutputSpread
    constant_loss: float
    at_constant_loss: bool
    at_ln2: bool

    @property
    def details(self) -> dict:
        """Plain numbers for reports and History warnings."""
        return {"cause": self.cause, "dead_fraction": self.dead.fraction, "dead_layers": self.dead.dead_layers,
                "dead_units": {k: d.units for k, d in self.dead.layers.items() if d.units},
                "gradient_norm": self.flow.total_norm, "zero_gradient": self.flow.zero,
                "constant_output": self.spread.constant, "output_mean": self.spread.mean.tolist(),
                "output_std": self.spread.std.tolist(), "constant_loss": self.constant_loss,
                "at_constant_loss": self.at_constant_loss, "at_ln2": self.at_ln2}

    def __str__(self) -> str:
        return self.explanation

    def _repr_html_(self) -> str:
        rows = [("cause", f"{self.cause}: {CAUSES[self.cause]}"), ("loss", f"{self.loss:.6g}"),
                ("constant prediction's loss", f"{self.constant_loss:.6g}"),
                ("dead ReLU units", f"{self.dead.n_dead}/{self.dead.n_units}"),
                ("gradient norm", f"{self.flow.total_norm:.4g}")]
        return _html("diagnosis", self.explanation, rows)


def diagnose(net, X, y, loss: str, history=None, level: float | None = None) -> Diagnosis:
    """Read the network's state on (X, y): dead units, gradient flow, output spread, and the loss
    ``level`` (default: the current loss on X, y) against the best constant prediction's loss; with
    ``history`` (the History of the fit that led here) also how the loss moved.

    Causes are checked most fundamental first: the loss exploded (the divergence guard fired, or the
    loss grew: the learning rate is too large, by roughly the factor given); input features far from
    unit scale; a whole hidden layer dead (the output cannot depend on the input); every gradient
    exactly zero; identical units in a hidden layer (symmetry never broken); a constant output; a
    nearly constant output with small gradients at the constant-prediction loss (a saddle); gradients
    tiny relative to the weights. A fit that ended in divergence is never 'none'.
    """
    if history is not None and not all(hasattr(history, a) for a in ("step_loss", "epoch_loss", "warnings")):
        raise TypeError(f"history must be a skipnet.History (from Trainer.fit) or None, got {type(history).__name__}")
    if level is not None:
        level = V.check_float("level", level)
    X, y = _core(net).check_batch(X, y, loss)
    dead = dead_units(net, X)
    flow = gradient_flow(net, X, y, loss)
    spread = output_spread(net, X)
    level = flow.loss if level is None else float(level)
    floor = constant_loss(y, loss)
    at_floor = abs(level - floor) <= 1e-2 * max(floor, 1.0)
    at_ln2 = loss == "bce" and abs(level - LN2) < 1e-2
    weight_norm = float(np.linalg.norm(net.internals.params.astype(np.float64)))
    tiny = not flow.zero and flow.total_norm < 1e-6 * max(weight_norm, 1.0)
    small_spread = float(spread.std.max()) < 0.05 * max(1.0, float(np.abs(spread.mean).max()))

    parts, causes = [], []
    if at_ln2:
        parts.append(f"the loss sits at ln 2 = {LN2:.4f}, the loss of predicting probability 0.5 "
                     "(logit 0) for every sample")
    elif at_floor:
        parts.append(f"the loss sits at {level:.4g}, the best a constant prediction can do on these targets "
                     f"({floor:.4g})")
    if spread.constant:
        const = ", ".join(f"{m:.4g}" for m in spread.mean)
        parts.append(f"the output is constant over the data (yhat = {const} for every sample)")
        causes.append("constant_output")
    if dead.dead_layers:
        parts.append(f"every unit of hidden layer {', '.join(map(str, dead.dead_layers))} is dead (z <= 0 for "
                     "every sample), so no input information reaches the output and no gradient reaches "
                     "the layers before it; only what follows the dead layer (e.g. the output bias) still "
                     "learns, towards the best constant prediction (fix: re-initialise with init='he' or "
                     "another seed, add a skip connection around the layer, standardise the inputs if they are "
                     "far from unit scale, or lower the learning rate if the units died during training)")
        causes.insert(0, "dead_layer")
    elif dead.n_dead:
        parts.append(f"{dead.fraction:.0%} of the ReLU units are dead")
    if flow.zero:
        parts.append("every gradient is exactly 0: no step can change the weights (fix: re-initialise, e.g. "
                     "init='he' or another seed, lower the learning rate, or add a skip connection)")
        causes.insert(1 if dead.dead_layers else 0, "zero_gradient")
    elif tiny:
        parts.append(f"gradients are tiny ({flow.total_norm:.2g}) relative to the weights: a larger "
                     "learning rate may help")
        causes.append("tiny_gradient")
    if at_floor and not spread.constant and small_spread and not flow.zero and not dead.dead_layers:
        parts.append(f"the output barely varies (std {float(spread.std.max()):.2g}), so every prediction is "
                     f"close to the constant one, and the gradient is small but not zero (norm "
                     f"{flow.total_norm:.2g}): a saddle that training leaves slowly (fix: more epochs, a larger "
                     "learning rate, Adam, or init='he')")
        causes.insert(0, "saddle")
    symmetric = symmetric_units(net)
    if symmetric:
        parts.append(_symmetric_text(symmetric))
        causes.append("symmetric_units")
    exploding = exploded(history, len(net.layers)) if history is not None else None
    if exploding is not None:
        parts.insert(0, exploding)
        causes.append("exploding")
    scale = input_scale(X)
    if scale is not None:  # first: badly scaled inputs make the other symptoms (a huge loss, dead units)
        parts.insert(0, scale)
        causes.append("input_scale")
    if not parts:
        parts.append(CAUSES["none"])
    order = list(CAUSES)
    cause = min(causes, key=order.index) if causes else "none"
    return Diagnosis(level, cause, "; ".join(parts), dead, flow, spread, floor, at_floor, at_ln2)


# ------------------------------------------------------------------------- failures of a whole fit
def exploded(history, n_layers: int) -> str | None:
    """Why ``history`` shows an exploding loss (None when it does not): the divergence guard fired, the
    step loss rose past 10x its first value, or the last epoch ended above the first. The factor by
    which the learning rate is too large is estimated from the loss's growth per step g while it rose:
    the output of a net of L layers grows like lr^L once the steps dominate the weights, so the loss
    grows like lr^(2L), and the rate is too large by about g^(1/(2L)) (at least 2)."""
    steps = np.asarray(history.step_loss, dtype=np.float64)
    epochs = np.asarray(history.epoch_loss, dtype=np.float64)
    diverged = any(getattr(w, "kind", None) == "divergence" for w in history.warnings)
    finite = steps[np.isfinite(steps)]
    if finite.size == 0 and not diverged:
        return None
    first = float(finite[0]) if finite.size else float("nan")
    peak_at = int(np.argmax(np.where(np.isfinite(steps), steps, -np.inf))) if finite.size else 0
    peak = float(steps[peak_at]) if finite.size else float("nan")
    grew_steps = first > 0 and peak > 10 * first
    grew_epochs = epochs.size > 1 and np.isfinite(epochs[[0, -1]]).all() and epochs[-1] > 1.1 * epochs[0]
    if not (diverged or grew_steps or grew_epochs):
        return None
    data = next((w.data for w in history.warnings if getattr(w, "kind", None) == "divergence"), {})
    if diverged and np.isfinite(data.get("loss", np.nan)) and first > 0:
        peak, peak_at = max(peak, float(data["loss"])), max(peak_at, steps.size - 1, 1)
    lrs = np.asarray(getattr(history, "lr", []), dtype=np.float64)
    lr = float(lrs[0]) if lrs.size else float("nan")
    if first > 0 and peak > first:
        per_step = (peak / first) ** (1.0 / max(peak_at, 1))
        factor = max(2.0, per_step ** (1.0 / (2 * n_layers)))
    else:
        factor = 10.0  # the loss became non-finite at once: no growth to measure
    what = ("the divergence guard stopped the fit" if diverged else
            f"the loss rose from {first:.4g} to {peak:.4g}" if grew_steps else
            f"the epoch loss rose from {epochs[0]:.4g} to {epochs[-1]:.4g}")
    return (f"the loss exploded ({what}): the learning rate{f' ({lr:g})' if np.isfinite(lr) else ''} is too "
            f"large, by roughly a factor of {factor:.2g}"
            + (f"; try lr = {lr / factor:.2g} or lower (skipnet.lr_find measures it)" if np.isfinite(lr) else "")
            + (", and standardise the inputs if they are far from unit scale" if diverged else ""))


def input_scale(X, far: float = 100.0) -> str | None:
    """Why X's features are far from unit scale (None when they are not): some feature's root mean
    square is above ``far`` or below ``1 / far`` (a constant-zero feature is ignored), or two features'
    scales differ by more than ``far ** 2``."""
    X = np.asarray(X, dtype=np.float64)
    rms = np.sqrt((X ** 2).mean(axis=0))
    used = rms[rms > 0]
    if used.size == 0:
        return None
    big, small = float(used.max()), float(used.min())
    if big <= far and small >= 1 / far and big / small <= far ** 2:
        return None
    worst = int(np.argmax(np.abs(np.log10(np.where(rms > 0, rms, 1.0)))))
    return (f"the input features are far from unit scale (root mean square from {small:.3g} to {big:.3g}; "
            f"feature {worst}: {float(rms[worst]):.3g}), so the first layer's pre-activations are "
            f"{'huge' if big > far else 'tiny'} at the default initialisation (fix: standardise the inputs, "
            "e.g. (X - mean) / std per feature, or sklearn's StandardScaler)")


def symmetric_units(net, rtol: float = 1e-12) -> dict[int, list[list[int]]]:
    """Groups (of two or more) of identical units in each hidden layer: the same incoming weights,
    bias and skip weights. SGD keeps identical units identical, so they learn as one."""
    views = net.internals.param_views
    out = {}
    for k, layer in enumerate(net.layers[:-1]):
        if layer.units < 2:
            continue
        blocks = [views[f"layers.{k}.weight"]]
        if layer.bias:
            blocks.append(views[f"layers.{k}.bias"][:, None])
        blocks += [views[f"skips.{i}.weight"] for i, s in enumerate(net.skips) if s.dst == k and not s.identity]
        rows = np.concatenate([np.asarray(b, dtype=np.float64) for b in blocks], axis=1)
        tol = rtol * max(1.0, float(np.abs(rows).max()))
        groups, seen = [], set()
        for u in range(layer.units):
            if u in seen:
                continue
            same = [v for v in range(u, layer.units) if v not in seen and np.abs(rows[v] - rows[u]).max() <= tol]
            seen.update(same)
            if len(same) > 1:
                groups.append(same)
        if groups:
            out[k] = groups
    return out


def _symmetric_text(groups: dict) -> str:
    parts = []
    for k, gs in groups.items():
        largest = max(gs, key=len)
        parts.append(f"layer {k}: {sum(map(len, gs))} units in {len(gs)} group{'s' if len(gs) > 1 else ''} "
                     f"of identical units (the largest: {len(largest)} units)")
    return ("identical hidden units, " + "; ".join(parts) + ": they compute the same function and get the "
            "same gradient, so they stay identical and the layer learns like one unit (fix: initialise at "
            "random, e.g. the default or init='he', never one constant for every weight)")


@keyword_from("rtol")
def explain_plateau(net, X, y, loss: str, losses, window: int = 5, rtol: float = 1e-3) -> Plateau | None:
    """Detect a plateau in ``losses`` and explain it from the network's state on (X, y).

    Returns None when there is no plateau; otherwise the Plateau with ``explanation``, ``cause`` and
    ``details`` from ``diagnose`` at the plateau's level (for bce at ln 2 = 0.693: the network predicts
    the same logit, 0, for every sample, i.e. probability 0.5, and says why). ``rtol`` is taken by
    keyword (positionally: deprecated, FutureWarning).
    """
    plateau = detect_plateau(losses, window, rtol)
    if plateau is None:
        return None
    diagnosis = diagnose(net, X, y, loss, level=plateau.level)  # no history: the fit is still running
    plateau.explanation = diagnosis.explanation
    plateau.cause = diagnosis.cause
    plateau.details = diagnosis.details
    return plateau


# ------------------------------------------------------------------------------ during training
class _Finding:
    """A finding of a TrainingMonitor: a record, read-only once made (its message is worked out from
    what it holds, when first asked)."""

    __slots__ = ()
    _explained: tuple[str, dict] | None  # (message, data), once worked out

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is a read-only record of what a TrainingMonitor found; "
                             f"{name!r} cannot be assigned")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is a read-only record; {name!r} cannot be deleted")

    def _keep(self, **values) -> None:
        """The constructor's writes (and the explanation's, once), past __setattr__."""
        self.__dict__.update(values)


class PlateauFound(_Finding):
    """A plateau found by a TrainingMonitor after ``epoch`` (the epoch losses up to it kept): its extent
    (detect_plateau) and cause (diagnose: a forward and backward pass) are worked out when ``explain()``
    is first called, from the weights of that epoch, kept here (a copy of ``params``, by default the
    network's current weights), and the monitor's training data."""

    _losses: tuple | np.ndarray  # the epoch losses: a tuple until first read as ``losses``

    def __init__(self, monitor: TrainingMonitor, epoch_losses, epoch: int, index: int, params=None):
        # what a fit pays for a plateau found (a trainer's finding may never be read): the copies that must
        # be kept (the kernel reuses its buffer of weights, the list of losses grows), in one write
        self.__dict__.update({
            "_losses": tuple(epoch_losses), "window": monitor.window, "rtol": monitor.rtol, "epoch": epoch,
            "index": index, "net": monitor.net, "X": monitor.X, "y": monitor.y, "loss": monitor.loss,
            "_params": (monitor.net.internals.params if params is None else params).copy(), "_explained": None})

    @property
    def params(self) -> np.ndarray:
        """The weights at the plateau's epoch: a copy, read-only (made so when first read)."""
        params = self._params
        if params.flags.writeable:
            params.flags.writeable = False
        return params

    @property
    def losses(self) -> np.ndarray:
        """The fit's epoch losses up to the plateau's epoch, (index + 1,) float64, read-only: made when
        first read (a trainer's finding may never be)."""
        losses = self._losses
        if not isinstance(losses, np.ndarray):
            losses = np.array(losses, dtype=np.float64)
            losses.flags.writeable = False
            self._keep(_losses=losses)
        return losses

    def explain(self) -> tuple[str, dict]:
        """(message, data) of the plateau warning, worked out once."""
        if self._explained is None:
            net = self.net.copy()
            net.internals.params[...] = self.params
            tail = self.losses[-self.window:]  # the monitor's rule found it flat: detect_plateau agrees
            plateau = detect_plateau(self.losses, self.window, self.rtol) or \
                Plateau(self.losses.size - self.window, float(tail.mean()), float(_relative_spread(tail)))
            diagnosis = diagnose(net, self.X, self.y, self.loss, level=plateau.level)
            plateau.explanation, plateau.cause, plateau.details = (diagnosis.explanation, diagnosis.cause,
                                                                   diagnosis.details)
            data = {"level": plateau.level, "start_epoch": self.epoch - self.index + plateau.start,
                    "relative_change": plateau.relative_change, **plateau.details}
            message = f"loss flat at {plateau.level:.6g} since epoch {data['start_epoch']}: {plateau.explanation}"
            self._keep(_explained=(message, data))
        return self._explained


def _window(name: str, value) -> int:
    return V.check_int(name, value, minimum=2, maximum=K.PLATEAU_MAX_WINDOW)


def _level(name: str, value) -> float | None:
    """None (no plateau reported) or the level of the last plateau reported: a finite float."""
    return None if value is None else V.check_float(name, value)


class TrainingMonitor(Checked):
    """Cheap checks between a Trainer's epochs, turned into structured warnings (kind, message, data).

    - ``plateau``: once per flat stretch of the epoch losses (the last ``window`` within ``rtol``), with
      the cause from ``diagnose``; not again until the loss has left that level by more than
      ``10 * rtol`` (relative), so noise around a plateau does not repeat the warning.
    - ``dead_units``: after epoch 0 and every ``every`` epochs (and when asked, ``dead_check``), the
      ReLU units dead on the training data are counted; units not reported before are reported, per
      layer with the fraction, so a unit is named once, at the check where it was first seen dead. (A
      plateau's own cause names a dead layer.)

    A Trainer gives the dead-unit statistics of the epochs due for a check (``unit_max``: per hidden
    ReLU unit, layer by layer, the largest z over the epoch's training steps, which its kernels keep as
    they go), so those checks cost nothing; other checks (``dead_check``, on a stop), or checks without
    statistics, are one forward pass over the training data with the epoch's weights. A plateau costs a
    forward and backward pass when found (or when first read, with ``explain_later``). The plateau rule
    is the kernels' (skipnet._kernels.plateau_begins), so a fused fit applies it as it trains and tells
    ``end_epochs`` where plateaus began, with the weights of those epochs. ``rtol`` and
    ``explain_later`` are taken by keyword (positionally: deprecated, FutureWarning). ``restart``
    watches a new fit of the same network with the same settings. The settings are checked whenever
    assigned; the training data are checked where a check reads them.
    """

    net = Fixed("a monitor watches one network (its hidden layers are worked out once); make a new "
                "TrainingMonitor for another", "The Network watched.")
    every = Setting(lambda name, value: V.check_int(name, value, minimum=1), "Epochs between dead-unit checks.")
    window = Setting(_window, "Epochs of the plateau rule's window.")
    rtol = Setting(lambda name, value: V.check_float(name, value, minimum=0.0),
                   "Relative spread within which the window's losses are flat.")
    explain_later = Setting(V.check_bool, "Findings worked out when first read (PlateauFound, DeadUnitsFound).")
    level = Setting(_level, "The level of the last plateau reported, or None (state of the plateau rule).")

    @keyword_from("rtol")
    def __init__(self, net, X, y, loss: str, every: int = 5, window: int = 5, rtol: float = 1e-3,
                 explain_later: bool = False):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
        TrainingMonitor.net.init(self, net)
        self.explain_later = explain_later
        self.every = every
        self.window = window
        self.rtol = rtol
        self._layers: list[tuple[int, int, int]] | None = None  # the network's hidden ReLU layers
        self.restart(X, y, loss)

    def restart(self, X, y, loss: str) -> None:
        """Watch a new fit (training data X, y, loss) of the same network with the same settings: what
        was reported before is forgotten."""
        # the monitor's own state is written past Checked.__setattr__ (a Python call per write; a Trainer
        # restarts its monitor every fit): state = self.__dict__
        state = self.__dict__
        state["X"], state["y"], state["loss"] = X, y, loss
        state["reported"] = set()  # the units reported dead (flat indices over the hidden ReLU units)
        state["last_check"] = None  # the epoch of the last dead-unit check
        state["level"] = None

    def end_epoch(self, epoch: int, epoch_losses, unit_max: np.ndarray | None = None, dead_check: bool = False
                  ) -> list[tuple[str, str, dict]]:
        """Checks after ``epoch`` given this fit's epoch losses so far (and the epoch's dead-unit
        statistics ``unit_max``, see the class docstring); returns new warnings. ``dead_check``: check
        the dead units even if not due."""
        return [warning[1:] for warning in self.end_epochs(
            epoch, epoch_losses, 1, None if unit_max is None else unit_max[None], dead_check)]

    def end_epochs(self, epoch: int, epoch_losses, count: int, unit_epochs: np.ndarray | None = None,
                   dead_check: bool = False, level=..., plateaus=(), dead_seen: bool | None = None
                   ) -> list[tuple[int, str, str, dict]]:
        """end_epoch for each of the last ``count`` epochs of ``epoch_losses``, the last being ``epoch``.
        ``unit_epochs``: their dead-unit statistics, (count, n_units) (the rows of epochs due for a
        check are read), or None; ``dead_check`` as end_epoch's, for the last. The plateau rule is
        applied here to each epoch, unless a kernel applied it as it trained: then ``level`` is the
        plateau level after the last epoch (FusedNet.watch_level) and ``plateaus`` the epochs where one
        began, in order, as (index among the ``count``, 0 the first; the weights at that epoch's end, or
        None: the network's current ones), and ``dead_seen`` False when it saw no dead unit in the rows of
        ``unit_epochs`` due for a check (None: they are looked at here). Returns (epoch, kind, message,
        data) tuples; with ``explain_later``, message is a PlateauFound or DeadUnitsFound (data None)."""
        first = len(epoch_losses) - count  # the index of the first of them in epoch_losses
        due = (-first) % self.every  # the first of them due for a dead-unit check
        if dead_seen is False and not dead_check and level is not ... and unit_epochs is not None:
            # the common case of a fused call: nothing dead, so the last check due is the last check, and
            # the plateaus it found (most often none) are all there is to report
            state = self.__dict__
            state["level"] = level  # the kernel's: None or a float
            if due < count:
                state["last_check"] = epoch - count + 1 + due + (count - 1 - due) // self.every * self.every
            return [self._plateau_found(epoch_losses, first + back, epoch - count + 1 + back, params)
                    for back, params in plateaus] if plateaus else []
        kernel = level is not ...
        found = dict(plateaus)
        dead_free = kernel and dead_seen is False and unit_epochs is not None  # the due rows hold no dead unit
        if kernel:
            # only the epochs with something to do: where plateaus began, the dead-unit checks due and the
            # last, if asked
            self.__dict__["level"] = level  # the kernel's: None or a float
            backs = range(due, count, self.every)
            if found or dead_check:
                backs = sorted({*backs, *found, *((count - 1,) if dead_check else ())})
        else:
            backs = range(count)
        out = []
        for back in backs:
            index, at = first + back, epoch - count + 1 + back
            if kernel:
                begins = back in found
            else:
                tail = np.asarray(epoch_losses[max(0, index + 1 - self.window):index + 1], dtype=np.float64)
                begins, self.__dict__["level"] = K.plateau_begins(tail, self.window, self.rtol, self.level)
            checked = back >= due and (back - due) % self.every == 0
            if checked and dead_free:
                self.__dict__["last_check"] = at  # a check the kernel's statistics passed: nothing dead
            elif checked or (dead_check and back == count - 1):
                warning = self._dead_units(at, unit_epochs[back] if checked and unit_epochs is not None else None)
                if warning:
                    out.append((at, *warning))
            if begins:
                out.append(self._plateau_found(epoch_losses, index, at, found.get(back)))
        return out

    def _plateau_found(self, epoch_losses, index: int, at: int, params) -> tuple[int, str, object, object]:
        """The plateau warning of epoch ``at`` (``index`` in epoch_losses; ``params``: its weights, or None:
        the network's current ones), as end_epochs returns it."""
        plateau = PlateauFound(self, epoch_losses[:index + 1], at, index, params)
        return (at, "plateau", plateau, None) if self.explain_later else (at, "plateau", *plateau.explain())

    def _dead_units(self, epoch: int, unit_max: np.ndarray | None = None):
        """The dead-unit check after ``epoch``: ``unit_max`` the largest z of every hidden ReLU unit
        (layer by layer) over the epoch, or None: a forward pass over the training data. Returns the
        warning (kind, DeadUnitsFound or message, None or data) when units not reported before are dead."""
        if unit_max is None:
            maxima = [d.max_preactivation for d in dead_units(self.net, self.X).layers.values()]
            unit_max = np.concatenate(maxima) if maxima else np.empty(0)
        dead = K.dead_units_of(unit_max)  # flat indices, ascending
        previous, self.__dict__["last_check"] = self.last_check, epoch
        if not dead:
            return None  # nothing dead: the common case, without a report
        reported = self.reported
        new = [u for u in dead if u not in reported] if reported else dead
        if not new:
            return None
        reported.update(new)
        found = DeadUnitsFound(epoch, previous, self._hidden_layers(), dead, new)
        return ("dead_units", found, None) if self.explain_later else ("dead_units", *found.explain())

    def _hidden_layers(self) -> list[tuple[int, int, int]]:
        """(layer index, width, first flat unit) of each hidden ReLU layer of the network, worked out once."""
        if self._layers is None:
            layers, start = [], 0
            for k in hidden_relu_layers(self.net.layers):
                layers.append((k, self.net.layers[k].units, start))
                start += self.net.layers[k].units
            self._layers = layers
        return self._layers


class DeadUnitsFound(_Finding):
    """Dead ReLU units found by a TrainingMonitor's check after ``epoch`` (``previous``: the check before,
    or None), some not reported before: the warning's message and data, worked out when ``explain()``
    is first called. ``layers``: (layer index, width, first flat unit) of every hidden ReLU layer;
    ``dead``: layer index -> its dead units (ascending); ``new``: the same for the units not reported
    before, only for the layers that have some (both worked out from flat indices when first read)."""

    _dead: list[int] | dict[int, list[int]]  # flat indices over the hidden ReLU units until first read
    _new: list[int] | dict[int, list[int]]

    def __init__(self, epoch: int, previous: int | None, layers, dead: list[int], new: list[int]):
        """``dead``, ``new``: the units as flat indices (ascending) over the hidden ReLU units."""
        self._keep(epoch=epoch, previous=previous, layers=layers, _dead=dead, _new=new, _explained=None)

    @property
    def dead(self) -> dict[int, list[int]]:
        """Layer index -> its dead units (ascending)."""
        if isinstance(self._dead, list):
            self._keep(_dead=self._by_layer(self._dead))
        return self._dead

    @property
    def new(self) -> dict[int, list[int]]:
        """Layer index -> its dead units not reported before (ascending), for the layers that have some."""
        if isinstance(self._new, list):
            self._keep(_new=self._by_layer(self._new))
        return self._new

    def _by_layer(self, flat: list[int]) -> dict[int, list[int]]:
        """Flat unit indices (ascending) as layer index -> units within the layer."""
        by_layer: dict[int, list[int]] = {}
        at = 0
        for u in flat:
            while at + 1 < len(self.layers) and self.layers[at + 1][2] <= u:
                at += 1
            k, _, start = self.layers[at]
            by_layer.setdefault(k, []).append(u - start)
        return by_layer

    def explain(self) -> tuple[str, dict]:
        """(message, data) of the dead_units warning, worked out once."""
        if self._explained is None:
            widths = {k: width for k, width, _ in self.layers}
            n_units = sum(widths.values())
            layers, parts = {}, []
            for k, units in self.new.items():
                dead, width = self.dead[k], widths[k]
                fraction = len(dead) / width
                layers[k] = {"units": dead, "new": units, "fraction": fraction, "width": width}
                whole = " (the whole layer: the output no longer depends on the input)" if len(dead) == width \
                    else ""
                parts.append(f"layer {k}: {len(dead)}/{width} dead ({fraction:.0%}), {len(units)} new{whole}")
            when = "after epoch 0" if self.previous is None else f"between epochs {self.previous} and {self.epoch}"
            message = (f"dead ReLU units found {when}: " + "; ".join(parts) + ". A dead unit has z <= 0 on every "
                       "training sample: it outputs 0 and gets no gradient, so it stays dead unless the layers "
                       "before it change (fixes: a lower learning rate, init='he', a skip connection)")
            n_dead = sum(len(units) for units in self.dead.values())
            data = {"layers": layers, "fraction": n_dead / n_units if n_units else 0.0,
                    "dead_layers": [k for k, width, _ in self.layers if len(self.dead.get(k, ())) == width],
                    "previous_check": self.previous}
            self._keep(_explained=(message, data))
        return self._explained
