"""Targets as a network trains on them: the one rule behind `skipnet train`, `skipnet sweep` and the
scikit-learn estimators (skipnet.sklearn). NumPy only.

Regression (loss "l1" or "mse"):
    y        (n,) or (n, k) numbers, finite
    targets  (n, k) float64 (a 1-D y is one column); n_outputs = k; classes None
Classification (loss "bce" or "cross_entropy"):
    y        (n,) labels of one sortable type (numbers, strings, ...)
    classes  (n_classes,) the distinct labels in sorted order (``np.unique(y)``, or the ones given),
             class index i standing for ``classes[i]``
    targets  bce: (n, 1) float64 0.0 / 1.0 (1.0 for ``classes[1]``), exactly 2 classes, n_outputs = 1 (a
             logit); cross_entropy: (n,) int64 class indices, n_outputs = n_classes (a logit per class)
Anything else raises a ValueError naming the target (``name``) and what was expected.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

REGRESSION_LOSSES = ("l1", "mse")
CLASSIFICATION_LOSSES = ("bce", "cross_entropy")


class EncodedTargets(NamedTuple):
    """The targets of a loss (see the module docstring for shapes and dtypes)."""

    targets: np.ndarray
    classes: np.ndarray | None
    n_outputs: int


def classification_loss(n_classes: int) -> str:
    """The loss of a classifier that picks it by the number of classes: bce on one logit for 2 classes,
    softmax cross-entropy otherwise."""
    return "bce" if n_classes == 2 else "cross_entropy"


def encode_targets(y, loss: str, classes=None, *, name: str = "y",
                   loss_argument: str = "the loss") -> EncodedTargets:
    """``y`` encoded for ``loss`` (see the module docstring): (targets, classes, n_outputs).

    classes: for classification, the labels the indices refer to (distinct, sorted), e.g. those of an
    earlier fit; None finds them in ``y``. name: the target's name in messages; loss_argument: how the
    messages name the loss setting (e.g. "--loss" on the command line)."""
    if loss in REGRESSION_LOSSES:
        return _regression(y, name)
    if loss not in CLASSIFICATION_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of "
                         f"{REGRESSION_LOSSES + CLASSIFICATION_LOSSES}")
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise ValueError(f"{name} must hold class labels of shape (n_samples,) with n_samples >= 1, got "
                         f"shape {labels.shape}")
    if labels.dtype.kind in "fc" and not np.isfinite(labels).all():
        raise ValueError(f"{name} holds NaN or infinite labels")
    if classes is None:
        classes = _sorted_labels(labels, name)
    else:
        classes = _given_classes(classes)
        unknown = np.setdiff1d(_sorted_labels(labels, name), classes)
        if unknown.size:
            raise ValueError(f"{name} holds labels {unknown.tolist()} that are not in classes "
                             f"{classes.tolist()}")
    if loss == "bce" and classes.size != 2:
        raise ValueError(f"{loss_argument} bce needs a target with exactly 2 values, got {classes.size}")
    if classes.size < 2:
        raise ValueError(f"a classifier needs samples of at least 2 classes, got {classes.size} "
                         f"class{'' if classes.size == 1 else 'es'}: {classes.tolist()}")
    index = np.searchsorted(classes, labels)
    if loss == "bce":
        return EncodedTargets(index.astype(np.float64).reshape(-1, 1), classes, 1)
    return EncodedTargets(index.astype(np.int64), classes, int(classes.size))


def _regression(y, name: str) -> EncodedTargets:
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold numbers for a regression loss (l1, mse): {exc}") from exc
    if values.ndim not in (1, 2) or values.shape[0] == 0 or (values.ndim == 2 and values.shape[1] == 0):
        raise ValueError(f"{name} must have shape (n_samples,) or (n_samples, n_targets), both at least 1, "
                         f"got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    targets = values.reshape(-1, 1) if values.ndim == 1 else values
    return EncodedTargets(targets, None, targets.shape[1])


def _sorted_labels(labels: np.ndarray, name: str) -> np.ndarray:
    try:
        return np.unique(labels)
    except TypeError as exc:  # labels of types that do not compare (e.g. numbers mixed with strings)
        raise ValueError(f"{name} must hold labels of one comparable type: {exc}") from exc


def _given_classes(classes) -> np.ndarray:
    """``classes`` as an array, checked to be distinct labels in sorted order (the class indices are
    positions in it, found by binary search)."""
    classes = np.asarray(classes)
    try:
        ordered = classes.ndim == 1 and bool(np.all(classes[1:] > classes[:-1]))
    except TypeError:
        ordered = False
    if not ordered:
        raise ValueError(f"classes must be distinct labels in sorted order (as numpy.unique gives them), got "
                         f"{classes.tolist()}")
    return classes
