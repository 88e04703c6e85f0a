"""Small data sets made in code (nothing is downloaded), seeded and ready for a Trainer.

Every function returns ``(X, y)`` with rows in a seeded random order:

- ``X``: (n, n_features) in ``dtype`` (float64 by default), C-contiguous;
- regression (``sine``): ``y`` (n, 1) in ``dtype``, for loss "mse" or "l1";
- binary classification (``moons``, ``xor``): ``y`` (n, 1) in ``dtype`` holding 0.0 / 1.0, for
  loss "bce" (one output logit); the classes are balanced (sizes differ by at most one);
- multi-class (``spirals``, ``blobs``): ``y`` (n,) int64 class indices in [0, classes), for loss
  "cross_entropy" (one output logit per class); the classes are balanced.

The same arguments give the same arrays on every machine (NumPy's PCG64 generator). ``noise`` (``spread``)
must be finite, >= 0 and at most ``np.finfo(dtype).max / 64``, so every value returned is finite.
"""

from __future__ import annotations

import numpy as np

from . import _validation as V

Data = tuple[np.ndarray, np.ndarray]


# NumPy's normal draws stay below 14 standard deviations in magnitude (the ziggurat's tail from a
# 53-bit uniform), so a noise scale below max / 64 cannot overflow the data set's dtype.
_NOISE_HEADROOM = 64.0


def _check(n: int, noise: float, seed: int | None, dtype, min_n: int = 1, noise_name: str = "noise"):
    n = V.check_int("n", n, minimum=min_n)
    V.check_memory(f"a data set of {n} rows", 64 * n)  # features, labels and temporaries: ~8 doubles a row
    dtype = V.check_dtype(dtype)
    noise = V.check_float(noise_name, noise, minimum=0.0,
                          maximum=float(np.finfo(dtype).max) / _NOISE_HEADROOM)
    if seed is not None:
        seed = V.check_int("seed", seed, minimum=0)
    return n, noise, np.random.default_rng(seed), dtype


def _class_sizes(n: int, classes: int) -> list[int]:
    return [n // classes + (1 if c < n % classes else 0) for c in range(classes)]


def _finish(X, y, rng, dtype, y_dtype=None):
    order = rng.permutation(X.shape[0])
    with np.errstate(over="ignore", invalid="ignore"):  # reported below
        X = np.ascontiguousarray(X[order], dtype=dtype)
        y = np.ascontiguousarray(y[order], dtype=dtype if y_dtype is None else y_dtype)
    if not (np.isfinite(X).all() and np.isfinite(y).all()):  # unreachable within _check's bounds
        raise ValueError(f"the data set is not finite in {np.dtype(dtype).name}: lower the noise")
    return X, y


def sine(n: int = 200, noise: float = 0.1, seed: int | None = 0, dtype="float64") -> Data:
    """1-D regression: x ~ U(-pi, pi), y = sin(x) + N(0, noise^2). X (n, 1), y (n, 1)."""
    n, noise, rng, dtype = _check(n, noise, seed, dtype)
    x = rng.uniform(-np.pi, np.pi, (n, 1))
    y = np.sin(x) + rng.normal(0.0, noise, (n, 1)) if noise else np.sin(x)
    return _finish(x, y, rng, dtype)


def moons(n: int = 200, noise: float = 0.1, seed: int | None = 0, dtype="float64") -> Data:
    """Two interleaving half circles (scikit-learn's make_moons geometry, centred at the origin).

    Class 0: (cos t, sin t) - (0.5, 0.25); class 1: (1 - cos t, 0.5 - sin t) - (0.5, 0.25), with
    t ~ U(0, pi) and N(0, noise^2) added to each coordinate. X (n, 2), y (n, 1) of 0.0 / 1.0.
    """
    n, noise, rng, dtype = _check(n, noise, seed, dtype, min_n=2)
    n0, n1 = _class_sizes(n, 2)
    t0, t1 = rng.uniform(0.0, np.pi, n0), rng.uniform(0.0, np.pi, n1)
    X = np.concatenate([np.c_[np.cos(t0), np.sin(t0)], np.c_[1.0 - np.cos(t1), 0.5 - np.sin(t1)]])
    X += rng.normal(0.0, noise, X.shape) - np.array([0.5, 0.25])
    y = np.r_[np.zeros(n0), np.ones(n1)][:, None]
    return _finish(X, y, rng, dtype)


def xor(n: int = 200, noise: float = 0.0, seed: int | None = 0, dtype="float64") -> Data:
    """XOR of the signs: points in the four quadrants of [-1, 1]^2 (kept 0.1 away from the axes),
    y = 1 where x0 * x1 < 0. Equal counts per quadrant (up to one); N(0, noise^2) is added to X after
    labelling, so noise > 0 blurs the boundary. X (n, 2), y (n, 1) of 0.0 / 1.0."""
    n, noise, rng, dtype = _check(n, noise, seed, dtype, min_n=4)
    sizes = _class_sizes(n, 4)
    signs = [(1, 1), (-1, -1), (1, -1), (-1, 1)]  # quadrants of class 0, 0, 1, 1
    X = np.concatenate([rng.uniform(0.1, 1.0, (m, 2)) * np.array(s) for m, s in zip(sizes, signs)])
    y = (X[:, :1] * X[:, 1:] < 0).astype(np.float64)
    X += rng.normal(0.0, noise, X.shape)
    return _finish(X, y, rng, dtype)


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2, seed: int | None = 0,
            dtype="float64") -> Data:
    """Interleaved spiral arms, one per class (the classic CS231n example): for class c, radius
    r = linspace(0, 1), angle 4c + 4r (radians) + N(0, noise^2), point r * (sin, cos) of the angle.
    X (n, 2), y (n,) int64 in [0, classes)."""
    classes = V.check_int("classes", classes, minimum=2)
    n, noise, rng, dtype = _check(n, noise, seed, dtype, min_n=classes)
    X, y = [], []
    for c, m in enumerate(_class_sizes(n, classes)):
        r = np.linspace(0.0, 1.0, m)
        angle = 4.0 * c + 4.0 * r + rng.normal(0.0, noise, m)
        X.append(np.c_[r * np.sin(angle), r * np.cos(angle)])
        y.append(np.full(m, c))
    return _finish(np.concatenate(X), np.concatenate(y), rng, dtype, np.int64)


def blobs(n: int = 300, classes: int = 3, spread: float = 0.5, seed: int | None = 0,
          dtype="float64") -> Data:
    """Gaussian blobs: class c ~ N(centre_c, spread^2 I) with centres evenly spaced on the circle of
    radius 2. X (n, 2), y (n,) int64 in [0, classes)."""
    classes = V.check_int("classes", classes, minimum=2)
    n, spread, rng, dtype = _check(n, spread, seed, dtype, min_n=classes, noise_name="spread")
    X, y = [], []
    for c, m in enumerate(_class_sizes(n, classes)):
        angle = 2.0 * np.pi * c / classes
        X.append(rng.normal(0.0, spread, (m, 2)) + 2.0 * np.array([np.cos(angle), np.sin(angle)]))
        y.append(np.full(m, c))
    return _finish(np.concatenate(X), np.concatenate(y), rng, dtype, np.int64)
