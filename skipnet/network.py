"""Network, Dense and Skip: the architecture, its parameters in one flat buffer, and the per-op passes.

Parameters live in one contiguous 1-D buffer with named views in PyTorch's ``nn.Linear`` layout
(``layers.k.weight`` is ``(m_k, m_{k-1})``, ``layers.k.bias`` is ``(m_k,)``, ``skips.i.weight`` is
``(m_dst, m_src)``); gradients live in a twin buffer with the same views. An optimizer step is one kernel
call over the buffer, and saving writes the named views.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _modelfile as MF
from . import _validation as V
from . import export
from ._core import NetworkInternals
from ._deprecation import keyword_from
from ._settings import Checked, Fixed
from .trace import Trace

ACTIVATIONS = ("relu", "identity")
BACKENDS = ("cython", "numpy")
SKIP_KINDS = (None, "first-to-output", "residual")
INITS = ("default", "he")


@dataclass(frozen=True)
class Dense:
    """A fully connected layer of ``units`` outputs: z = h_prev @ W.T (+ b), h = activation(z)."""

    units: int
    activation: str = "relu"
    bias: bool = True

    def __post_init__(self):
        # store plain int/bool (not NumPy scalars), so architectures compare, hash and serialise cleanly
        object.__setattr__(self, "units", V.check_int("Dense.units", self.units, minimum=1, maximum=V.MAX_DIM))
        V.check_choice("Dense.activation", self.activation, ACTIVATIONS)
        object.__setattr__(self, "bias", V.check_bool("Dense.bias", self.bias))


@dataclass(frozen=True)
class Skip:
    """A skip connection adding h[src] (identity) or h[src] @ S.T (learned) into z[dst].

    ``src`` is -1 for the network input or a layer index below ``dst - 1`` (layer dst-1 already feeds
    dst); an identity skip needs equal widths.
    """

    src: int
    dst: int
    identity: bool = False

    def __post_init__(self):
        object.__setattr__(self, "src", V.check_int("Skip.src", self.src, minimum=-1))
        object.__setattr__(self, "dst", V.check_int("Skip.dst", self.dst, minimum=0))
        object.__setattr__(self, "identity", V.check_bool("Skip.identity", self.identity))
        if self.src > self.dst - 2:
            raise ValueError(
                f"Skip({self.src}, {self.dst}): the source must come before layer {self.dst - 1}, "
                f"which already feeds layer {self.dst} (src <= dst - 2, or -1 for the input)"
            )


_ARCHITECTURE = ("the architecture is fixed once a Network exists (its buffers and kernels are built for "
                 "it); build a new Network for another one, e.g. Network.mlp(...) or Network(...)")


class Network(Checked):
    """A feed-forward ReLU network with skip connections.

    Parameters
    ----------
    n_inputs : int
        Number of input features.
    layers : sequence of Dense
        Layers 0 .. L-1; the last is the output layer and must have ``activation="identity"``
        (losses take logits).
    skips : sequence of Skip
        Skip connections into pre-activations.
    dtype : "float32" | "float64"
    seed : int or None
        Seed of the initialisation; None (the default) draws fresh entropy, so that networks built
        without a seed are different draws (a fixed default would make, say, every member of an
        ensemble the same network); an int makes the weights reproducible. ``Trainer``'s seed, which
        only orders the mini-batches, defaults to 0 instead: a fit is reproducible by default from
        given weights, and a seeded network makes the whole run reproducible.
    backend : "cython" | "numpy"
        Compiled kernels, or the pure-NumPy reference.
    init : "default" | "he"
        "default" as ``nn.Linear``: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in));
        "he": weights of ReLU layers N(0, 2/fan_in) and their biases 0, the rest as default.

    Notes
    -----
    The architecture (these arguments) is fixed once the network exists: its attributes are read-only.
    Passing ``init`` positionally (the seventh parameter) is deprecated (FutureWarning): pass it by
    keyword, as every parameter after the first six.
    ``forward``/``predict`` may run from any number of threads at once; ``Trainer.fit``, ``gradients``,
    ``trace``, ``set_parameters`` and ``load_weights`` write the network and run one at a time (a second
    one, or a read during one, raises RuntimeError).
    """

    n_inputs = Fixed(_ARCHITECTURE, "Number of input features.")
    layers = Fixed(_ARCHITECTURE, "The layers (a tuple of Dense), output layer last.")
    skips = Fixed(_ARCHITECTURE, "The skip connections (a tuple of Skip).")
    dtype = Fixed(_ARCHITECTURE, "The dtype of parameters and computations (numpy.dtype).")
    backend = Fixed(_ARCHITECTURE, "'cython' (compiled kernels) or 'numpy' (the reference).")
    init = Fixed(_ARCHITECTURE, "The initialisation scheme ('default' or 'he').")
    seed = Fixed(_ARCHITECTURE, "The initialisation's seed (None: fresh entropy).")

    @keyword_from("init")
    def __init__(self, n_inputs: int, layers: Sequence[Dense], skips: Iterable[Skip] = (),
                 dtype: str = "float64", seed: int | None = None, backend: str = "cython",
                 init: str = "default"):
        n_inputs = V.check_int("n_inputs", n_inputs, minimum=1, maximum=V.MAX_DIM)
        layers = V.check_items("layers", layers, Dense)
        if not layers:
            raise ValueError("layers must be a non-empty sequence of skipnet.Dense")
        if layers[-1].activation != "identity":
            raise ValueError(
                "the output layer (layers[-1]) must have activation='identity': losses take logits"
            )
        skips = V.check_items("skips", () if skips is None else skips, Skip)
        for i, skip in enumerate(skips):
            if skip.dst >= len(layers):
                raise ValueError(f"skips[{i}] = {skip}: dst must be a layer index < {len(layers)}")
            if skip.identity:
                src_width = n_inputs if skip.src < 0 else layers[skip.src].units
                if src_width != layers[skip.dst].units:
                    raise ValueError(
                        f"skips[{i}] = {skip}: an identity skip needs equal widths, got "
                        f"{src_width} -> {layers[skip.dst].units}; use a learned skip (identity=False)"
                    )
        cls = type(self)
        cls.n_inputs.init(self, n_inputs)
        cls.layers.init(self, tuple(layers))
        cls.skips.init(self, tuple(skips))
        cls.dtype.init(self, V.check_dtype(dtype))
        cls.backend.init(self, V.check_choice("backend", backend, BACKENDS))
        cls.init.init(self, V.check_choice("init", init, INITS))
        cls.seed.init(self, None if seed is None else V.check_int("seed", seed, minimum=0))
        self._core = NetworkInternals(self.n_inputs, self.layers, self.skips, self.dtype, self.backend)
        self._initialise(np.random.default_rng(seed))

    @property
    def internals(self) -> NetworkInternals:
        """skipnet's own interface to this network's buffers, checks, locks and engine (internal)."""
        return self._core

    # ----------------------------------------------------------------- construction helpers
    @classmethod
    def exercise(cls, dtype: str = "float64", backend: str = "cython") -> Network:
        """The exercise's network: 1 input, layers of width 1, 1, 1 (relu, relu, identity), no biases,
        a learned skip 0 -> 2, every weight 0.5."""
        net = cls(n_inputs=1,
                  layers=[Dense(1, "relu", bias=False), Dense(1, "relu", bias=False),
                          Dense(1, "identity", bias=False)],
                  skips=[Skip(0, 2)], dtype=dtype, seed=0, backend=backend)
        net._core.params[...] = 0.5
        return net

    @classmethod
    @keyword_from("seed")
    def mlp(cls, n_inputs: int, hidden: Sequence[int] | int, n_outputs: int = 1, skip: str | None = None,
            bias: bool = True, dtype: str = "float64", seed: int | None = None, backend: str = "cython",
            init: str = "default") -> Network:
        """ReLU hidden layers of the given widths and an identity output layer of ``n_outputs``.

        skip: None; "first-to-output" (a learned skip from hidden layer 0 into the output, as in the
        exercise; needs two or more hidden layers); "residual" (blocks of two hidden layers, each with an
        identity skip from the block's input, layer k-2 or the input when widths match, into layer k).
        ``seed``, ``backend`` and ``init`` are taken by keyword (positionally: deprecated, FutureWarning).
        """
        widths = (hidden,) if isinstance(hidden, (int, np.integer)) else hidden
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Iterable):
            raise TypeError(f"hidden must be a sequence of layer widths, got {type(hidden).__name__} {hidden!r}")
        hidden = [V.check_int(f"hidden[{i}]", h, minimum=1) for i, h in enumerate(widths)]
        n_outputs = V.check_int("n_outputs", n_outputs, minimum=1)
        if skip not in SKIP_KINDS:
            raise ValueError(f"skip must be None, 'first-to-output' or 'residual', got {skip!r}")
        layers = [Dense(h, "relu", bias) for h in hidden] + [Dense(n_outputs, "identity", bias)]
        skips = []
        if skip == "first-to-output":
            if len(hidden) < 2:
                raise ValueError("skip='first-to-output' needs at least two hidden layers")
            skips.append(Skip(0, len(hidden)))
        elif skip == "residual":
            if len(hidden) < 2:
                raise ValueError("skip='residual' needs at least two hidden layers (one block)")
            for k in range(1, len(hidden), 2):
                src = k - 2
                src_width = n_inputs if src < 0 else hidden[src]
                if src_width == hidden[k]:
                    skips.append(Skip(src, k, identity=True))
                elif src >= 0:
                    raise ValueError(
                        f"skip='residual' needs equal widths at both ends of each block: hidden[{src}] = "
                        f"{src_width} but hidden[{k}] = {hidden[k]}"
                    )
        return cls(n_inputs, layers, skips, dtype=dtype, seed=seed, backend=backend, init=init)

    def _initialise(self, rng):
        for spec in self._core.layout:
            view = self._core.param_views[spec.name]
            name, shape, fan_in = spec.name, spec.shape, spec.fan_in
            relu_layer = name.startswith("layers.") and self.layers[int(name.split(".")[1])].activation == "relu"
            if self.init == "he" and relu_layer:
                view[...] = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape) if name.endswith("weight") else 0
            else:
                bound = 1.0 / math.sqrt(fan_in)
                view[...] = rng.uniform(-bound, bound, shape)

    # ----------------------------------------------------------------- shape facts
    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    @property
    def n_parameters(self) -> int:
        return self._core.params.size

    @property
    def parameter_names(self) -> list[str]:
        return [spec.name for spec in self._core.layout]

    def __repr__(self):
        layers = ", ".join(f"Dense({ly.units}, {ly.activation!r}{'' if ly.bias else ', bias=False'})"
                           for ly in self.layers)
        skips = ", ".join(f"Skip({s.src}, {s.dst}{', identity=True' if s.identity else ''})"
                          for s in self.skips)
        return (f"Network(n_inputs={self.n_inputs}, layers=[{layers}], skips=[{skips}], "
                f"dtype={self.dtype.name!r}, backend={self.backend!r})")

    # ----------------------------------------------------------------- parameters
    def parameters(self) -> dict[str, np.ndarray]:
        """Copies of every parameter under PyTorch's names and layout."""
        with self._core.reading():
            return {name: view.copy() for name, view in self._core.param_views.items()}

    def set_parameters(self, values: Mapping[str, object]) -> None:
        """Copy in any subset of parameters by name; every value is checked before any is written."""
        if not isinstance(values, Mapping):
            raise TypeError(f"set_parameters expects a mapping name -> array, got {type(values).__name__}")
        views = self._core.param_views
        staged = {}
        for name, value in values.items():
            if name not in views:
                raise ValueError(f"unknown parameter {name!r}; this network has {self.parameter_names}")
            target = views[name]
            arr = V.as_real_array(f"parameter {name!r}", value)
            if arr.shape != target.shape:
                raise ValueError(f"parameter {name!r} must have shape {target.shape}, got {arr.shape}")
            staged[name] = V.as_finite(f"parameter {name!r}", arr, self.dtype)
        with self._core.writing():
            for name, arr in staged.items():
                views[name][...] = arr

    def copy(self) -> Network:
        """An independent network with the same architecture, options and parameter values."""
        clone = Network(self.n_inputs, self.layers, self.skips, dtype=self.dtype.name, seed=self.seed,
                        backend=self.backend, init=self.init)
        with self._core.reading():
            clone._core.params[...] = self._core.params
        return clone

    # ----------------------------------------------------------------- files and pickling
    def save(self, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
        """Write this network to a safetensors file, atomically; return the path (the format:
        skipnet._modelfile).

        Tensors go under PyTorch's names (``layers.k.weight``...), the architecture and a format version
        into the file's metadata; ``metadata`` adds str -> str entries of your own. Only a regular file
        is replaced (a folder, device, FIFO, socket or hard-linked file at the path is refused); a
        symlink is written through; a re-saved file keeps its permissions."""
        # parameters(): a consistent snapshot, refused while another thread writes the network
        return MF.write(path, self.parameters(), MF.architecture(self), metadata)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = "cython") -> Network:
        """The network stored by ``save``; every tensor is checked against the stored architecture
        (ValueError naming the file otherwise). Loading never runs code and never blocks on a FIFO."""
        V.check_choice("backend", backend, BACKENDS)
        net, values = MF.read_model(path, lambda arch: network_from_architecture(arch, backend))
        for name, array in values.items():  # a network of our own: nobody else holds it yet
            net._core.param_views[name][...] = array
        return net

    def load_weights(self, path: str | os.PathLike) -> None:
        """Copy the tensors of a safetensors file (from ``save``, or a PyTorch state dict saved with
        ``safetensors.torch.save_file``) into this network; names and shapes must match exactly
        (F16, F32 and F64 are cast to the network's dtype). Nothing is written unless every tensor
        passes; RuntimeError while a fit or another write runs on this network."""
        values = MF.read_weights(path, self._core.layout, self.dtype)
        with self._core.writing():
            for name, array in values.items():
                self._core.param_views[name][...] = array

    def to_torch(self):
        """A ``torch.nn.Module`` equal to ``predict``, with ``state_dict`` names as ``parameters()``
        (see skipnet.export.to_torch; needs torch)."""
        return export.to_torch(self)

    def to_onnx(self, path: str | os.PathLike) -> Path:
        """Write this network as an ONNX model, atomically; return the path (see skipnet.export.to_onnx;
        needs ``pip install 'skipnet[onnx]'``)."""
        return export.to_onnx(self, path)

    def __getstate__(self) -> dict:
        """Pickle support (scikit-learn's convention for estimators): the architecture and the flat
        parameters; buffers, views and engine are rebuilt on unpickling. Model files use ``save``."""
        with self._core.reading():
            params = self._core.params.copy()
        return {"n_inputs": self.n_inputs, "layers": self.layers, "skips": self.skips,
                "dtype": self.dtype.name, "seed": self.seed, "backend": self.backend, "init": self.init,
                "params": params}

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        params = state.pop("params")
        self.__init__(**state)  # type: ignore[misc]
        self._core.params[...] = params

    # ----------------------------------------------------------------- passes
    def forward(self, X) -> np.ndarray:
        """yhat (n, n_outputs) for X (n, n_inputs), in the network's dtype; safe from many threads."""
        X = self._core.check_features(X, allow_empty=True)
        if X.shape[0] == 0:
            return np.empty((0, self.n_outputs), self.dtype)
        with self._core.reading():
            return self._core.engine.predict(X)

    predict = forward

    def gradients(self, X, y, loss: str = "l1", sample_weight=None) -> tuple[float, dict[str, np.ndarray]]:
        """Mean loss on (X, y) and the gradient of every parameter (dict of copies, PyTorch layout).

        sample_weight: None, or (n,) finite weights >= 0, not all 0: the loss is then the weighted mean
        sum_i w_i l_i / sum_i w_i of the rows' losses l_i (each the mean over the row's outputs), so an
        integer weight counts its row that many times (equal to repeating it, to rounding)."""
        X, y = self._core.check_batch(X, y, loss)
        weight = V.as_sample_weight(sample_weight, X.shape[0])
        with self._core.writing():
            value = self._core.engine.loss_and_gradients(X, y, loss, weight)
            return value, {name: g.copy() for name, g in self._core.grad_views.items()}

    def trace(self, x, y, loss: str = "l1"):
        """Step-by-step account of one forward/backward pass (see skipnet.trace.Trace)."""
        return Trace(self, x, y, loss)

    # ----------------------------------------------------------------- views
    def _summary_rows(self) -> list[tuple[str, ...]]:
        """(layer, units, activation, inputs, parameters) per layer, as strings."""
        sizes = {spec.name: spec.size for spec in self._core.layout}
        rows = []
        for k, layer in enumerate(self.layers):
            inputs = ["input" if k == 0 else f"layer {k - 1}"]
            count = sizes[f"layers.{k}.weight"] + sizes.get(f"layers.{k}.bias", 0)
            for i, skip in enumerate(self.skips):
                if skip.dst == k:
                    src = "input" if skip.src < 0 else f"layer {skip.src}"
                    inputs.append(f"{src} (skip {i}, {'identity' if skip.identity else 'learned'})")
                    count += sizes.get(f"skips.{i}.weight", 0)
            rows.append((str(k), str(layer.units), layer.activation + ("" if layer.bias else ", no bias"),
                         " + ".join(inputs), f"{count:,}"))
        return rows

    def summary(self) -> str:
        """The architecture as a table: each layer's width, activation, inputs (skips included) and
        parameter count (its weight, bias and incoming learned skips), then the totals."""
        head = ("layer", "units", "activation", "inputs", "parameters")
        rows = [head, *self._summary_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [(f"Network: {self.n_inputs} input{'s' if self.n_inputs > 1 else ''}, {len(self.layers)} layers, "
                 f"{len(self.skips)} skip{'' if len(self.skips) == 1 else 's'}, dtype {self.dtype.name}, "
                 f"backend {self.backend}")]
        for i, r in enumerate(rows):
            lines.append("  ".join(c.rjust(w) if j in (1, 4) else c.ljust(w)
                                   for j, (c, w) in enumerate(zip(r, widths))).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(f"total parameters: {self.n_parameters:,}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The summary as an HTML table (notebooks)."""
        from html import escape

        cells = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in self._summary_rows())
        return (f"<div class='skipnet-network'><p><b>Network</b>: {self.n_inputs} inputs, dtype "
                f"{escape(self.dtype.name)}, backend {escape(self.backend)}, {self.n_parameters:,} parameters</p>"
                "<table><tr><th>layer</th><th>units</th><th>activation</th><th>inputs</th><th>parameters</th></tr>"
                f"{cells}</table></div>")


def network_from_architecture(arch: Mapping[str, Any], backend: str = "cython") -> Network:
    """A Network (freshly initialised, seed 0) built from ``architecture(net)``'s data.

    Raises ValueError when a key is missing or unknown, TypeError when a value has the wrong type."""
    if not isinstance(arch, Mapping):
        raise TypeError(f"the architecture must be a JSON object, got {type(arch).__name__}")
    MF.expect_keys("architecture", arch, {"n_inputs", "layers", "skips", "dtype", "init"})
    for key in ("layers", "skips"):
        if not isinstance(arch[key], list):
            raise TypeError(f"architecture[{key!r}] must be a list, got {type(arch[key]).__name__}")
    layers, skips = [], []
    for k, spec in enumerate(arch["layers"]):
        MF.expect_keys(f"architecture['layers'][{k}]", spec, {"units", "activation", "bias"})
        layers.append(Dense(spec["units"], spec["activation"], spec["bias"]))
    for i, spec in enumerate(arch["skips"]):
        MF.expect_keys(f"architecture['skips'][{i}]", spec, {"src", "dst", "identity"})
        skips.append(Skip(spec["src"], spec["dst"], spec["identity"]))
    return Network(arch["n_inputs"], layers, skips, dtype=arch["dtype"], seed=0, backend=backend,
                   init=arch["init"])
