"""Per-op execution of a Network: one kernel call per layer and skip (cython), or the reference (numpy).

Both engines take validated input (see _validation) and write parameter gradients into the network's flat
gradient buffer, so the optimizers and the trainer never care which engine ran. Each pass of the cython
engine takes a workspace of activation buffers of its own from a byte-bounded pool (so passes in several
threads never share one) and returns it, so a training loop allocates nothing per step after its first
batch of each size, and a huge predict does not keep its memory afterwards.

Engines see the network through its NetworkInternals (``core``): architecture, buffers and views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from . import reference
from ._pool import BytePool

# Free activation workspaces kept per network (bytes); larger ones are freed after their pass.
WORKSPACE_BUDGET = 64 << 20
# Fused-kernel objects kept per network: this many bytes beyond one spare parameter buffer.
FUSED_BUDGET = 64 << 20

_LOSS_KERNELS: dict[str, Callable[..., float]] = {
    "l1": K.l1_loss,
    "mse": K.mse_loss,
    "bce": K.bce_loss,
    "cross_entropy": K.cross_entropy_loss,
}


@dataclass
class Pass:
    """Values of one forward (and backward) pass, copies in the network's dtype.

    z[k], h[k]: (n, m_k) pre-activation and activation of layer k; dh[k], dz[k]: (n, m_k) gradients of
    the loss with respect to them (None before a backward pass). yhat is h[-1].
    """

    z: list
    h: list
    dh: list | None = None
    dz: list | None = None
    loss: float | None = None


class _Workspace:
    """Activation and gradient buffers for one batch size: z, h (forward) and dh (backward, made on
    first use) per layer, (n, m_k) each."""

    def __init__(self, n: int, widths, relu, dtype):
        self.n, self.widths, self.dtype = n, widths, dtype
        self.z = [np.empty((n, m), dtype) for m in widths]
        # identity layers: h is z itself
        self.h = [np.empty((n, m), dtype) if r else z for z, m, r in zip(self.z, widths, relu)]
        self.z_flat = [a.reshape(-1) for a in self.z]
        self.h_flat = [a.reshape(-1) for a in self.h]
        self.dh: list[np.ndarray] = []
        self.dh_flat: list[np.ndarray] = []

    def with_backward(self) -> _Workspace:
        if not self.dh:
            self.dh = [np.empty((self.n, m), self.dtype) for m in self.widths]
            self.dh_flat = [a.reshape(-1) for a in self.dh]
        return self

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.z) + sum(h.nbytes for h, z in zip(self.h, self.z) if h is not z) + \
            sum(a.nbytes for a in self.dh)


class _Lease:
    """An object taken from a BytePool for one ``with`` block and given back after it."""

    __slots__ = ("key", "make", "obj", "pool")

    def __init__(self, pool: BytePool, key, make: Callable):
        self.pool, self.key, self.make, self.obj = pool, key, make, None

    def __enter__(self):
        self.obj = self.pool.take(self.key, self.make)
        return self.obj

    def __exit__(self, *exc) -> None:
        self.pool.give(self.key, self.obj)


def hidden_relu_layers(layers) -> list[int]:
    """The hidden ReLU layers (before the output), whose units the dead-unit statistics cover."""
    return [k for k, layer in enumerate(layers[:-1]) if layer.activation == "relu"]


def fold_unit_max(unit_max, z, hidden_relu) -> None:
    """unit_max (n_units,) over the hidden ReLU units, layer by layer, in the network's dtype: the larger
    of itself and each unit's largest z in ``z`` (per layer, (n, width)); a NaN z is passed over, as in
    the fused kernel (csrc/train.pxi fold_unit_max). Nothing when unit_max is None."""
    if unit_max is None:
        return
    start = 0
    for k in hidden_relu:
        width = z[k].shape[1]
        part = unit_max[start:start + width]
        np.fmax(part, np.fmax.reduce(z[k], axis=0, initial=-np.inf), out=part)
        start += width


class CythonEngine:
    """Runs a network layer by layer through skipnet._kernels (unchecked; inputs validated upstream)."""

    def __init__(self, core):
        self.core = core
        dtype = core.dtype
        self.empty1 = np.empty(0, dtype)
        self.empty2 = np.empty((0, 0), dtype)
        self.widths = [layer.units for layer in core.layers]
        self.relu = [layer.activation == "relu" for layer in core.layers]
        self.hidden_relu = hidden_relu_layers(core.layers)
        self.workspaces: BytePool[_Workspace] = BytePool(WORKSPACE_BUDGET, lambda ws: ws.nbytes)
        self.fused_nets: BytePool[K.FusedNet] = BytePool(FUSED_BUDGET + core.params.nbytes,
                                                         lambda f: f.nbytes)
        params, grads = core.param_views, core.grad_views
        self.layers = []
        for k, layer in enumerate(core.layers):
            self.layers.append((
                params[f"layers.{k}.weight"], grads[f"layers.{k}.weight"],
                params[f"layers.{k}.bias"] if layer.bias else self.empty1,
                grads[f"layers.{k}.bias"] if layer.bias else self.empty1,
                layer.bias,
            ))
        # skips by destination: (src, S, dS) with S None for an identity skip
        self.skips_into = [[] for _ in core.layers]
        for i, skip in enumerate(core.skips):
            if skip.identity:
                self.skips_into[skip.dst].append((skip.src, None, None))
            else:
                self.skips_into[skip.dst].append((skip.src, params[f"skips.{i}.weight"],
                                                  grads[f"skips.{i}.weight"]))
        # Backward visits layers from last to first; the first contribution to reach dh[j] overwrites
        # it and later ones accumulate, so no buffer needs zeroing. Plan: per layer, the accumulate flag
        # of the dense contribution to dh[k-1] and of each skip contribution to dh[src].
        seen = set()
        self.dense_acc = [False] * len(core.layers)
        self.skip_acc = [[False] * len(s) for s in self.skips_into]
        for k in range(len(core.layers) - 1, -1, -1):
            for idx, (src, _, _) in enumerate(self.skips_into[k]):
                if src >= 0:
                    self.skip_acc[k][idx] = src in seen
                    seen.add(src)
            if k - 1 >= 0:
                self.dense_acc[k] = (k - 1) in seen
                seen.add(k - 1)

    def workspace(self, n: int) -> _Lease:
        """``with engine.workspace(n) as ws``: a workspace for n rows, this caller's alone until the
        block ends."""
        return _Lease(self.workspaces, n, lambda: _Workspace(n, self.widths, self.relu, self.core.dtype))

    def fused(self, batch: int) -> _Lease:
        """``with engine.fused(batch) as fused``: the fused-epoch kernel object of this network for
        mini-batches of ``batch`` rows (pooled): the plan of the passes above as C structs (csrc/plan.h),
        and its workspace."""
        return _Lease(self.fused_nets, batch, lambda: self.make_fused(batch))

    def make_fused(self, batch: int) -> K.FusedNet:
        core = self.core
        offsets = {spec.name: spec.offset for spec in core.layout}
        layers = [(layer.units, self.relu[k], layer.bias, offsets[f"layers.{k}.weight"],
                   offsets.get(f"layers.{k}.bias", -1), self.dense_acc[k])
                  for k, layer in enumerate(core.layers)]
        skips, seen = [], [0] * len(core.layers)  # skips_into[dst] lists them in core.skips order
        for i, skip in enumerate(core.skips):
            acc = self.skip_acc[skip.dst][seen[skip.dst]]
            seen[skip.dst] += 1
            skips.append((skip.src, skip.dst, -1 if skip.identity else offsets[f"skips.{i}.weight"], acc))
        return K.FusedNet(core.n_inputs, batch, layers, skips, core.params, core.grads)

    def forward(self, X, ws: _Workspace):
        """Fill ws.z and ws.h for the batch X (n, n_inputs); return yhat (a view of ws)."""
        for k, (W, _, b, _, has_bias) in enumerate(self.layers):
            x = X if k == 0 else ws.h[k - 1]
            if self.relu[k] and not self.skips_into[k]:  # the ReLU from the product's epilogue
                K.dense_fwd_relu(x, W, b, ws.z[k], ws.h[k], has_bias)
                continue
            K.dense_fwd(x, W, b, ws.z[k], has_bias, False)
            for src, S, _ in self.skips_into[k]:
                if S is None:
                    K.add_into(ws.z_flat[k], X.reshape(-1) if src < 0 else ws.h_flat[src], True)
                else:
                    K.dense_fwd(X if src < 0 else ws.h[src], S, self.empty1, ws.z[k], False, True)
            if self.relu[k]:
                K.relu_fwd(ws.z_flat[k], ws.h_flat[k])
        return ws.h[-1]

    def backward(self, X, ws: _Workspace):
        """From dL/dyhat in ws.dh[-1], fill dh/dz (in place, dz overwrites dh) and the gradient buffer."""
        for k in range(len(self.layers) - 1, -1, -1):
            W, dW, _, db, has_bias = self.layers[k]
            if self.relu[k]:
                K.relu_bwd(ws.dh_flat[k], ws.z_flat[k], ws.dh_flat[k])
            dz = ws.dh[k]
            for idx, (src, S, dS) in enumerate(self.skips_into[k]):
                acc = self.skip_acc[k][idx]
                if S is None:
                    if src >= 0:
                        K.add_into(ws.dh_flat[src], ws.dh_flat[k], acc)
                else:
                    h_src = X if src < 0 else ws.h[src]
                    dh_src = self.empty2 if src < 0 else ws.dh[src]
                    K.dense_bwd(dz, h_src, S, dS, self.empty1, dh_src, False, src >= 0, acc)
            x = X if k == 0 else ws.h[k - 1]
            dx = self.empty2 if k == 0 else ws.dh[k - 1]
            K.dense_bwd(dz, x, W, dW, db, dx, has_bias, k > 0, self.dense_acc[k])

    def loss_and_gradients(self, X, y, loss: str, weight=None, unit_max=None) -> float:
        """The mean loss (weighted by ``weight`` (n,) float64 when given) and its gradient, written into
        the gradient buffer; with ``unit_max``, also the dead-unit statistics (fold_unit_max)."""
        if weight is not None:
            return self.weighted_loss_and_gradients(X, y, loss, weight, unit_max)[0]
        with self.workspace(X.shape[0]) as ws:
            yhat = self.forward(X, ws.with_backward())
            fold_unit_max(unit_max, ws.z, self.hidden_relu)
            value = _LOSS_KERNELS[loss](yhat, y, ws.dh[-1])
            self.backward(X, ws)
            return value

    def weighted_loss_and_gradients(self, X, y, loss: str, weight, unit_max=None) -> tuple[float, float]:
        """(weighted mean loss, sum of the weights) of the batch, weights (n,) float64 finite >= 0; the
        gradient goes into the gradient buffer (the fused path's arithmetic, see csrc/losses.pxi)."""
        with self.workspace(X.shape[0]) as ws:
            yhat = self.forward(X, ws.with_backward())
            fold_unit_max(unit_max, ws.z, self.hidden_relu)
            value, weight_sum = K.weighted_loss(loss, yhat, y, weight, ws.dh[-1])
            self.backward(X, ws)
            return value, weight_sum

    def loss_value(self, X, y, loss: str, weight=None) -> float:
        """loss_and_gradients' loss alone: a forward pass (the gradient buffer is left alone)."""
        with self.workspace(X.shape[0]) as ws:
            yhat = self.forward(X, ws.with_backward())
            if weight is None:
                return _LOSS_KERNELS[loss](yhat, y, ws.dh[-1])
            return K.weighted_loss(loss, yhat, y, weight, ws.dh[-1])[0]

    def predict(self, X):
        with self.workspace(X.shape[0]) as ws:
            return self.forward(X, ws).copy()

    def detailed_pass(self, X, y=None, loss=None) -> Pass:
        with self.workspace(X.shape[0]) as ws:
            self.forward(X, ws)
            z = [a.copy() for a in ws.z]
            h = [a.copy() for a in ws.h]
            if loss is None:
                return Pass(z, h)
            ws.with_backward()
            value = _LOSS_KERNELS[loss](ws.h[-1], y, ws.dh[-1])
            dh_out = ws.dh[-1].copy()
            self.backward(X, ws)  # leaves dz in the dh buffers
            dz = [a.copy() for a in ws.dh]
        core = self.core  # dL/dh from the kernels' dz by the reference's rule, for inspection
        dh = [reference.consumers_gradient(core.param_views, core.skips, k, dz) for k in range(len(dz) - 1)]
        dh.append(dh_out)
        return Pass(z, h, dh, dz, value)


class NumpyEngine:
    """Runs a network through skipnet.reference (the readable oracle)."""

    def __init__(self, core):
        self.core = core
        self.hidden_relu = hidden_relu_layers(core.layers)

    def predict(self, X):
        core = self.core
        yhat, _ = reference.forward(core.param_views, core.layers, core.skips, X)
        return np.array(yhat, dtype=core.dtype, copy=True)

    def loss_and_gradients(self, X, y, loss: str, weight=None, unit_max=None) -> float:
        if weight is not None:
            return self.weighted_loss_and_gradients(X, y, loss, weight, unit_max)[0]
        p = self.detailed_pass(X, y, loss)
        fold_unit_max(unit_max, p.z, self.hidden_relu)
        assert p.loss is not None  # a pass given a loss always computes it
        return p.loss

    def weighted_loss_and_gradients(self, X, y, loss: str, weight, unit_max=None) -> tuple[float, float]:
        core = self.core
        yhat, cache = reference.forward(core.param_views, core.layers, core.skips, X)
        fold_unit_max(unit_max, cache["z"], self.hidden_relu)
        value, dyhat, weight_sum = reference.weighted_loss_and_gradient(loss, yhat, y, weight)
        self._store(reference.backward(core.param_views, core.layers, core.skips, cache, dyhat))
        return value, weight_sum

    def loss_value(self, X, y, loss: str, weight=None) -> float:
        """loss_and_gradients' loss alone: a forward pass (the gradient buffer is left alone)."""
        core = self.core
        yhat, _ = reference.forward(core.param_views, core.layers, core.skips, X)
        if weight is None:
            return reference.loss_and_gradient(loss, yhat, y)[0]
        return reference.weighted_loss_and_gradient(loss, yhat, y, weight)[0]

    def _store(self, grads) -> None:
        for name, g in grads.items():
            self.core.grad_views[name][...] = g

    def detailed_pass(self, X, y=None, loss=None) -> Pass:
        core = self.core
        yhat, cache = reference.forward(core.param_views, core.layers, core.skips, X)
        z = list(cache["z"])
        h = [cache["h"][k] for k in range(len(core.layers))]
        if loss is None:
            return Pass(z, h)
        value, dyhat = reference.loss_and_gradient(loss, yhat, y)
        record: dict = {}  # dh and dz per layer, for inspection (trace, diagnostics)
        self._store(reference.backward(core.param_views, core.layers, core.skips, cache, dyhat, record))
        return Pass(z, h, record["dh"], record["dz"], value)
