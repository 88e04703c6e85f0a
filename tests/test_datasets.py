"""Built-in data sets: shapes, dtypes, balance, determinism, the classes actually separate, bad input."""

import numpy as np
import pytest

import skipnet as sn
from skipnet import datasets

ALL = [datasets.sine, datasets.moons, datasets.xor, datasets.spirals, datasets.blobs]


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shapes_dtypes_and_determinism(make, dtype):
    X, y = make(n=101, seed=3, dtype=dtype)
    assert X.dtype == np.dtype(dtype) and X.flags.c_contiguous and X.shape[0] == 101
    if make in (datasets.spirals, datasets.blobs):
        assert y.shape == (101,) and y.dtype == np.int64
        assert np.bincount(y).max() - np.bincount(y).min() <= 1
    else:
        assert y.shape == (101, 1) and y.dtype == np.dtype(dtype)
    if make in (datasets.moons, datasets.xor):
        assert set(np.unique(y)) == {0.0, 1.0} and abs(int(y.sum()) - 50) <= 1
    X2, y2 = make(n=101, seed=3, dtype=dtype)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(make(n=101, seed=4, dtype=dtype)[0], X)


def test_labels_follow_their_definition():
    X, y = datasets.xor(200, seed=0)
    np.testing.assert_array_equal(y[:, 0], (X[:, 0] * X[:, 1] < 0).astype(float))
    X, y = datasets.sine(100, noise=0.0, seed=0)
    np.testing.assert_allclose(y, np.sin(X))
    X, y = datasets.moons(400, noise=0.0, seed=0)
    centred = X + np.array([0.5, 0.25])
    outer = np.isclose(np.hypot(centred[:, 0], centred[:, 1]), 1.0)
    np.testing.assert_array_equal(outer, y[:, 0] == 0)


def test_a_network_learns_each_classification_set():
    for make, loss, n_out in ((datasets.moons, "bce", 1), (datasets.blobs, "cross_entropy", 3)):
        X, y = make(seed=0)
        net = sn.Network.mlp(2, (16, 16), n_outputs=n_out, seed=0)
        hist = sn.Trainer(net, loss=loss, optimizer="adam", lr=0.02, epochs=30, seed=0).fit(X, y)
        assert hist.final_loss < 0.5 * hist.epoch_loss[0]


@pytest.mark.parametrize("call,error,match", [
    (lambda: datasets.sine(0), ValueError, "n must be >= 1"),
    (lambda: datasets.moons(10.5), TypeError, "n"),
    (lambda: datasets.moons(noise=-1), ValueError, "noise"),
    (lambda: datasets.blobs(spread=-0.1), ValueError, "spread"),
    (lambda: datasets.spirals(classes=1), ValueError, "classes"),
    (lambda: datasets.xor(seed=-1), ValueError, "seed"),
    (lambda: datasets.sine(dtype="int32"), ValueError, "dtype"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_noise_is_bounded_so_the_data_stay_finite(make, dtype):
    name = "spread" if make is datasets.blobs else "noise"
    largest = float(np.finfo(dtype).max) / 64
    X, y = make(n=2000, seed=0, dtype=dtype, **{name: largest})  # the largest allowed: still finite
    assert np.isfinite(X).all() and np.isfinite(y).all()
    for bad in (largest * 1.01, 1e308, float("inf")):
        with pytest.raises(ValueError, match=name):
            make(n=10, dtype=dtype, **{name: bad})
