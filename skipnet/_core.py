"""NetworkInternals: what skipnet's own modules use of a Network (buffers, views, checks, guard, engine).

A Network (skipnet.network) holds its architecture and the public methods; everything the kernels,
optimizers, trainer, trace, diagnostics and model files need of it lives here, behind one small
interface (``net.internals``), so no module reaches into another class's private attributes. This
module knows the architecture only as data (n_inputs, a tuple of layers with ``units``/``activation``/
``bias``, a tuple of skips with ``src``/``dst``/``identity``), so it sits below network.py and the
modules that only read a network (trace) need not import the Network class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from . import _validation as V
from ._access import AccessGuard
from ._engine import CythonEngine, NumpyEngine, Pass, hidden_relu_layers


@dataclass(frozen=True)
class ParameterSpec:
    """One named parameter in the flat buffer: elements [offset, offset + size) in ``shape``."""

    name: str
    shape: tuple[int, ...]
    fan_in: int
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class NetworkInternals:
    """What skipnet's own modules use of a Network: its buffers and views, input checks, access
    guard and engine. Not part of the documented API (names may change between versions).

    params, grads: (n_parameters,) flat buffers in the network's dtype; param_views, grad_views:
    read-only mappings name -> live view in PyTorch layout; layout: the ParameterSpecs in buffer order.
    Reads (``reading()``) may run in any number of threads; writes (``writing()``) are exclusive.
    """

    def __init__(self, n_inputs: int, layers: tuple, skips: tuple, dtype: np.dtype,
                 backend: str):
        self.n_inputs, self.layers, self.skips, self.dtype = n_inputs, layers, skips, dtype
        self.n_outputs = layers[-1].units
        self.width = n_inputs + sum(layer.units for layer in layers)  # units per row of a pass
        # the units the dead-unit statistics cover (hidden ReLU layers, layer by layer)
        self.hidden_relu_units = sum(layers[k].units for k in hidden_relu_layers(layers))
        self.layout = _parameter_layout(n_inputs, layers, skips)
        size = sum(spec.size for spec in self.layout)
        V.check_memory(f"a network of {size} parameters (values and gradients)", 2 * size * dtype.itemsize)
        self.params = np.zeros(size, dtype)
        self.grads = np.zeros(size, dtype)
        self.param_views = MappingProxyType(self.views(self.params))
        self.grad_views = MappingProxyType(self.views(self.grads))
        self.guard = AccessGuard()
        self.engine = CythonEngine(self) if backend == "cython" else NumpyEngine(self)

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of any buffer laid out as the parameters (e.g. an optimizer's state)."""
        return {spec.name: flat[spec.offset:spec.offset + spec.size].reshape(spec.shape) for spec in self.layout}

    def reading(self):
        """Context manager for a pass that only reads the weights (any number of threads at once)."""
        return self.guard.reading()

    def writing(self):
        """Context manager for anything that writes the weights or the gradient buffer (exclusive)."""
        return self.guard.writing()

    def check_features(self, X, name: str = "X", *, allow_empty: bool = False) -> np.ndarray:
        """X as a C-contiguous (n, n_inputs) array of the network's dtype, finite, within memory."""
        X = V.as_features(name, X, self.n_inputs, self.dtype, allow_empty=allow_empty)
        self.check_rows(X.shape[0])
        return X

    def check_batch(self, X, y, loss: str) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) validated for ``loss``: y (n, n_outputs) in the dtype, or (n,) int64 class indices."""
        V.check_choice("loss", loss, V.LOSSES)
        X = V.as_features("X", X, self.n_inputs, self.dtype)
        y = V.as_targets("y", y, loss, X.shape[0], self.n_outputs, self.dtype)
        self.check_rows(X.shape[0])
        return X, y

    def check_rows(self, n: int) -> None:
        """Refuse a pass over n rows whose activation buffers (z, h, dh per layer) exceed memory."""
        width = self.width  # the message is made only when the check fails (a pass runs this each call)
        if 3 * n * width * self.dtype.itemsize > V.MEMORY_LIMIT:
            V.check_memory(f"a pass over {n} rows (activations of {width} units per row)",
                           3 * n * width * self.dtype.itemsize)

    def detailed_pass(self, X, y=None, loss=None) -> Pass:
        """All intermediate values (z, h and, given y and loss, dh, dz) on validated input; with a loss
        the gradient buffer is written (hold ``writing()``), without one only read (``reading()``)."""
        return self.engine.detailed_pass(X, y, loss)


def _parameter_layout(n_inputs: int, layers, skips) -> tuple[ParameterSpec, ...]:
    """Each layer's weight and bias, then each learned skip's weight, in buffer order."""
    layout, offset = [], 0
    width = [n_inputs] + [layer.units for layer in layers]  # width[k + 1] = m_k

    def add(name, shape, fan_in):
        nonlocal offset
        layout.append(ParameterSpec(name, shape, fan_in, offset))
        offset += math.prod(shape)

    for k, layer in enumerate(layers):
        add(f"layers.{k}.weight", (layer.units, width[k]), width[k])
        if layer.bias:
            add(f"layers.{k}.bias", (layer.units,), width[k])
    for i, skip in enumerate(skips):
        if not skip.identity:
            add(f"skips.{i}.weight", (layers[skip.dst].units, width[skip.src + 1]), width[skip.src + 1])
    return tuple(layout)
