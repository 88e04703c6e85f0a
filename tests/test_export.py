"""Network.to_torch and Network.to_onnx compute predict; skipped where torch / onnx / onnxruntime are missing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import skipnet as sn

ARCHITECTURES = {
    "first-to-output": lambda dtype: sn.Network.mlp(3, (8, 6), 2, skip="first-to-output", dtype=dtype, seed=0),
    "residual": lambda dtype: sn.Network.mlp(4, (4, 4, 4, 4), 1, skip="residual", dtype=dtype, seed=1),
    "exercise": lambda dtype: sn.Network.exercise(dtype=dtype),
    "input skip": lambda dtype: sn.Network(2, [sn.Dense(5), sn.Dense(3, bias=False), sn.Dense(1, "identity")],
                                           [sn.Skip(-1, 2), sn.Skip(-1, 1)], dtype=dtype, seed=2),
}
TOLERANCE = {"float32": 2e-6, "float64": 1e-13}


def _inputs(net, n=17):
    return np.random.default_rng(5).normal(size=(n, net.n_inputs)).astype(net.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_to_torch_matches_predict(kind, dtype):
    torch = pytest.importorskip("torch")
    net = ARCHITECTURES[kind](dtype)
    module = net.to_torch()
    state = module.state_dict()
    assert list(state) == list(net.parameters())
    for name, value in net.parameters().items():
        np.testing.assert_array_equal(state[name].numpy(), value)
    X = _inputs(net)
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    assert out.dtype == net.dtype and out.shape == (X.shape[0], net.n_outputs)
    np.testing.assert_allclose(out, net.predict(X), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_to_torch_state_dict_round_trips_through_load_weights(tmp_path):
    pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    net = ARCHITECTURES["residual"]("float64")
    module = net.to_torch()
    path = tmp_path / "w.safetensors"
    safetensors_torch.save_file(module.state_dict(), str(path))
    other = ARCHITECTURES["residual"]("float64")
    other.set_parameters({name: 0 * value for name, value in other.parameters().items()})
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(_inputs(net)), net.predict(_inputs(net)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_to_onnx_runs_in_onnxruntime_as_predict(kind, dtype, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net = ARCHITECTURES[kind](dtype)
    path = net.to_onnx(tmp_path / "model.onnx")
    model = onnx.load(str(path))
    assert {init.name for init in model.graph.initializer} == set(net.parameters())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 9):
        X = _inputs(net, n)
        (out,) = session.run(["output"], {"input": X})
        assert out.dtype == net.dtype and out.shape == (n, net.n_outputs)
        np.testing.assert_allclose(out, net.predict(X), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_to_onnx_refuses_a_folder_before_writing(tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="ONNX file"):
        sn.Network.exercise().to_onnx(tmp_path)


@pytest.mark.parametrize("method, package", [("to_torch", "torch"), ("to_onnx", "onnx")])
def test_missing_package_is_a_clear_import_error(method, package, tmp_path, monkeypatch):
    if importlib.util.find_spec(package) is not None:
        import sys
        monkeypatch.setitem(sys.modules, package, None)  # importing it now raises ImportError
    net = sn.Network.exercise()
    args = (tmp_path / "m.onnx",) if method == "to_onnx" else ()
    with pytest.raises(ImportError, match=f"needs the '{package}' package.*pip install"):
        getattr(net, method)(*args)
    assert not (tmp_path / "m.onnx").exists()
