"""A Network as a PyTorch module or an ONNX file (``Network.to_torch`` / ``Network.to_onnx``).

Both compute section 1 of docs/design.md exactly as ``Network.predict`` does: for each layer k,
``z[k] = h[k-1] @ W[k].T + b[k]`` plus every skip into k (``h[j] @ S.T`` learned, ``h[j]`` identity), then
ReLU or identity. torch, onnx and onnxruntime are optional and imported only here, when asked for:
``pip install torch`` and ``pip install 'skipnet[onnx]'``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from ._files import atomic_write, check_output_path

__all__ = ["to_onnx", "to_torch"]

# ONNX opset and IR version written: read by onnxruntime >= 1.17 (the extra's minimum) and later
ONNX_OPSET = 17
ONNX_IR_VERSION = 8


def _require(module: str, purpose: str, install: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs the {module!r} package, which is not installed: {install}") from exc


def to_torch(net) -> Any:
    """A ``torch.nn.Module`` computing ``net.predict``, in the network's dtype (float32 or float64).

    Its ``state_dict`` keys are ``net.parameters()``'s names (``layers.k.weight``, ``layers.k.bias``,
    ``skips.i.weight``), holding copies of the values: ``layers`` is an ``nn.ModuleList`` of
    ``nn.Linear``, ``skips`` one of ``nn.Linear`` (learned, no bias) or ``nn.Identity``. ``forward(x)``
    takes x (n, n_inputs) and returns (n, n_outputs). ImportError when torch is not installed."""
    torch = _require("torch", "Network.to_torch", "pip install torch")
    nn = torch.nn

    class SkipNetModule(nn.Module):
        """A skipnet Network as a PyTorch module (``state_dict`` names as ``Network.parameters()``)."""

        def __init__(self):
            super().__init__()
            widths = [net.n_inputs] + [layer.units for layer in net.layers]
            self.layers = nn.ModuleList(nn.Linear(widths[k], layer.units, bias=layer.bias)
                                        for k, layer in enumerate(net.layers))
            self.skips = nn.ModuleList(nn.Identity() if s.identity else
                                       nn.Linear(widths[s.src + 1], widths[s.dst + 1], bias=False)
                                       for s in net.skips)
            self.relu = [layer.activation == "relu" for layer in net.layers]
            self.incoming = [[(i, s.src) for i, s in enumerate(net.skips) if s.dst == k]
                             for k in range(len(net.layers))]

        def forward(self, x):
            hidden = []  # h[0], h[1], ...; h[-1] (the input) is x
            h = x
            for k, layer in enumerate(self.layers):
                z = layer(h)
                for i, src in self.incoming[k]:
                    z = z + self.skips[i](x if src < 0 else hidden[src])
                h = torch.relu(z) if self.relu[k] else z
                hidden.append(h)
            return h

    dtype = torch.float64 if net.dtype.name == "float64" else torch.float32
    module = SkipNetModule().to(dtype)
    state = {name: torch.from_numpy(value) for name, value in net.parameters().items()}
    module.load_state_dict(state, strict=True)
    return module.eval()


def to_onnx(net, path: str | os.PathLike) -> Path:
    """Write ``net`` as an ONNX model (opset 17) to ``path``, atomically; return the path.

    One input ``"input"`` (batch, n_inputs) and one output ``"output"`` (batch, n_outputs) of the
    network's dtype (float32 or float64), the batch size free; initializers under ``net.parameters()``'s
    names. Each layer is a ``Gemm`` (``transB=1``: PyTorch's weight layout as stored), each learned skip
    a ``Gemm`` added to the destination's pre-activation, then ``Relu`` on hidden layers. The model
    passes ``onnx.checker``. ImportError when onnx is not installed."""
    onnx = _require("onnx", "Network.to_onnx", "pip install 'skipnet[onnx]'")
    from onnx import TensorProto, helper, numpy_helper

    check_output_path(path, "ONNX file")  # refuse a bad destination before building anything
    elem = TensorProto.DOUBLE if net.dtype.name == "float64" else TensorProto.FLOAT
    params = net.parameters()
    initializers = [numpy_helper.from_array(value, name) for name, value in params.items()]
    nodes, outputs = [], {-1: "input"}
    for k, layer in enumerate(net.layers):
        inputs = [outputs[k - 1], f"layers.{k}.weight"] + ([f"layers.{k}.bias"] if layer.bias else [])
        z = f"z{k}"
        nodes.append(helper.make_node("Gemm", inputs, [z], name=f"layers.{k}", transB=1))
        for i, skip in enumerate(net.skips):
            if skip.dst != k:
                continue
            source = outputs[skip.src]
            if not skip.identity:
                nodes.append(helper.make_node("Gemm", [source, f"skips.{i}.weight"], [f"skip{i}"],
                                              name=f"skips.{i}", transB=1))
                source = f"skip{i}"
            nodes.append(helper.make_node("Add", [z, source], [f"{z}+skip{i}"], name=f"add.skips.{i}"))
            z = f"{z}+skip{i}"
        last = k == len(net.layers) - 1
        out = "output" if last else f"h{k}"
        if layer.activation == "relu":
            nodes.append(helper.make_node("Relu", [z], [out], name=f"relu.{k}"))
        else:
            nodes.append(helper.make_node("Identity", [z], [out], name=f"identity.{k}"))
        outputs[k] = out
    graph = helper.make_graph(
        nodes, "skipnet", [helper.make_tensor_value_info("input", elem, ["batch", net.n_inputs])],
        [helper.make_tensor_value_info("output", elem, ["batch", net.n_outputs])], initializers)
    model = helper.make_model(graph, producer_name="skipnet",
                              opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return atomic_write(path, model.SerializeToString(), "ONNX file")
