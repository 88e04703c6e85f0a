"""Per-op execution of a Network: one kernel call per layer and skip (cython), or the reference (numpy).

Both engines take validated input (see _validation) and write parameter gradients into the network's flat
gradient buffer, so the optimizers and the trainer never care which engine ran. The cython engine keeps
one workspace of activation buffers per batch size, so a training loop allocates nothing per step after
its first batch of each size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from . import reference

MAX_WORKSPACES = 8  # cached workspaces per network; the oldest is dropped first

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
    """Activation and gradient buffers for one batch size: z, h, dh per layer (n, m_k)."""

    def __init__(self, n: int, widths, relu, dtype):
        self.z = [np.empty((n, m), dtype) for m in widths]
        # identity layers: h is z itself
        self.h = [np.empty((n, m), dtype) if r else z for z, m, r in zip(self.z, widths, relu)]
        self.dh = [np.empty((n, m), dtype) for m in widths]
        self.z_flat = [a.reshape(-1) for a in self.z]
        self.h_flat = [a.reshape(-1) for a in self.h]
        self.dh_flat = [a.reshape(-1) for a in self.dh]


class CythonEngine:
    """Runs a network layer by layer through skipnet._kernels (unchecked; inputs validated upstream)."""

    def __init__(self, net):
        self.net = net
        dtype = net.dtype
        self.empty1 = np.empty(0, dtype)
        self.empty2 = np.empty((0, 0), dtype)
        self.widths = [layer.units for layer in net.layers]
        self.relu = [layer.activation == "relu" for layer in net.layers]
        self.workspaces: dict[int, _Workspace] = {}
        self.fused_nets: dict[int, K.FusedNet] = {}
        params, grads = net._param_views, net._grad_views
        self.layers = []
        for k, layer in enumerate(net.layers):
            self.layers.append((
                params[f"layers.{k}.weight"], grads[f"layers.{k}.weight"],
                params[f"layers.{k}.bias"] if layer.bias else self.empty1,
                grads[f"layers.{k}.bias"] if layer.bias else self.empty1,
                layer.bias,
            ))
        # skips by destination: (src, S, dS) with S None for an identity skip
        self.skips_into = [[] for _ in net.layers]
        for i, skip in enumerate(net.skips):
            if skip.identity:
                self.skips_into[skip.dst].append((skip.src, None, None))
            else:
                self.skips_into[skip.dst].append((skip.src, params[f"skips.{i}.weight"],
                                                  grads[f"skips.{i}.weight"]))
        # Backward visits layers from last to first; the first contribution to reach dh[j] overwrites
        # it and later ones accumulate, so no buffer needs zeroing. Plan: per layer, the accumulate flag
        # of the dense contribution to dh[k-1] and of each skip contribution to dh[src].
        seen = set()
        self.dense_acc = [False] * len(net.layers)
        self.skip_acc = [[False] * len(s) for s in self.skips_into]
        for k in range(len(net.layers) - 1, -1, -1):
            for idx, (src, _, _) in enumerate(self.skips_into[k]):
                if src >= 0:
                    self.skip_acc[k][idx] = src in seen
                    seen.add(src)
            if k - 1 >= 0:
                self.dense_acc[k] = (k - 1) in seen
                seen.add(k - 1)

    def workspace(self, n: int) -> _Workspace:
        ws = self.workspaces.get(n)
        if ws is None:
            # keep a few batch sizes (training uses two or three), not one per size ever seen
            if len(self.workspaces) >= MAX_WORKSPACES:
                del self.workspaces[next(iter(self.workspaces))]
            ws = self.workspaces[n] = _Workspace(n, self.widths, self.relu, self.net.dtype)
        return ws

    def fused(self, batch: int) -> K.FusedNet:
        """The fused-epoch kernel object of this network for mini-batches of ``batch`` rows (cached):
        the plan of the passes above as integer arrays, and its workspace."""
        fused = self.fused_nets.get(batch)
        if fused is None:
            net = self.net
            offsets = _parameter_offsets(net)
            layers = [(layer.units, self.relu[k], layer.bias, offsets[f"layers.{k}.weight"],
                       offsets.get(f"layers.{k}.bias", -1), self.dense_acc[k])
                      for k, layer in enumerate(net.layers)]
            skips, seen = [], [0] * len(net.layers)  # skips_into[dst] lists them in net.skips order
            for i, skip in enumerate(net.skips):
                acc = self.skip_acc[skip.dst][seen[skip.dst]]
                seen[skip.dst] += 1
                skips.append((skip.src, skip.dst, -1 if skip.identity else offsets[f"skips.{i}.weight"], acc))
            fused = self.fused_nets[batch] = K.FusedNet(net.n_inputs, batch, layers, skips, net._params,
                                                        net._grads)
        return fused

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

    def loss_and_gradients(self, X, y, loss: str) -> float:
        ws = self.workspace(X.shape[0])
        yhat = self.forward(X, ws)
        value = _LOSS_KERNELS[loss](yhat, y, ws.dh[-1])
        self.backward(X, ws)
        return value

    def predict(self, X):
        return self.forward(X, self.workspace(X.shape[0])).copy()

    def detailed_pass(self, X, y=None, loss=None) -> Pass:
        ws = self.workspace(X.shape[0])
        self.forward(X, ws)
        z = [a.copy() for a in ws.z]
        h = [a.copy() for a in ws.h]
        if loss is None:
            return Pass(z, h)
        value = _LOSS_KERNELS[loss](ws.h[-1], y, ws.dh[-1])
        dh_out = ws.dh[-1].copy()
        self.backward(X, ws)  # leaves dz in the dh buffers
        dz = [a.copy() for a in ws.dh]
        dh = [_consumers_gradient(self.net, k, dz) for k in range(len(dz) - 1)] + [dh_out]
        return Pass(z, h, dh, dz, value)


class NumpyEngine:
    """Runs a network through skipnet.reference (the readable oracle)."""

    def __init__(self, net):
        self.net = net

    def _params(self):
        return self.net._param_views

    def predict(self, X):
        yhat, _ = reference.forward(self._params(), self.net.layers, self.net.skips, X)
        return np.array(yhat, dtype=self.net.dtype, copy=True)

    def loss_and_gradients(self, X, y, loss: str) -> float:
        value = self.detailed_pass(X, y, loss).loss
        assert value is not None  # a pass given a loss always computes it
        return value

    def detailed_pass(self, X, y=None, loss=None) -> Pass:
        net = self.net
        yhat, cache = reference.forward(self._params(), net.layers, net.skips, X)
        z = list(cache["z"])
        h = [cache["h"][k] for k in range(len(net.layers))]
        if loss is None:
            return Pass(z, h)
        value, dyhat = reference.loss_and_gradient(loss, yhat, y)
        grads = reference.backward(self._params(), net.layers, net.skips, cache, dyhat)
        for name, g in grads.items():
            net._grad_views[name][...] = g
        # dh and dz per layer, for inspection (trace, diagnostics): dz = dh * g'(z)
        dh = [None] * len(net.layers)
        dz = [None] * len(net.layers)
        dh[-1] = dyhat
        for k in range(len(net.layers) - 1, -1, -1):
            if dh[k] is None:
                dh[k] = _consumers_gradient(net, k, dz)
            dz[k] = dh[k] * reference.relu_derivative(z[k]) if net.layers[k].activation == "relu" else dh[k]
        return Pass(z, h, dh, dz, value)


def _parameter_offsets(net) -> dict[str, int]:
    """Offset of each named parameter in the flat buffer (elements)."""
    base = net._params.__array_interface__["data"][0]
    return {name: (view.__array_interface__["data"][0] - base) // net._params.itemsize
            for name, view in net._param_views.items()}


def _consumers_gradient(net, k, dz):
    """dL/dh[k] = dz[k+1] @ W[k+1] + sum over skips from k of dz[dst] (@ S)."""
    params = net._param_views
    out = dz[k + 1] @ params[f"layers.{k + 1}.weight"]
    for i, skip in enumerate(net.skips):
        if skip.src == k:
            out = out + (dz[skip.dst] if skip.identity else dz[skip.dst] @ params[f"skips.{i}.weight"])
    return out
