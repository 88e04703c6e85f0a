"""The readable oracle: skipnet's math in plain NumPy, one formula per line.

Written from the math contract (docs/design.md section 1), not from the kernels, and sharing no code with them.
The cython backend is tested against this module; ``backend="numpy"`` runs it.

Notation, for a network with layers ``0 .. L-1`` and a batch ``x`` of shape ``(n, n_inputs)``::

    h[-1] = x
    z[k]  = h[k-1] @ W[k].T + b[k] + sum over skips (j -> k) of (h[j] @ S.T  or  h[j])
    h[k]  = relu(z[k])  or  z[k]             yhat = h[L-1]

``layers`` are objects with ``units``, ``activation`` ("relu" | "identity") and ``bias``; ``skips`` have
``src``, ``dst`` and ``identity``. Parameters are a dict of arrays under PyTorch's names
(``layers.k.weight`` of shape ``(m_k, m_{k-1})``, ``layers.k.bias``, ``skips.i.weight``).
Sums are accumulated in float64 and rounded once to the data's dtype.
"""

from __future__ import annotations

import math

import numpy as np

# ln 2: the bce loss of a logit of 0 (predicting probability 0.5), where stuck binary classifiers sit
LN2 = math.log(2.0)


def relu(z):
    """max(z, 0), written as a mask so that relu(0) = 0 and its derivative at 0 is 0."""
    return np.where(z > 0, z, np.zeros_like(z))


def relu_derivative(z):
    """1 where z > 0, else 0 (relu'(0) = 0, as PyTorch)."""
    return (z > 0).astype(z.dtype)


def sigmoid(z):
    """1 / (1 + exp(-z)) without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def forward(params, layers, skips, x):
    """Run the network on x (n, n_inputs); return yhat (n, m_{L-1}) and the cache {"z": [...], "h": {...}}."""
    h = {-1: x}
    z = []
    for k, layer in enumerate(layers):
        zk = h[k - 1] @ params[f"layers.{k}.weight"].T
        if layer.bias:
            zk = zk + params[f"layers.{k}.bias"]
        for i, skip in enumerate(skips):
            if skip.dst != k:
                continue
            if skip.identity:
                zk = zk + h[skip.src]
            else:
                zk = zk + h[skip.src] @ params[f"skips.{i}.weight"].T
        z.append(zk)
        h[k] = relu(zk) if layer.activation == "relu" else zk
    return h[len(layers) - 1], {"z": z, "h": h}


def consumers_gradient(params, skips, k, dz):
    """dL/dh[k] from the gradients dz[m] = dL/dz[m] of the layers that read h[k]: the next layer's dense
    input, z[k+1] = h[k] @ W.T + ..., gives dz[k+1] @ W; each skip from k into m gives dz[m] @ S (learned)
    or dz[m] (identity)."""
    out = dz[k + 1] @ params[f"layers.{k + 1}.weight"]
    for i, skip in enumerate(skips):
        if skip.src == k:
            out = out + (dz[skip.dst] if skip.identity else dz[skip.dst] @ params[f"skips.{i}.weight"])
    return out


def backward(params, layers, skips, cache, dyhat, record=None):
    """Back-propagate dL/dyhat through the network; return the gradient of every parameter (dict).
    ``record``, a dict, receives the lists "dh" and "dz" (dL/dh[k] and dL/dz[k] per layer)."""
    z, h = cache["z"], cache["h"]
    last = len(layers) - 1
    dh, dz = [None] * len(layers), [None] * len(layers)
    grads = {}
    for k in range(last, -1, -1):
        # every layer that reads h[k] comes after it, so its dz is known here
        dh[k] = dyhat if k == last else consumers_gradient(params, skips, k, dz)
        # dL/dz[k] = dL/dh[k] * g_k'(z[k])
        dz[k] = dh[k] * relu_derivative(z[k]) if layers[k].activation == "relu" else dh[k]
        # z[k] = h[k-1] @ W.T + b  ->  dL/dW = dz.T @ h[k-1],  dL/db = sum of dz over the batch
        grads[f"layers.{k}.weight"] = dz[k].T @ h[k - 1]
        if layers[k].bias:
            grads[f"layers.{k}.bias"] = dz[k].sum(axis=0, dtype=np.float64).astype(dz[k].dtype)
        for i, skip in enumerate(skips):
            if skip.dst == k and not skip.identity:
                # z[k] += h[j] @ S.T  ->  dL/dS = dz.T @ h[j]
                grads[f"skips.{i}.weight"] = dz[k].T @ h[skip.src]
    if record is not None:
        record["dh"], record["dz"] = dh, dz
    return grads


def loss_and_gradient(loss, yhat, y):
    """Mean-reduced loss (a float) and dL/dyhat (yhat's dtype).

    l1: mean |yhat - y|, gradient sign(yhat - y) / N with sign(0) = 0.
    mse: mean (yhat - y)^2, gradient 2 (yhat - y) / N.
    bce: yhat are logits z, mean softplus(z) - y z, gradient (sigmoid(z) - y) / N.
    cross_entropy: yhat are logits (n, c), y integer classes (n,); mean over rows of
        logsumexp(z) - z[y], gradient (softmax(z) - onehot(y)) / n.
    """
    dtype = yhat.dtype
    z = yhat.astype(np.float64)
    if loss == "cross_entropy":
        n = z.shape[0]
        rows = np.arange(n)
        zmax = z.max(axis=1, keepdims=True)
        logsumexp = zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
        value = np.mean(logsumexp[:, 0] - z[rows, y])
        grad = np.exp(z - logsumexp)
        grad[rows, y] -= 1.0
        return float(value), (grad / n).astype(dtype)
    t = y.astype(np.float64)
    size = z.size
    if loss == "l1":
        r = z - t
        return float(np.mean(np.abs(r))), (np.sign(r) / size).astype(dtype)
    if loss == "mse":
        r = z - t
        return float(np.mean(r * r)), (2.0 * r / size).astype(dtype)
    if loss == "bce":
        softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        return float(np.mean(softplus - t * z)), ((sigmoid(z) - t) / size).astype(dtype)
    raise ValueError(f"unknown loss {loss!r}")


def weighted_loss_and_gradient(loss, yhat, y, weight):
    """Weighted mean loss (a float), dL/dyhat (yhat's dtype) and the sum of the weights.

    With l_i the loss of row i (its mean over the m outputs; cross_entropy: logsumexp(z_i) - z_i[y_i]) and
    weights w_i >= 0 (n,): L = sum_i w_i l_i / sum_i w_i, so dL/dyhat_i = w_i / sum_i w_i * dl_i/dyhat_i.
    An integer weight counts its row that many times. All weights 0: L = 0 and a zero gradient.
    """
    dtype = yhat.dtype
    w = np.asarray(weight, dtype=np.float64)
    total = float(w.sum())
    if total == 0.0:
        return 0.0, np.zeros_like(yhat), total
    share = w / total  # each row's part of the batch
    z = yhat.astype(np.float64)
    if loss == "cross_entropy":
        rows = np.arange(z.shape[0])
        zmax = z.max(axis=1, keepdims=True)
        logsumexp = zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
        row_loss = logsumexp[:, 0] - z[rows, y]
        row_grad = np.exp(z - logsumexp)
        row_grad[rows, y] -= 1.0
    else:
        t = y.astype(np.float64)
        r = z - t
        m = z.shape[1]
        if loss == "l1":
            element, element_grad = np.abs(r), np.sign(r)
        elif loss == "mse":
            element, element_grad = r * r, 2.0 * r
        elif loss == "bce":
            element = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - t * z
            element_grad = sigmoid(z) - t
        else:
            raise ValueError(f"unknown loss {loss!r}")
        row_loss, row_grad = element.mean(axis=1), element_grad / m
    value = float(np.sum(share[w > 0] * row_loss[w > 0]))  # a row of weight 0 is absent
    grad = np.where(w[:, None] > 0, share[:, None] * row_grad, 0.0)
    return value, grad.astype(dtype), total


def _with_weight_decay(g, p, weight_decay):
    """g + weight_decay p in float64, the term left out when weight_decay is 0 (as torch.optim: then a
    non-finite p does not turn the step into NaN)."""
    d = g.astype(np.float64)
    return d + weight_decay * p if weight_decay != 0 else d


class SGD:
    """torch.optim.SGD: d = g (+ wd p if wd != 0); b = d (first step) or momentum b + (1 - dampening) d;
    d = d + momentum b (nesterov) or b; p -= lr d. Updates a dict of arrays in place, and its state too:
    ``buffers`` (name -> momentum buffer, the parameter's shape and dtype) is made of zeros on first use,
    or holds arrays the caller put there (skipnet.optimizers: views of its flat state buffer)."""

    def __init__(self, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.buffers = {}
        self.started = False  # a momentum step has run (the first one takes b = d)

    def step(self, params, grads, lr):
        for name, p in params.items():
            d = _with_weight_decay(grads[name], p, self.weight_decay)
            if self.momentum != 0:
                buffer = _state(self.buffers, name, p)
                b = self.momentum * buffer + (1.0 - self.dampening) * d if self.started else d
                buffer[...] = b  # stored in the parameters' dtype; this step uses b as computed
                d = d + self.momentum * b if self.nesterov else b
            p[...] = p - lr * d
        self.started = self.started or self.momentum != 0


class Adam:
    """torch.optim.Adam (L2 weight decay added to the gradient, bias-corrected moments). The moments
    ``m`` and ``v`` (name -> array, the parameter's shape and dtype) are updated in place, as SGD's
    buffers."""

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m = {}
        self.v = {}

    def step(self, params, grads, lr):
        self.t += 1
        bias_correction1 = 1.0 - self.beta1**self.t
        bias_correction2 = 1.0 - self.beta2**self.t
        for name, p in params.items():
            d = _with_weight_decay(grads[name], p, self.weight_decay)
            m_state, v_state = _state(self.m, name, p), _state(self.v, name, p)
            m = self.beta1 * m_state + (1.0 - self.beta1) * d
            v = self.beta2 * v_state + (1.0 - self.beta2) * d * d
            m_state[...] = m
            v_state[...] = v
            denom = np.sqrt(v) / np.sqrt(bias_correction2) + self.eps
            p[...] = p - (lr / bias_correction1) * m / denom


def _state(store, name, p):
    """store[name]: an optimizer's state for parameter p, zeros on first use."""
    if name not in store:
        store[name] = np.zeros_like(p)
    return store[name]
