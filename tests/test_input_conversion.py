"""Conversion of user input at the boundary: numbers beyond float64, inputs larger than memory refused
before they are materialised, strict booleans; and a traced SGD step that overflows."""

from __future__ import annotations

import fractions
import math
import time

import numpy as np
import pytest

import skipnet as sn
from skipnet import _validation as V


def _net():
    return sn.Network.mlp(2, (3,), seed=0)


def test_numbers_beyond_float64_are_a_value_error_naming_the_argument():
    net = _net()
    with pytest.raises(ValueError, match="X holds a number too large for float64"):
        net.predict([[10**400, 1]])
    with pytest.raises(ValueError, match="y holds a number too large for float64"):
        net.gradients([[1.0, 2.0]], [[-(10**400)]], loss="mse")
    with pytest.raises(ValueError, match="parameter 'layers.1.bias' holds a number too large"):
        net.set_parameters({"layers.1.bias": [10**400]})
    # Python ints and fractions within range still convert
    np.testing.assert_array_equal(net.predict([[10**20, fractions.Fraction(1, 2)]]),
                                  net.predict([[1e20, 0.5]]))


class _BrokenReal(float):
    def __float__(self):
        raise ArithmeticError("no float for this one")


def test_a_real_that_refuses_float_conversion_is_a_value_error():
    with pytest.raises(ValueError, match="X holds a value that cannot be converted to a float"):
        _net().predict(np.array([[_BrokenReal(1.0), 2]], dtype=object))


class _LazyArray:
    """Says its shape like a dask array; materialising it is what must not happen."""

    shape = (10**9, 10**4)
    dtype = np.dtype("float64")

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("materialised")


def test_inputs_larger_than_memory_are_refused_before_materialising():
    net = _net()
    huge = np.broadcast_to(np.ones((1, 2)), (10**11, 2))  # a view: no memory of its own
    start = time.perf_counter()
    for call in (lambda: net.predict(huge), lambda: net.predict(_LazyArray()),
                 lambda: sn.Trainer(net, loss="mse").fit(huge, np.broadcast_to(1.0, (10**11, 1))),
                 lambda: net.predict(np.broadcast_to(np.array([[1.0, 2.0]], dtype=object), (10**11, 2)))):
        with pytest.raises(ValueError, match=r"X of shape \(\d+, \d+\) \(64-bit numbers\) would need .* GiB"):
            call()
    assert time.perf_counter() - start < 30  # refused up front, not after scanning 10**11 elements


def test_booleans_are_strict():
    for value in ("yes", "no", 1, 0, None, 1.0, [True]):
        with pytest.raises(TypeError, match="flag must be True or False"):
            V.check_bool("flag", value)
    assert V.check_bool("flag", np.True_) is True and V.check_bool("flag", False) is False
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        sn.Trainer(_net(), shuffle="no")


def test_huge_integers_are_named_by_magnitude():
    with pytest.raises(ValueError, match=r"n must be <= 10, got an integer of about 10\*\*5000$"):
        V.check_int("n", 10**5000, maximum=10)  # more digits than Python will print


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_overflowing_traced_step_is_blamed_on_the_update(dtype):
    net = sn.Network.exercise(dtype=dtype)
    before = net.parameters()
    big = float(np.finfo(dtype).max) / 4
    trace = net.trace([[big]], [[-3.0]], loss="l1")  # finite forward pass, gradients of size ~big
    with pytest.raises(ValueError, match=r"the SGD update with lr=1e\+30 made parameter .* non-finite .* "
                                         "the network is unchanged"):
        trace.apply(lr=1e30)
    for name, value in net.parameters().items():
        np.testing.assert_array_equal(value, before[name])
    assert trace.applied_lr is None and "SGD update" not in str(trace)
    trace.apply(lr=1e-30)  # a step that stays in range still applies
    assert trace.applied_lr == 1e-30 and math.isfinite(float(net.parameters()["layers.0.weight"][0, 0]))
