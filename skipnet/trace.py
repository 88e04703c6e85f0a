"""Trace: the hand computation of one training step, as a table with the chain rule spelled out.

``net.trace(x, y, loss)`` runs one forward and backward pass and records every node's value (z and h
of each unit, the output, the loss), every gradient with its chain-rule formula, and which ReLU units
are dead. ``str(trace)`` prints the table; ``trace.apply(lr)`` takes the SGD step on the network and
adds the updates to the table. Symbols: ``x`` the input, ``z{k}``/``h{k}`` layer k's pre-activation and
activation (``[u]`` picks unit u when the layer is wider than 1), ``W{k}``/``b{k}`` its weight and bias
(``layers.k.weight``/``layers.k.bias``), ``S{i}`` the weight of learned skip i (``skips.i.weight``).
With one sample every formula shows its numbers; with a batch, values are listed per sample and the
gradients are batch means.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

import numpy as np

from . import _validation as V
from ._core import NetworkInternals
from ._format import fmt

_LOSS_FORMULA = {
    "l1": ("|yhat - y|", "sign(yhat - y) / N"),
    "mse": ("(yhat - y)^2", "2 (yhat - y) / N"),
    "bce": ("softplus(yhat) - y·yhat", "(sigmoid(yhat) - y) / N"),
    "cross_entropy": ("logsumexp(yhat) - yhat[y]", "(softmax(yhat) - onehot(y)) / n"),
}


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


class Trace:
    """One forward/backward pass of ``net`` on (x, y), recorded for explanation.

    Attributes: ``loss`` (float), ``yhat`` (n, n_outputs), ``grads`` (dict name -> array, PyTorch
    layout), ``dead_units`` (dict hidden layer -> list of units with z <= 0 for every sample),
    ``rows`` (list of (section, symbol, formula, value) tuples behind ``str()``). A trace is a record of
    one pass: its attributes are read-only (``apply`` records the step it took in ``applied_lr`` and
    ``new_params``); make a new trace to record another pass.
    """

    def __init__(self, net, x, y, loss: str = "l1"):
        core = getattr(net, "internals", None)
        if not isinstance(core, NetworkInternals):
            raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
        X, Y = core.check_batch(x, y, loss)
        self.net, self.loss_name, self.x, self.y = net, loss, X, Y
        with core.writing():  # the pass writes the gradient buffer read here
            self.params = {name: view.copy() for name, view in core.param_views.items()}
            p = core.detailed_pass(X, Y, loss)
            self.grads = {name: g.copy() for name, g in core.grad_views.items()}
        self.loss = float(p.loss)
        self.yhat = p.h[-1].copy()
        self.z, self.h, self.dh, self.dz = p.z, p.h, p.dh, p.dz
        self.dead_units = {k: [int(u) for u in np.flatnonzero((p.z[k] <= 0).all(axis=0))]
                           for k, layer in enumerate(net.layers[:-1]) if layer.activation == "relu"}
        self._applied_lr: float | None = None
        self._new_params: dict[str, np.ndarray] | None = None
        self.rows = self._forward_rows() + self._backward_rows()
        self._sealed = True

    def __setattr__(self, name: str, value) -> None:
        if not name.startswith("_") and getattr(self, "_sealed", False):
            raise AttributeError(f"Trace.{name} is read-only: a trace records one pass (net.trace(x, y) "
                                 "records another)")
        object.__setattr__(self, name, value)

    @property
    def applied_lr(self) -> float | None:
        """The learning rate of the step ``apply`` took, None before."""
        return self._applied_lr

    @property
    def new_params(self) -> dict[str, np.ndarray] | None:
        """The parameters after the step ``apply`` took (name -> array), None before."""
        return self._new_params

    # ------------------------------------------------------------------ symbols
    def _unit(self, prefix: str, k: int, u: int, width: int) -> str:
        return f"{prefix}{k}" + (f"[{u}]" if width > 1 else "")

    def _input(self, u: int) -> str:
        return "x" + (f"[{u}]" if self.net.n_inputs > 1 else "")

    def _h(self, j: int, u: int) -> str:
        return self._input(u) if j < 0 else self._unit("h", j, u, self.net.layers[j].units)

    def _h_value(self, j: int, u: int):
        return self.x[:, u] if j < 0 else self.h[j][:, u]

    def _param(self, symbol: str, shape, o: int, p: int | None = None) -> str:
        if p is None:
            return symbol + (f"[{o}]" if shape[0] > 1 else "")
        return symbol + (f"[{o},{p}]" if shape != (1, 1) else "")

    @property
    def _single(self) -> bool:
        return self.x.shape[0] == 1

    def _value(self, v) -> str:
        v = np.asarray(v)
        return fmt(v[0]) if v.ndim and v.shape[0] == 1 else fmt(v)

    # ------------------------------------------------------------------ forward
    def _incoming(self, k: int):
        """[(weight symbol, weight array or None for identity, source layer)] feeding z[k]."""
        terms = [(f"W{k}", self.params[f"layers.{k}.weight"], k - 1)]
        for i, skip in enumerate(self.net.skips):
            if skip.dst == k:
                terms.append((f"S{i}", None if skip.identity else self.params[f"skips.{i}.weight"], skip.src))
        return terms

    def _forward_rows(self):
        net, rows = self.net, []
        for k, layer in enumerate(net.layers):
            last = k == len(net.layers) - 1
            for u in range(layer.units):
                sym, num = [], []
                for wsym, W, src in self._incoming(k):
                    width = net.n_inputs if src < 0 else net.layers[src].units
                    for q in range(width):
                        if W is None and q != u:
                            continue
                        hs = self._h(src, q)
                        if W is None:
                            sym.append(hs)
                            num.append(fmt(self._h_value(src, q)[0]) if self._single else "")
                        else:
                            sym.append(f"{self._param(wsym, W.shape, u, q)}·{hs}")
                            num.append(f"{fmt(W[u, q])}·{_paren(fmt(self._h_value(src, q)[0]))}"
                                       if self._single else "")
                if layer.bias:
                    sym.append(self._param(f"b{k}", (layer.units,), u))
                    num.append(fmt(self.params[f"layers.{k}.bias"][u]))
                formula = " + ".join(sym)
                if self._single and len(num) <= 6:
                    formula += " = " + " + ".join(num)
                rows.append(("forward", self._unit("z", k, u, layer.units), formula, self._value(self.z[k][:, u])))
                if layer.activation == "relu":
                    rows.append(("forward", self._unit("h", k, u, layer.units),
                                 f"relu({self._unit('z', k, u, layer.units)})", self._value(self.h[k][:, u])))
                elif last:
                    rows.append(("forward", "yhat" + (f"[{u}]" if layer.units > 1 else ""),
                                 self._unit("z", k, u, layer.units), self._value(self.yhat[:, u])))
        value_formula = _LOSS_FORMULA[self.loss_name][0]
        if self._single and self.loss_name in ("l1", "mse") and self.yhat.size == 1:
            diff = f"{fmt(self.yhat[0, 0])} - {_paren(fmt(self.y[0, 0]))}"
            value_formula += " = " + (f"|{diff}|" if self.loss_name == "l1" else f"({diff})^2")
        rows.append(("forward", "L", ("mean " if self.yhat.size > 1 else "") + value_formula, fmt(self.loss)))
        return rows

    # ------------------------------------------------------------------ backward
    def _backward_rows(self):
        net, rows, grad_rows, L = self.net, [], [], len(self.net.layers)
        grad_formula = _LOSS_FORMULA[self.loss_name][1]
        rows.append(("backward", "dL/dyhat", grad_formula, self._value(self.dh[-1][:, 0])
                     if net.n_outputs == 1 else fmt(self.dh[-1])))
        for k in range(L - 1, -1, -1):
            layer = net.layers[k]
            for u in range(layer.units):
                zs = self._unit("z", k, u, layer.units)
                hs = self._unit("h", k, u, layer.units) if k < L - 1 else "yhat" + (f"[{u}]" if layer.units > 1 else "")
                if k < L - 1:
                    rows.append(("backward", f"dL/d{hs}", self._dh_formula(k, u), self._value(self.dh[k][:, u])))
                if layer.activation == "relu":
                    formula = f"dL/d{hs} · relu'({zs})"
                    if self._single:
                        formula += f" = {_paren(fmt(self.dh[k][0, u]))} · {int(self.z[k][0, u] > 0)}"
                else:
                    formula = f"dL/d{hs}"
                rows.append(("backward", f"dL/d{zs}", formula, self._value(self.dz[k][:, u])))
            for wsym, W, src in self._incoming(k):
                if W is None:
                    continue
                name = f"layers.{k}.weight" if wsym.startswith("W") else f"skips.{wsym[1:]}.weight"
                for o in range(W.shape[0]):
                    for q in range(W.shape[1]):
                        zs = self._unit("z", k, o, layer.units)
                        hs = self._h(src, q)
                        formula = f"dL/d{zs} · {hs}"
                        if self._single:
                            formula += f" = {_paren(fmt(self.dz[k][0, o]))} · {_paren(fmt(self._h_value(src, q)[0]))}"
                        else:
                            formula = "sum over batch of " + formula
                        grad_rows.append(("gradient", f"dL/d{self._param(wsym, W.shape, o, q)}", formula,
                                     fmt(self.grads[name][o, q])))
            if layer.bias:
                for o in range(layer.units):
                    formula = ("" if self._single else "sum over batch of ") + f"dL/d{self._unit('z', k, o, layer.units)}"
                    grad_rows.append(("gradient", f"dL/d{self._param(f'b{k}', (layer.units,), o)}", formula,
                                 fmt(self.grads[f'layers.{k}.bias'][o])))
        order = {name: i for i, name in enumerate(self._symbols())}
        grad_rows.sort(key=lambda r: order[r[1][4:].split("[")[0]])
        return rows + grad_rows

    def _dh_formula(self, j: int, u: int) -> str:
        """dL/dh[j][u] = sum over consumers: dL/dz[k][o] · W[k][o, u] (dense), dz (identity skip)."""
        net, sym, num = self.net, [], []
        consumers = [(f"W{j + 1}", self.params[f"layers.{j + 1}.weight"], j + 1)]
        consumers += [(f"S{i}", None if s.identity else self.params[f"skips.{i}.weight"], s.dst)
                      for i, s in enumerate(net.skips) if s.src == j]
        for wsym, W, k in consumers:
            width = net.layers[k].units
            for o in range(width):
                zs = self._unit("z", k, o, width)
                if W is None:
                    if o == u:
                        sym.append(f"dL/d{zs}")
                        num.append(_paren(fmt(self.dz[k][0, o])))
                    continue
                sym.append(f"dL/d{zs} · {self._param(wsym, W.shape, o, u)}")
                num.append(f"{_paren(fmt(self.dz[k][0, o]))} · {_paren(fmt(W[o, u]))}")
        formula = " + ".join(sym)
        if self._single and len(num) <= 6:
            formula += " = " + " + ".join(num)
        return formula

    # ------------------------------------------------------------------ update
    def apply(self, lr: float = 1.0) -> dict:
        """One SGD step on the network, in place: p -= lr * dL/dp with this trace's gradients.

        Returns the new parameters (dict of copies) and adds the updates to ``str(self)``.
        """
        lr = V.check_float("lr", lr, positive=True)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            new = {name: (self.params[name] - lr * g).astype(self.net.dtype) for name, g in self.grads.items()}
        for name, value in new.items():
            if not np.isfinite(value).all():  # the trace's own values are finite: the step overflowed
                raise ValueError(f"the SGD update with lr={lr:g} made parameter {name!r} non-finite (beyond "
                                 f"{self.net.dtype.name}'s range); the network is unchanged: use a smaller lr")
        self.net.set_parameters(new)
        self._applied_lr, self._new_params = lr, new
        return {name: v.copy() for name, v in new.items()}

    def _symbols(self) -> dict:
        """Short symbol -> PyTorch name, in the network's parameter order."""
        out = {}
        for name in self.net.parameter_names:
            kind, index, what = name.split(".")
            out[("S" if kind == "skips" else "W" if what == "weight" else "b") + index] = name
        return out

    def _update_rows(self):
        rows = []
        symbols = {name: sym for sym, name in self._symbols().items()}
        for name, new in self.new_params.items():
            old, g, sym = self.params[name], self.grads[name], symbols[name]
            for index in np.ndindex(new.shape):
                s = sym + ("" if new.size == 1 else "[" + ",".join(map(str, index)) + "]")
                formula = (f"{s} - lr · dL/d{s} = {fmt(old[index])} - {fmt(self.applied_lr)} · "
                           f"{_paren(fmt(g[index]))}")
                rows.append(("update", s, formula, fmt(new[index])))
        return rows

    # ------------------------------------------------------------------ text
    @property
    def all_gradients_zero(self) -> bool:
        return not any(g.any() for g in self.grads.values())

    @property
    def table(self) -> list[tuple[str, str, str, str]]:
        """Every row of ``str(self)`` as (section, symbol, formula, value): "forward", "backward",
        "gradient" and, once ``apply`` ran, "update"."""
        return self.rows + (self._update_rows() if self.new_params is not None else [])

    def __str__(self) -> str:
        rows = self.table
        n = self.x.shape[0]
        head = (f"skipnet trace: loss={self.loss_name}, {n} sample{'s' if n > 1 else ''}, "
                f"dtype={self.net.dtype.name}")
        titles = {"forward": "Forward pass", "backward": "Backward pass (chain rule)",
                  "gradient": "Parameter gradients", "update": f"SGD update (lr = {fmt(self.applied_lr)})"}
        w_sym = max(len(r[1]) for r in rows)
        w_value = min(max(len(r[3]) for r in rows), 24)
        lines = [head, "symbols: " + ", ".join(f"{s} = {n}" for s, n in self._symbols().items())]
        section = None
        for sec, sym, formula, value in rows:
            if sec != section:
                section = sec
                lines += ["", titles[sec]]
            lines.append(f"  {sym:<{w_sym}} = {value:<{w_value}}  {formula}".rstrip())
        lines.append("")
        lines.append(f"loss = {fmt(self.loss)}")
        dead = {k: u for k, u in self.dead_units.items() if u}
        if dead:
            parts = [f"layer {k}: unit{'s' if len(u) > 1 else ''} {', '.join(map(str, u))}" for k, u in dead.items()]
            lines.append("dead ReLU units (z <= 0 for every sample, so no gradient flows through them): "
                         + "; ".join(parts))
        if self.all_gradients_zero:
            lines.append("every gradient is exactly 0: no SGD step can change the weights, so the loss "
                         f"stays {fmt(self.loss)}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Trace loss={fmt(self.loss)} yhat={fmt(self.yhat)}>"

    # ------------------------------------------------------------------ pictures
    def _title(self) -> str:
        n = self.x.shape[0]
        batch = f"{n} samples: values of sample 0, gradients batch means" if n > 1 else "1 sample"
        return f"skipnet trace: {self.loss_name} loss = {fmt(self.loss)} ({batch})"

    def svg(self) -> str:
        """The step as a computation graph in SVG (text): every node with its forward value and
        dL/d(node), every weight edge with its weight and gradient, dead ReLU units marked."""
        from . import _stepgraph

        nodes, edges = _stepgraph.step_graph(self)
        return _stepgraph.to_svg(nodes, edges, self._title())

    def draw(self, path) -> Path:
        """Write the step's computation graph to ``path``: ``.svg`` (plain SVG, no dependency) or
        ``.png`` (needs matplotlib, the ``plot`` extra). Returns the path written."""
        from . import _stepgraph
        from ._files import atomic_write

        suffix = Path(os.fspath(path)).suffix.lower()
        if suffix not in (".svg", ".png"):
            raise ValueError(f"path {path}: a drawing is .svg or .png, got {suffix or 'no extension'!r}")
        if suffix == ".svg":
            data = self.svg().encode("utf-8")
        else:
            nodes, edges = _stepgraph.step_graph(self)
            data = _stepgraph.to_png(nodes, edges, self._title())
        return atomic_write(path, data, "drawing")

    def _repr_html_(self) -> str:
        """The graph and the table (notebooks)."""
        rows = "".join(f"<tr><td>{escape(sym)}</td><td><code>{escape(value)}</code></td>"
                       f"<td><code>{escape(formula)}</code></td></tr>" for _, sym, formula, value in self.table)
        return (f"<div class='skipnet-trace'>{self.svg()}<details><summary>the hand computation "
                f"({len(self.table)} lines)</summary><table><tr><th>symbol</th><th>value</th><th>formula</th></tr>"
                f"{rows}</table></details></div>")
