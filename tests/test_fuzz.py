"""Property-based tests of the public API: random architectures, shapes and values, adversarial ones
included. Wherever input is valid the cython and numpy backends agree; wherever it is not, the call
raises ValueError or TypeError (never another exception, a crash or a silent result).

Each test decides validity with its own small oracle, written from the documented contract rather than
from skipnet's code, and checks the library against it in both directions.

Hypothesis draws a seed and one or two knobs per example (the knobs it can shrink); NumPy builds the
architecture and fills the arrays from the seed. Drawing every element through hypothesis costs about
half a millisecond per value on this kind of machine, which would leave room for only a few hundred
examples; this way the default profile runs over 10,000 in well under a minute. Example counts scale
with the hypothesis profile (SKIPNET_HYPOTHESIS_PROFILE, see conftest).
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import os
import tempfile
import warnings

import numpy as np
import pytest
from _helpers import RTOL, assert_close, counted, examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import skipnet as sn
from skipnet import _kernels
from skipnet.cli import main as cli_main

try:  # optional: DataFrames are one of the containers users pass
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

LOSSES = ("l1", "mse", "bce", "cross_entropy")
CLEAN = (ValueError, TypeError)
MAX_DIM = 2**31 - 1
SEEDS = st.integers(0, 2**32 - 1)


def fuzz(per_hundred: int, **knobs):
    """A hypothesis test over ``seed`` and ``knobs``, run examples(per_hundred) times and counted."""

    def wrap(test):
        return settings(max_examples=examples(per_hundred))(given(seed=SEEDS, **knobs)(counted(test)))

    return wrap


# ------------------------------------------------------------------ generators (from a NumPy rng)
def _architecture(rng, max_layers=5, max_width=6):
    """(n_inputs, layers, skips): any valid graph, with skips from the input, duplicate skips and
    identity skips wherever widths match."""
    n_inputs = int(rng.integers(1, 6))
    n_layers = int(rng.integers(1, max_layers + 1))
    widths = rng.integers(1, max_width + 1, n_layers).tolist()
    layers = [sn.Dense(w, "relu" if k < n_layers - 1 else "identity", bool(rng.integers(2)))
              for k, w in enumerate(widths)]
    pairs = [(src, dst) for dst in range(1, n_layers) for src in range(-1, dst - 1)]
    skips = []
    for i in rng.integers(0, len(pairs), rng.integers(0, 5)) if pairs else []:
        src, dst = pairs[i]
        same_width = (n_inputs if src < 0 else widths[src]) == widths[dst]
        skips.append(sn.Skip(src, dst, identity=same_width and bool(rng.integers(2))))
    return n_inputs, layers, skips


def _values(rng, shape, kind: str, scale: float = 1.0) -> np.ndarray:
    """float64 values. "grid": multiples of scale/4 up to 2 scale in magnitude; with scale a power of 2,
    every sum and product of these small networks stays exact in float64 (under 45 significant bits),
    so the backends must agree even at ReLU ties (z == 0) and L1 ties (yhat == y) whatever the order
    of summation. "free": both signs over seven decades below ``scale``, with subnormals mixed in.
    Either kind has a random fraction of (signed) zeros: dead units and exact ties."""
    if kind == "grid":
        v = rng.integers(-8, 9, shape) / 4 * scale
    else:
        v = rng.uniform(-scale, scale, shape) * 10.0 ** -rng.integers(0, 7, shape)
        special = rng.random(shape) < 0.05
        v[special] = rng.choice([5e-324, -5e-324, 1e-310], special.sum())
    v[rng.random(shape) < rng.choice([0.0, 0.25, 0.9])] = rng.choice([0.0, -0.0])
    return v


def _targets(rng, loss, n, n_outputs, exact):
    if loss == "cross_entropy":
        return rng.integers(0, n_outputs, n)
    if loss == "bce":
        y = rng.integers(0, 2, (n, n_outputs)).astype(float)
        return y if exact else np.where(rng.random(y.shape) < 0.5, y, rng.random(y.shape))
    return _values(rng, (n, n_outputs), "grid" if exact else "free", 1.0 if exact else 100.0)


def _network(arch, dtype="float64", backend="cython", params=None):
    net = sn.Network(*arch, dtype=dtype, seed=0, backend=backend)
    if params is not None:
        net.internals.params[...] = params
    return net


@contextlib.contextmanager
def _blas(always: bool):
    """Send every product through BLAS gemm (always) or leave the size threshold as it is."""
    old = _kernels.get_blas_threshold()
    if always:
        _kernels.set_blas_threshold(0)
    try:
        yield
    finally:
        _kernels.set_blas_threshold(old)


# ------------------------------------------------------------------ tolerances that know the terms
def _twin(net):
    """A float64 numpy-backend copy of ``net`` (its float32 values are exact in float64)."""
    return _network((net.n_inputs, net.layers, net.skips), backend="numpy", params=net.internals.params)


@contextlib.contextmanager
def _absolute(twin):
    """``twin`` with |params| for the duration: every term summed in a pass becomes non-negative."""
    params = twin.internals.params.copy()
    twin.internals.params[...] = np.abs(params)
    try:
        yield twin
    finally:
        twin.internals.params[...] = params


def _bounds(twin, X):
    """z of every layer on (twin, X), and the same pass with |params| and |X|: a bound on the magnitude
    of the terms summed into each z."""
    X = np.asarray(X, np.float64)
    z = twin.internals.detailed_pass(X).z
    with _absolute(twin):
        return z, twin.internals.detailed_pass(np.abs(X)).z


def _near_tie(twin, X, y, loss, rtol) -> bool:
    """A ReLU input or an L1 residual so close to 0, against the size of its terms, that rounding in
    another summation order may flip its sign (and with it a sub-gradient)."""
    z, size = _bounds(twin, X)
    if any(((np.abs(a) <= rtol * b) & (b > 0)).any() for a, b in zip(z[:-1], size[:-1])):
        return True
    if loss != "l1":
        return False
    y = np.asarray(y, np.float64)
    scale = size[-1] + np.abs(y)
    return bool(((np.abs(z[-1] - y) <= rtol * scale) & (scale > 0)).any())


def _gradient_bounds(twin, X, y, loss):
    """Per parameter, a bound on the magnitude of the terms summed into its gradient: backpropagation
    through |params| and |X| of a bound on |dL/dyhat| (the rounding error of a gradient scales with
    these terms, not with the gradient, which may cancel: softmax - onehot, sigmoid - y, yhat - y)."""
    X, m = np.abs(np.asarray(X, np.float64)), twin.n_outputs
    with _absolute(twin):
        # l1 against targets below every output: dL/dyhat = 1 / (n m) everywhere
        _, grads = twin.gradients(X, np.full((X.shape[0], m), -1.0), "l1")
        top = twin.forward(X).max()
    factor = {"l1": 1.0, "bce": 2.0, "cross_entropy": 2.0 * m,
              "mse": 2.0 * (top + np.abs(np.asarray(y, np.float64)).max())}[loss]
    return {name: factor * g for name, g in grads.items()}


def _agree(fast, ref, X, y, loss, dtype, twin=None):
    lf, gf = fast.gradients(X, y, loss)
    lr, gr = ref.gradients(X, y, loss)
    assert_close(lf, lr, dtype)
    assert gf.keys() == gr.keys()
    bounds = _gradient_bounds(twin or _twin(fast), X.astype(dtype), y, loss)
    for name in gf:
        assert_close(gf[name], gr[name], dtype, scale=bounds[name])


# ------------------------------------------------------------------ valid input: the backends agree
@fuzz(1500, exact=st.booleans(), loss=st.sampled_from(LOSSES))
def test_backends_agree_on_forward_and_gradients(seed, exact, loss):
    rng = np.random.default_rng(seed)
    arch = _architecture(rng)
    assume(loss != "cross_entropy" or arch[1][-1].units >= 2)
    dtype = rng.choice(["float32", "float64"])
    fast = _network(arch, dtype)
    fast.internals.params[...] = _values(rng, fast.n_parameters, "grid" if exact else "free", 0.5 if exact else 2.0)
    ref, twin = _network(arch, dtype, "numpy", fast.internals.params), _twin(fast)
    n = int(rng.integers(1, 7))
    X = _values(rng, (n, fast.n_inputs), "grid" if exact else "free", 1.0 if exact else 100.0)
    y = _targets(rng, loss, n, fast.n_outputs, exact)
    with _blas(bool(rng.integers(2))):
        Xd = X.astype(dtype)
        _, size = _bounds(twin, Xd)
        assert_close(fast.forward(X), ref.forward(X), dtype, scale=size[-1].max())
        if not (exact and dtype == "float64"):  # exact arithmetic has no rounding to flip a tie
            assume(not _near_tie(twin, Xd, y.astype(dtype), loss, 100 * RTOL[dtype]))
        _agree(fast, ref, X, y, loss, dtype, twin)


OPTIMIZERS = [{"optimizer": "sgd"}, {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
              {"optimizer": "sgd", "momentum": 0.5, "dampening": 0.5, "weight_decay": 0.01},
              {"optimizer": "adam"}, {"optimizer": "adam", "weight_decay": 0.1}]


@fuzz(300, opt=st.sampled_from(OPTIMIZERS), loss=st.sampled_from(LOSSES))
def test_backends_follow_the_same_training_trajectory(seed, opt, loss):
    rng = np.random.default_rng(seed)
    arch = _architecture(rng, max_layers=4)
    assume(loss != "cross_entropy" or arch[1][-1].units >= 2)
    fast, ref = (_network(arch, "float64", b) for b in ("cython", "numpy"))
    n, batch_size, epochs = (int(v) for v in rng.integers(1, [13, 16, 4]))
    X = _values(rng, (n, fast.n_inputs), "free", 10.0)
    y = _targets(rng, loss, n, fast.n_outputs, exact=False)
    assume(not _near_tie(_twin(fast), X, y, loss, 1e-6))
    hists = [sn.Trainer(net, loss=loss, lr=0.01, batch_size=batch_size, epochs=epochs,
                        shuffle=bool(seed % 2), seed=1, **opt).fit(X, y) for net in (fast, ref)]
    reasons = [h.stopped_reason for h in hists]
    if reasons[0] != reasons[1]:
        # The zero-gradient stop tests for an exact 0. A gradient that cancels exactly in one summation
        # order (samples pulling opposite ways through identical activations) may leave 1e-19 in the
        # other: accept that, and only that, by checking the gradient at the stopped weights.
        stopped = [r is not None and r.startswith("zero gradient") for r in reasons]
        assert any(stopped), reasons
        net = (fast, ref)[stopped.index(True)]
        other = _network(arch, "float64", "numpy" if net is fast else "cython", net.internals.params)
        bounds = _gradient_bounds(_twin(net), X, y, loss)
        for name, g in other.gradients(X, y, loss)[1].items():
            assert (np.abs(g) <= 1e-12 * bounds[name]).all(), (name, g)
        return
    assert hists[0].steps_run == hists[1].steps_run
    if hists[0].stopped_reason is None:
        assert hists[0].steps_run == -(-n // min(batch_size, n)) * epochs
    assert_close(hists[0].step_loss, hists[1].step_loss, "float64",
                 scale=np.abs(hists[1].step_loss).max(initial=0))
    assert_close(fast.internals.params, ref.internals.params, "float64", scale=1e3 * np.abs(ref.internals.params).max())


# ------------------------------------------------------------------ arbitrary arrays: oracle of validity
ARRAY_DTYPES = ["bool", "int8", "uint8", "int64", "uint64", "float16", "float32", "float64", "complex128",
                "object", "U3", "M8[D]"]
LAYOUTS = ["plain", "fortran", "strided", "byteswap", "list", "frame", "readonly", "unaligned"]
_OBJECTS = np.empty(12, object)
_OBJECTS[:] = [1.5, -2, True, 0, np.float32(2.5), np.int64(-1), None, "a", "1.5", 1j, float("nan"), [1]]
# NaN, infinities, signed zero, the smallest subnormal, values beyond float32's range (and float16's)
FLOAT_SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 5e-324, 1e300, -1e39, 3.5e38, 7e4]


def _any_array(rng, dtype, good_shapes):
    """An array of ``dtype``, often of a good shape, else of 0-3 dimensions of 0-4 each; with NaN,
    infinite and extreme values mixed in at a random rate (often none). Objects are often all real."""
    dtype = np.dtype(dtype)
    if rng.random() < 0.6:
        shape = good_shapes[rng.integers(len(good_shapes))]
    else:
        shape = tuple(rng.integers(0, 5, rng.integers(0, 4)).tolist())
    special = rng.choice([0.0, 0.0, 0.1, 1.0])
    if dtype.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = (info.min, info.max) if special else (max(info.min, -3), 3)
        return np.asarray(rng.integers(lo, hi, shape, dtype=dtype, endpoint=True))
    if dtype.kind == "O":
        items = _OBJECTS[:6] if rng.random() < 0.5 else _OBJECTS
        return np.asarray(items[rng.integers(0, len(items), shape)], object)
    if dtype.kind == "U":
        return np.asarray(rng.choice(["1", "ab", "", "1.5", "nan"], shape)).astype(dtype)
    if dtype.kind == "M":
        return np.asarray(rng.integers(-1000, 1000, shape)).astype(dtype)
    v = np.array(rng.uniform(-4, 4, shape) * 10.0 ** rng.integers(-3, 4, shape))
    mask = np.array(rng.random(shape) < special)
    v[mask] = rng.choice(FLOAT_SPECIALS, mask.sum())
    if dtype.kind == "c":
        v = v + 1j * (rng.random(shape) < 0.5)
    with np.errstate(over="ignore"):
        return np.asarray(v, dtype)


def _layout(arr, layout):
    """What a user passes: the array in another memory layout or container, same values and shape."""
    if layout == "fortran" and arr.ndim >= 2:
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        return np.repeat(arr, 2, axis=-1)[..., ::2]
    if layout == "byteswap" and arr.dtype.kind in "iuf" and arr.dtype.itemsize > 1:
        return arr.astype(arr.dtype.newbyteorder())
    if layout == "list" and arr.dtype.kind in "biuf" and arr.size:
        return arr.tolist()
    if layout == "frame" and arr.ndim == 2 and arr.dtype.kind in "biufO" and pd is not None:
        return pd.DataFrame(arr)
    if layout == "readonly":
        arr = arr.copy()
        arr.flags.writeable = False
    if layout == "unaligned" and arr.dtype.kind in "biufc" and arr.dtype.itemsize > 1:
        return _unaligned(arr)
    return arr


def _unaligned(arr):
    """A C-contiguous copy of ``arr`` whose buffer starts one byte past an aligned address (as a buffer
    unpickled at an odd offset: dask does this)."""
    out = np.empty(arr.nbytes + 1, np.uint8)[1:].view(arr.dtype).reshape(arr.shape)
    out[...] = arr
    assert not out.flags.aligned or not out.size
    return out


def _real_values(arr) -> np.ndarray | None:
    """The float64 values of an array of real numbers (bool, int, float, or objects that all are), else None."""
    if arr.dtype.kind == "O":
        if not all(isinstance(v, numbers.Real) for v in arr.flat):
            return None
        return arr.astype(np.float64)
    return arr.astype(np.float64) if arr.dtype.kind in "biuf" else None


def _fits(values, dtype) -> bool:
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(values.astype(dtype)).all())


@fuzz(2000, kind=st.sampled_from(ARRAY_DTYPES), layout=st.sampled_from(LAYOUTS))
def test_forward_accepts_exactly_the_valid_features(seed, kind, layout):
    rng = np.random.default_rng(seed)
    arch, dtype = _architecture(rng, max_layers=3), rng.choice(["float32", "float64"])
    fast, ref = (_network(arch, dtype, b) for b in ("cython", "numpy"))
    n_in = fast.n_inputs
    arr = _any_array(rng, kind, [(0, n_in), (1, n_in), (3, n_in), (2, n_in + 1), (n_in,)])
    X = _layout(arr, layout)
    values = _real_values(arr)
    valid = values is not None and arr.ndim == 2 and arr.shape[1] == n_in and _fits(values, dtype)
    if not valid:
        for net in (fast, ref):
            with pytest.raises(CLEAN):
                net.forward(X)
        return
    before = np.array(arr, copy=True)
    out = fast.forward(X)
    assert out.shape == (arr.shape[0], fast.n_outputs) and out.dtype == dtype and out.flags.c_contiguous
    expected = ref.forward(values.astype(dtype))
    if np.isfinite(expected).all():
        _, size = _bounds(_twin(ref), values.astype(dtype))
        assert_close(out, expected, dtype, scale=size[-1].max(initial=0))
    np.testing.assert_array_equal(np.asarray(arr), before)  # input never modified


def _target_values_valid(arr, loss, n, n_outputs, dtype) -> bool:
    values = _real_values(arr)
    if values is None:
        return False
    if loss == "cross_entropy":
        if n_outputs < 2 or arr.shape not in ((n,), (n, 1)) or not np.isfinite(values).all():
            return False
        return bool((values == np.round(values)).all() and ((values >= 0) & (values < n_outputs)).all())
    if arr.shape != (n, n_outputs) and not (n_outputs == 1 and arr.shape == (n,)):
        return False
    if not _fits(values, dtype):
        return False
    return loss != "bce" or bool(((values >= 0) & (values <= 1)).all())


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # mse of targets near 1e300
@fuzz(2000, loss=st.sampled_from(LOSSES), kind=st.sampled_from(["labels", *ARRAY_DTYPES]))
def test_gradients_accept_exactly_the_valid_targets(seed, loss, kind):
    rng = np.random.default_rng(seed)
    arch, dtype = _architecture(rng, max_layers=3), rng.choice(["float32", "float64"])
    fast, ref = (_network(arch, dtype, b) for b in ("cython", "numpy"))
    n, m = int(rng.integers(1, 5)), fast.n_outputs
    X = _values(rng, (n, fast.n_inputs), "grid")
    if kind == "labels":  # integer labels, some out of range
        arr = rng.integers(-1, max(m, 2) + 1, [(n,), (n, m)][rng.integers(2)])
    else:
        arr = _any_array(rng, kind, [(n,), (n, 1), (n, m), (n + 1, m), (n, m + 1)])
    y = _layout(arr, rng.choice(LAYOUTS))
    if not _target_values_valid(arr, loss, n, m, dtype):
        for net in (fast, ref):
            with pytest.raises(CLEAN):
                net.gradients(X, y, loss)
        return
    loss_fast, grads = fast.gradients(X, y, loss)
    loss_ref, _ = ref.gradients(X, y, loss)
    assert set(grads) == set(fast.parameter_names)
    if not np.isfinite([loss_fast, loss_ref]).all():  # e.g. mse of targets near 1e300: overflow, not an error
        return
    twin = _twin(fast)
    if not _near_tie(twin, X.astype(dtype), _real_values(arr).astype(dtype), loss, 100 * RTOL[dtype]):
        _agree(fast, ref, X, y, loss, dtype, twin)


@fuzz(500, kind=st.sampled_from(ARRAY_DTYPES), loss=st.sampled_from(LOSSES))
def test_diagnostics_accept_what_gradients_accept(seed, kind, loss):
    rng = np.random.default_rng(seed)
    net = _network(_architecture(rng, max_layers=4), rng.choice(["float32", "float64"]))
    n = int(rng.integers(1, 6))
    X = _values(rng, (n, net.n_inputs), "grid") if rng.random() < 0.5 else _layout(
        _any_array(rng, kind, [(n, net.n_inputs)]), rng.choice(LAYOUTS))
    y = _targets(rng, loss, n, max(net.n_outputs, 2), exact=True)
    try:
        expected_loss, grads = net.gradients(X, y, loss)
    except CLEAN:
        with pytest.raises(CLEAN):
            sn.diagnostics.gradient_flow(net, X, y, loss)
        return
    flow = sn.diagnostics.gradient_flow(net, X, y, loss)
    assert flow.loss == expected_loss
    flat = np.concatenate([g.ravel() for g in grads.values()]).astype(np.float64)
    assert flow.zero == (not flat.any()) and flow.total_norm == pytest.approx(math.hypot(*flat), rel=1e-12)
    dead = sn.diagnostics.dead_units(net, X)
    z = net.internals.detailed_pass(sn._validation.as_features("X", X, net.n_inputs, net.dtype)).z
    for k, report in dead.layers.items():
        assert report.units == np.flatnonzero((z[k] <= 0).all(axis=0)).tolist()


# ------------------------------------------------------------------ architectures and options
# what a user might pass where a number or flag is expected (integers are small or beyond every limit,
# so that a valid one never asks for gigabytes or hours)
JUNK = [None, True, False, 0, -1, 3, 2**31, 10**400, -(10**400), 0.5, -0.0, np.nan, np.inf, -np.inf, 1e308,
        "", "1", "relu", np.float32(0.5), np.int64(3), np.bool_(True), 1 + 2j, [1], b"1"]


def _junk(rng):
    return JUNK[rng.integers(len(JUNK))]


def _int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _real(v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    try:
        return bool(np.isfinite(float(v)))
    except OverflowError:
        return False


def _dense_args(rng):
    units = int(rng.integers(1, 5)) if rng.random() < 0.8 else _junk(rng)
    activation = rng.choice(["relu", "identity"]) if rng.random() < 0.9 else rng.choice(["tanh", "", "RELU"])
    bias = bool(rng.integers(2)) if rng.random() < 0.9 else _junk(rng)
    if units == 1 and rng.random() < 0.3:
        activation = "identity"
    return units, str(activation), bias


def _dense_valid(units, activation, bias) -> bool:
    return (_int(units) and 1 <= units <= MAX_DIM and activation in ("relu", "identity")
            and isinstance(bias, (bool, np.bool_)))


def _skip_valid(src, dst, identity) -> bool:
    return (_int(src) and _int(dst) and src >= -1 and dst >= 0 and src <= dst - 2
            and isinstance(identity, (bool, np.bool_)))


@fuzz(2000)
def test_network_builds_exactly_the_valid_architectures(seed):
    rng = np.random.default_rng(seed)
    layers = []
    for args in (_dense_args(rng) for _ in range(rng.integers(0, 5))):
        if _dense_valid(*args):
            layers.append(sn.Dense(*args))
        else:
            with pytest.raises(CLEAN):
                sn.Dense(*args)
    if layers and rng.random() < 0.7:  # most often a proper output layer
        layers[-1] = sn.Dense(layers[-1].units, "identity", layers[-1].bias)
    skips = []
    for _ in range(rng.integers(0, 4)):
        args = [int(rng.integers(-2, 5)) if rng.random() < 0.9 else _junk(rng),
                int(rng.integers(-1, 6)) if rng.random() < 0.9 else _junk(rng),
                bool(rng.integers(2)) if rng.random() < 0.9 else _junk(rng)]
        if _skip_valid(*args):
            skips.append(sn.Skip(*args))
        else:
            with pytest.raises(CLEAN):
                sn.Skip(*args)
    n_inputs = int(rng.integers(1, 5)) if rng.random() < 0.9 else _junk(rng)
    valid_inputs = _int(n_inputs) and 1 <= n_inputs <= MAX_DIM
    width = [n_inputs] + [layer.units for layer in layers] if valid_inputs else None
    valid = (valid_inputs and bool(layers) and layers[-1].activation == "identity"
             and all(s.dst < len(layers) and (not s.identity or width[s.src + 1] == width[s.dst + 1])
                     for s in skips))
    if not valid:
        with pytest.raises(CLEAN):
            sn.Network(n_inputs, layers, skips)
        return
    net = sn.Network(n_inputs, layers, skips, seed=0)
    expected = sum(layer.units * (width[k] + 1 if layer.bias else width[k]) for k, layer in enumerate(layers))
    expected += sum(layers[s.dst].units * width[s.src + 1] for s in skips if not s.identity)
    assert net.n_parameters == expected
    X = _values(rng, (2, n_inputs), "free", 100.0)
    ref = _network((n_inputs, layers, skips), backend="numpy", params=net.internals.params)
    assert_close(net.forward(X), ref.forward(X), "float64", scale=1e3)


@fuzz(800, skip=st.sampled_from([None, "first-to-output", "residual", "dense", ""]))
def test_mlp_builds_exactly_the_valid_shapes(seed, skip):
    rng = np.random.default_rng(seed)
    hidden = rng.integers(-1, 7, rng.integers(0, 6)).tolist()
    if rng.random() < 0.3:
        hidden = [min(h, 2) for h in hidden] if rng.random() < 0.5 else _junk(rng)
    n_outputs = int(rng.integers(1, 4)) if rng.random() < 0.9 else _junk(rng)
    hidden_list = [hidden] if _int(hidden) else hidden
    valid = (isinstance(hidden_list, list) and all(_int(h) and 1 <= h <= MAX_DIM for h in hidden_list)
             and _int(n_outputs) and 1 <= n_outputs <= MAX_DIM and skip in (None, "first-to-output", "residual"))
    if valid and skip is not None:
        valid = len(hidden_list) >= 2
        if skip == "residual":
            valid = valid and all(hidden_list[k - 2] == hidden_list[k] for k in range(3, len(hidden_list), 2))
    if not valid:
        with pytest.raises(CLEAN):
            sn.Network.mlp(2, hidden, n_outputs, skip=skip)
        return
    net = sn.Network.mlp(2, hidden, n_outputs, skip=skip, seed=0)
    assert [layer.units for layer in net.layers] == [*hidden_list, n_outputs]
    assert net.forward(np.ones((2, 2))).shape == (2, n_outputs)


# option -> (a valid value from rng, is this value valid)
OPTIONS = {
    "lr": (lambda rng: float(10 ** rng.uniform(-4, 0)), lambda v: _real(v) and v > 0),
    "batch_size": (lambda rng: int(rng.integers(1, 13)), lambda v: _int(v) and v >= 1),
    "epochs": (lambda rng: int(rng.integers(0, 3)), lambda v: _int(v) and v >= 0),
    "shuffle": (lambda rng: bool(rng.integers(2)), lambda v: isinstance(v, (bool, np.bool_))),
    "momentum": (lambda rng: float(rng.uniform(0, 1)), lambda v: _real(v) and v >= 0),
    "weight_decay": (lambda rng: float(rng.uniform(0, 1)), lambda v: _real(v) and v >= 0),
    "divergence_factor": (lambda rng: None if rng.random() < 0.3 else float(10 ** rng.uniform(0.2, 9)),
                          lambda v: v is None or (_real(v) and v > 1)),
    "seed": (lambda rng: None if rng.random() < 0.3 else int(rng.integers(0, 2**40)),
             lambda v: v is None or (_int(v) and v >= 0)),
    "eps": (lambda rng: float(10 ** rng.uniform(-10, -3)), lambda v: _real(v) and v > 0),
}


@fuzz(1000, optimizer=st.sampled_from(["sgd", "adam"]), loss=st.sampled_from(["l1", "mse", "bce"]))
def test_trainer_accepts_exactly_the_valid_options(seed, optimizer, loss):
    rng = np.random.default_rng(seed)
    names = ["lr", "batch_size", "epochs", "shuffle", "weight_decay", "divergence_factor", "seed",
             "momentum" if optimizer == "sgd" else "eps"]
    kwargs = {}
    for name in names:
        value = OPTIONS[name][0](rng) if rng.random() < 0.85 else _junk(rng)
        if name == "epochs" and _int(value) and value > 2:  # a valid epoch count stays small
            value = 2
        kwargs[name] = value
    valid = all(OPTIONS[name][1](value) for name, value in kwargs.items())
    net = sn.Network.mlp(2, (3,), seed=0)
    if not valid:
        with pytest.raises(CLEAN):
            sn.Trainer(net, loss=loss, optimizer=optimizer, **kwargs)
        return
    n = int(rng.integers(1, 11))
    X, y = _values(rng, (n, 2), "free", 100.0), _targets(rng, loss, n, 1, exact=False)
    hist = sn.Trainer(net, loss=loss, optimizer=optimizer, **kwargs).fit(X, y)
    assert len(hist.step_loss) == len(hist.lr) == hist.steps_run
    assert np.isfinite(net.internals.params).all() and np.isfinite(hist.step_loss).all()
    assert hist.epochs_run <= kwargs["epochs"]
    assert hist.stopped_reason is None or isinstance(hist.stopped_reason, str)


@fuzz(500, optimizer=st.sampled_from(["sgd", "adam"]), loss=st.sampled_from(["l1", "mse", "bce"]))
def test_trainer_settings_assigned_later_are_checked_as_in_the_constructor(seed, optimizer, loss):
    """The same options oracle, the values assigned to a built Trainer (and its optimizer) instead: a
    junk value raises ValueError/TypeError and changes nothing; valid ones give the fit that a Trainer
    built with them gives, bit for bit."""
    rng = np.random.default_rng(seed)
    names = ["lr", "batch_size", "epochs", "shuffle", "weight_decay", "divergence_factor", "seed",
             "momentum" if optimizer == "sgd" else "eps"]
    n = int(rng.integers(1, 11))
    X, y = _values(rng, (n, 2), "free", 100.0), _targets(rng, loss, n, 1, exact=False)
    trainer = sn.Trainer(sn.Network.mlp(2, (3,), seed=0), loss=loss, optimizer=optimizer)
    assigned = {}
    for name in names:
        value = OPTIONS[name][0](rng) if rng.random() < 0.85 else _junk(rng)
        if name == "epochs" and _int(value) and value > 2:
            value = 2
        owner = trainer.optimizer if name in ("weight_decay", "momentum", "eps") else trainer
        before = getattr(owner, name)
        if OPTIONS[name][1](value):
            setattr(owner, name, value)
            assigned[name] = value
        else:
            with pytest.raises(CLEAN):
                setattr(owner, name, value)
            assert getattr(owner, name) is before  # unchanged
    if "seed" in assigned and assigned["seed"] is None:  # fresh entropy: no two fits shuffle alike
        return
    built = sn.Trainer(sn.Network.mlp(2, (3,), seed=0), loss=loss, optimizer=optimizer,
                       **{"epochs": trainer.epochs, **assigned})
    a, b = trainer.fit(X, y), built.fit(X, y)
    np.testing.assert_array_equal(a.step_loss, b.step_loss)
    np.testing.assert_array_equal(trainer.net.internals.params, built.net.internals.params)


@fuzz(1000)
def test_set_parameters_is_all_or_nothing(seed):
    rng = np.random.default_rng(seed)
    dtype = rng.choice(["float32", "float64"])
    net = _network(_architecture(rng, max_layers=3), dtype)
    shapes = {name: p.shape for name, p in net.parameters().items()}
    candidates = sorted(shapes) + ["nope", "layers.9.bias"]
    names = rng.choice(candidates, min(len(candidates), rng.integers(0, 4)), replace=False)
    arrays, values = {}, {}
    for name in map(str, names):
        shape = shapes.get(name, (1,))
        if rng.random() < 0.5:
            arrays[name] = values[name] = _values(rng, shape, "free", 100.0)
        else:
            arrays[name] = _any_array(rng, rng.choice(ARRAY_DTYPES), [shape])
            values[name] = _layout(arrays[name], rng.choice(LAYOUTS))
    real = {name: _real_values(arr) for name, arr in arrays.items()}
    valid = all(name in shapes and real[name] is not None and arr.shape == shapes[name]
                and _fits(real[name], dtype) for name, arr in arrays.items())
    before = net.internals.params.copy()
    if not valid:
        with pytest.raises(CLEAN):
            net.set_parameters(values)
        np.testing.assert_array_equal(net.internals.params, before)
        return
    net.set_parameters(values)
    after = net.parameters()
    for name in values:
        np.testing.assert_array_equal(after[name], real[name].astype(dtype))


@fuzz(300, loss=st.sampled_from(LOSSES))
def test_trace_explains_any_valid_batch(seed, loss):
    rng = np.random.default_rng(seed)
    net = _network(_architecture(rng, max_layers=3, max_width=3))
    assume(loss != "cross_entropy" or net.n_outputs >= 2)
    n = int(rng.integers(1, 4))
    X = _values(rng, (n, net.n_inputs), "grid")
    y = _targets(rng, loss, n, net.n_outputs, exact=True)
    trace = net.trace(X, y, loss)
    assert trace.loss == net.gradients(X, y, loss)[0]
    assert "Forward pass" in str(trace) and repr(trace).startswith("<Trace loss=")
    lr = float(10 ** rng.uniform(-3, 1)) if rng.random() < 0.7 else _junk(rng)
    if not OPTIONS["lr"][1](lr):
        with pytest.raises(CLEAN):
            trace.apply(lr=lr)
        return
    with np.errstate(over="ignore", invalid="ignore"):
        step = {name: trace.params[name] - float(lr) * g for name, g in trace.grads.items()}
    if not all(np.isfinite(v).all() for v in step.values()):
        with pytest.raises(ValueError):
            trace.apply(lr=lr)
        return
    trace.apply(lr=lr)
    assert "SGD update" in str(trace)
    for name, value in net.parameters().items():
        np.testing.assert_array_equal(value, step[name])


CLI_VALUES = ["1", "-3", "0.5", "0", "nan", "inf", "1e400", "-1e-320", "x", "", "1,2", "1;2;3",
              "0.5,0.5,0.5,0.5", "1,2,3,4,5", "--", "-1", "2", "float32", "mse", "l1", "bce", "é"]
CLI_OPTIONS = ["--x", "--y", "--weights", "--loss", "--lr", "--steps", "--dtype", "--bogus"]


@fuzz(300)
def test_cli_trace_fails_cleanly(seed):
    rng = np.random.default_rng(seed)
    argv = ["trace"]
    for _ in range(rng.integers(0, 5)):
        option, value = str(rng.choice(CLI_OPTIONS)), str(rng.choice(CLI_VALUES))
        if option == "--steps" and value.lstrip("-").isdigit():
            value = str(min(int(value), 3))
        argv += [option, value]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(argv)
        except SystemExit as exc:  # argparse: a usage error
            code = exc.code
    assert code in (0, 2), argv
    if code == 2:  # one line: "skipnet trace: error: ..." or argparse's "skipnet: error: ... (see --help)"
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("skipnet") and "error: " in err.getvalue()
    if code == 0:
        assert "=== step 1 ===" in out.getvalue()


# ------------------------------------------------------------------ model files, estimators, train/predict
MUTATIONS = ["flip", "truncate", "insert", "header", "length", "zero"]


_SAVED: dict[int, tuple] = {}


def _saved_model(index: int):
    """(network, bytes of its model file) for one of 16 random architectures, saved once per session
    (a save fsyncs: too slow to repeat for every example)."""
    if index not in _SAVED:
        rng = np.random.default_rng(1000 + index)
        net = _network(_architecture(rng, max_layers=4), ["float32", "float64"][index % 2])
        with tempfile.TemporaryDirectory() as folder:
            _SAVED[index] = net, net.save(os.path.join(folder, "m.safetensors")).read_bytes()
    return _SAVED[index]


@fuzz(800, mutation=st.sampled_from(MUTATIONS))
def test_corrupted_model_files_fail_cleanly(seed, mutation):
    """A saved file with random damage either loads as exactly the saved network or raises ValueError."""
    rng = np.random.default_rng(seed)
    net, saved = _saved_model(int(rng.integers(16)))
    data = bytearray(saved)
    header_end = 8 + int.from_bytes(data[:8], "little")
    i = int(rng.integers(0, len(data)))
    if mutation == "flip":  # a few random bytes anywhere
        for k in rng.integers(0, len(data), rng.integers(1, 4)):
            data[k] ^= int(rng.integers(1, 256))
    elif mutation == "truncate":
        data = data[:i]
    elif mutation == "insert":
        data[i:i] = rng.integers(0, 256, rng.integers(1, 9)).astype(np.uint8).tobytes()
    elif mutation == "header":  # JSON-ish characters inside the header
        data[int(rng.integers(8, header_end))] = int(rng.choice(list(b'{}[]",:0123456789e-.aZ \\')))
    elif mutation == "length":
        data[:8] = int(rng.choice([0, header_end - 9, header_end - 7, 2**63, len(data)])).to_bytes(8, "little")
    else:  # a run of zeros
        end = min(len(data), i + int(rng.integers(1, 64)))
        data[i:end] = bytes(end - i)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        try:
            loaded = sn.Network.load(path)
        except ValueError as exc:
            assert "m.safetensors" in str(exc)
            return
    assert repr(loaded) == repr(net) and loaded.internals.params.tobytes() == net.internals.params.tobytes()


ESTIMATOR_OPTIONS = {
    "hidden_layer_sizes": [(4,), (3, 3), 2, (2, 2, 2), (), 0, (3, 0), "4", None, (2.5,)],
    "skip": [None, "first-to-output", "residual", "dense"],
    "optimizer": ["sgd", "adam", "lbfgs"],
    "lr": [0.01, 0.1, 10.0, 0, -1, np.nan, "0.1"],
    "batch_size": ["auto", 1, 4, 1000, 0, "8", 2.5],
    "epochs": [1, 3, 0, -1, 2.0],
    "momentum": [0.0, 0.9, -0.5, np.inf],
    "early_stopping": [False, True],
    "validation_fraction": [0.2, 0.5, 0.0, 1.0, np.nan],
    "n_iter_no_change": [None, 1, 0],
    "tol": [1e-4, -1.0],
    "dtype": ["float64", "float32", "float16"],
    "backend": ["cython", "numpy", "torch"],
    "random_state": [0, None, -1, "x"],
    "warm_start": [False, True],
}


@fuzz(300, kind=st.sampled_from(["regressor", "classifier"]))
def test_estimators_fail_cleanly(seed, kind):
    """Any option values and data: fit and predict either work (with outputs of the right shape) or
    raise ValueError/TypeError (scikit-learn's NotFittedError is a ValueError)."""
    sk = pytest.importorskip("skipnet.sklearn")
    rng = np.random.default_rng(seed)
    options = {name: values[rng.integers(len(values))] for name, values in ESTIMATOR_OPTIONS.items()
               if rng.random() < 0.5}
    estimator = (sk.SkipNetRegressor if kind == "regressor" else sk.SkipNetClassifier)(**options)
    n, n_features = int(rng.integers(1, 16)), int(rng.integers(1, 4))
    X = _layout(_any_array(rng, rng.choice(["float64", "float64", "int64", "object", "float32", "U3"]),
                           [(n, n_features)]), rng.choice(LAYOUTS))
    if kind == "regressor":
        y = _values(rng, n, "free", 10.0)
    else:
        y = rng.choice(np.array(["cat", "dog", "eel"] if rng.random() < 0.5 else [0, 1, 2]), n)
    if rng.random() < 0.2:
        y = _any_array(rng, rng.choice(ARRAY_DTYPES), [(n,)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.fit(X, y)
        except CLEAN:
            with pytest.raises(CLEAN):  # unfitted
                estimator.predict(np.zeros((2, n_features)))
            return
        for Xp in (np.zeros((3, n_features)), np.zeros((3, n_features + 1)), [["a"] * n_features]):
            try:
                out = estimator.predict(Xp)
            except CLEAN:
                continue
            assert out.shape[0] == 3
            if kind == "classifier":
                assert set(out.tolist()) <= set(estimator.classes_.tolist())
                proba = estimator.predict_proba(Xp)
                assert proba.shape == (3, len(estimator.classes_))
                np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def _random_table(rng, folder):
    """A training table (CSV or .npy) with a column "t", sometimes damaged; returns its path."""
    n, n_columns = int(rng.integers(0, 25)), int(rng.integers(1, 4))
    values = _values(rng, (n, n_columns), "free", 10.0)
    values[:, -1] = rng.integers(0, rng.integers(1, 4), n)  # a target usable for any loss
    if rng.random() < 0.5:
        path = os.path.join(folder, "table.npy")
        # sometimes of another dtype: strings, dates, objects (pickled: load must refuse to unpickle)
        np.save(path, values if rng.random() < 0.8 else _any_array(rng, rng.choice(ARRAY_DTYPES), [values.shape]),
                allow_pickle=True)
        return path
    names = [f"c{i}" for i in range(n_columns - 1)] + ["t"]
    rows = [",".join(f"{v:.17g}" for v in row) for row in values]
    damage = rng.integers(0, 12)  # 1-4: one kind of damage; else a clean table
    if damage == 1 and rows:
        rows[rng.integers(len(rows))] += ",1"  # a ragged row
    elif damage == 2 and rows:
        rows[rng.integers(len(rows))] = ",".join(["x"] * n_columns)  # words
    elif damage == 3:
        names[0] = names[-1]  # duplicate names
    elif damage == 4 and rows:
        rows[rng.integers(len(rows))] = ",".join(["nan"] * n_columns)
    path = os.path.join(folder, "table.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([",".join(names)] + rows) + "\n")
    return path


# option -> (good values, bad values)
TRAIN_OPTIONS = {
    "--hidden": (["4,4", "3,3", "2,2,2,2"], ["0", "x", ""]), "--skip": (["none", "first-to-output", "residual"], ["x"]),
    "--loss": (["l1", "mse", "bce", "cross_entropy"], ["hinge"]), "--optimizer": (["sgd", "adam"], ["lbfgs"]),
    "--lr": (["0.01", "0.5", "1e300"], ["0", "nan", "-1"]), "--epochs": (["1", "2"], ["0", "-3", "x"]),
    "--batch-size": (["1", "4", "100"], ["0", "2.5"]), "--val-split": (["0", "0.2", "0.9"], ["1", "nan"]),
    "--dtype": (["float32", "float64"], ["float16"]), "--seed": (["0", "7"], ["-1"]),
}


@fuzz(150)
def test_cli_train_and_predict_fail_cleanly(seed):
    """`skipnet train` then `skipnet predict` on random tables and options: exit 0, 1 (training diverged:
    nothing written) or 2, with one line on stderr; a model file is written only by a successful train,
    and predict reads it back."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        table = _random_table(rng, folder)
        model = os.path.join(folder, "m.safetensors")
        target = ("t" if table.endswith(".csv") else "-1") if rng.random() < 0.9 else rng.choice(["0", "9", "zz"])
        argv = ["train", table, "--quiet", "--out", model, "--epochs", "1", "--target", str(target)]
        for option, (good, bad) in TRAIN_OPTIONS.items():
            if rng.random() < 0.4:
                argv += [option, str(rng.choice(bad if rng.random() < 0.1 else good))]
        if rng.random() < 0.3:
            argv.append("--no-standardize")
        code, err = _run_cli(argv)
        assert code in (0, 1, 2) and (code == 0 or err.count("\n") == 1), (argv, err)
        assert os.path.exists(model) == (code == 0), argv
        if code == 0:
            other = _random_table(rng, folder) if rng.random() < 0.5 else table
            code, err = _run_cli(["predict", model, other, "--out", os.path.join(folder, "p.csv")])
            assert code in (0, 1, 2) and (code == 0 or err.count("\n") == 1), err


def _run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = cli_main(argv)
        except SystemExit as exc:  # argparse: a usage error
            code = exc.code
    return code, err.getvalue()


LR_FIND_OPTIONS = {
    "lr_min": ([1e-7, 1e-4, 0.5], [0, -1, np.nan, "x"]), "lr_max": ([10.0, 1.0, 1e6], [0, np.inf]),
    "steps": ([2, 10, 60], [1, 0, 2.5]), "batch_size": ([1, 8, 100], [0]), "beta": ([0.0, 0.98], [1.0, -0.1]),
    "divergence_factor": ([4.0, 1e9], [1.0, 0.5]), "method": (["valley", "steepest", "minimum"], ["best"]),
    "optimizer": (["sgd", "adam"], ["rmsprop"]), "momentum": ([0.0, 0.9], [-1.0, "x"]),
}


@fuzz(300, loss=st.sampled_from(LOSSES))
def test_lr_find_fails_cleanly_and_leaves_the_network_alone(seed, loss):
    rng = np.random.default_rng(seed)
    net = _network(_architecture(rng, max_layers=3), rng.choice(["float32", "float64"]))
    assume(loss != "cross_entropy" or net.n_outputs >= 2)
    kwargs = {}
    for name, (good, bad) in LR_FIND_OPTIONS.items():
        if rng.random() < 0.5:
            values = bad if rng.random() < 0.1 else good
            kwargs[name] = values[rng.integers(len(values))]
    if kwargs.get("optimizer") == "adam":
        kwargs.pop("momentum", None)
    n = int(rng.integers(1, 20))
    X, y = _values(rng, (n, net.n_inputs), "free", 10.0), _targets(rng, loss, n, net.n_outputs, exact=False)
    before = net.internals.params.copy()
    try:
        result = sn.lr_find(net, X, y, loss=loss, **kwargs)
    except CLEAN:
        return
    finally:
        np.testing.assert_array_equal(net.internals.params, before)  # the test runs on a copy
    steps = len(result.lrs)
    assert steps == len(result.losses) == len(result.smoothed) and 1 <= steps <= result.steps
    assert (np.diff(result.lrs) > 0).all() and result.lrs[0] == result.lr_min
    assert result.suggestion is None or result.lr_min / 10 <= result.suggestion <= result.lr_max
    assert str(result)
