"""One rule turns raw targets into training targets (skipnet/_targets.py): the command line
(`skipnet train`/`sweep`, through cli._dataset.encode_target) and the scikit-learn estimators encode the
same labels and values identically, and refuse bad targets with a ValueError saying what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from skipnet._targets import classification_loss, encode_targets
from skipnet.cli._dataset import encode_target
from skipnet.sklearn import SkipNetClassifier, SkipNetRegressor
from skipnet.trainer import Trainer

N = 24
X = np.random.default_rng(0).normal(size=(N, 3))


def _labels(values, n=N):
    """``values`` repeated over n rows, in an order that is not sorted."""
    return np.array([values[(7 * i) % len(values)] for i in range(n)])


def _trained_targets(monkeypatch, estimator, y) -> np.ndarray:
    """The targets ``estimator.fit(X, y)`` hands to its Trainer."""
    seen = []
    fit = Trainer.fit

    def recording_fit(trainer, X_train, y_train, *args, **kwargs):
        seen.append(np.array(y_train, copy=True))
        return fit(trainer, X_train, y_train, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", recording_fit)
    estimator.fit(X, y)
    (targets,) = seen
    return targets


LABELS = {
    "strings, 2 classes": _labels(["yes", "no"]),
    "strings, 3 classes": _labels(["cat", "ant", "bee"]),
    "ints, 2 classes": _labels([7, -2]),
    "ints, 4 classes": _labels([30, 10, 20, -5]),
    "floats, 2 classes (a CSV column)": _labels([1.0, -3.0]),
}


@pytest.mark.parametrize("labels", list(LABELS.values()), ids=list(LABELS))
def test_the_command_line_and_the_classifier_encode_labels_alike(monkeypatch, labels):
    clf = SkipNetClassifier((4,), epochs=1, n_iter_no_change=None, random_state=0)
    estimator_targets = _trained_targets(monkeypatch, clf, labels)
    loss = classification_loss(np.unique(labels).size)
    cli_targets, cli_classes, cli_outputs = encode_target(labels, loss)
    assert cli_targets.dtype == estimator_targets.dtype and cli_targets.shape == estimator_targets.shape
    np.testing.assert_array_equal(cli_targets, estimator_targets)
    np.testing.assert_array_equal(cli_classes, clf.classes_)
    assert cli_outputs == clf.n_outputs_ == clf.network_.n_outputs
    # class index i stands for classes_[i]: the encoding decodes back to the labels
    index = cli_targets.ravel().astype(np.intp)
    np.testing.assert_array_equal(cli_classes[index], labels)


def test_label_encodings_shapes_and_dtypes():
    two = encode_targets(np.array(["no", "yes", "yes"]), "bce")
    assert two.targets.dtype == np.float64 and two.targets.tolist() == [[0.0], [1.0], [1.0]]
    assert two.classes.tolist() == ["no", "yes"] and two.n_outputs == 1
    three = encode_targets(np.array([20, 10, 30, 10]), "cross_entropy")
    assert three.targets.dtype == np.int64 and three.targets.tolist() == [1, 0, 2, 0]
    assert three.classes.tolist() == [10, 20, 30] and three.n_outputs == 3
    # two classes with one logit per class, as `skipnet train --loss cross_entropy` allows
    assert encode_targets(np.array([1.0, 0.0]), "cross_entropy").n_outputs == 2
    # the classes of an earlier call: indices refer to them, even for labels absent from this y
    later = encode_targets(np.array(["c", "c", "a"]), "cross_entropy", classes=["a", "b", "c"])
    assert later.targets.tolist() == [2, 2, 0] and later.n_outputs == 3
    assert classification_loss(2) == "bce" and classification_loss(3) == "cross_entropy"


@pytest.mark.parametrize("loss", ["l1", "mse"])
@pytest.mark.parametrize("y", [X @ [1.0, -2.0, 0.5], X[:, :2] * 3.0], ids=["1-D", "2-D"])
def test_the_command_line_and_the_regressor_encode_values_alike(monkeypatch, loss, y):
    reg = SkipNetRegressor((4,), loss=loss, epochs=1, n_iter_no_change=None, random_state=0)
    estimator_targets = _trained_targets(monkeypatch, reg, y)
    cli_targets, classes, n_outputs = encode_target(y, loss)
    assert classes is None and cli_targets.dtype == np.float64 == estimator_targets.dtype
    np.testing.assert_array_equal(cli_targets, estimator_targets)
    np.testing.assert_array_equal(cli_targets, y.reshape(N, -1))
    assert n_outputs == reg.n_outputs_ == reg.network_.n_outputs == (1 if y.ndim == 1 else 2)


BAD = [
    (np.ones(5), "cross_entropy", None, r"at least 2 classes, got 1 class: \[1.0\]"),
    (np.arange(5.0), "bce", None, "the loss bce needs a target with exactly 2 values, got 5"),
    (np.array(["a", "d"]), "bce", ["a", "b"], r"y holds labels \['d'\] that are not in classes \['a', 'b'\]"),
    (np.array(["a", "b"]), "bce", ["b", "a"], "classes must be distinct labels in sorted order"),
    (np.array([1, 1, 2]), "cross_entropy", [1, 1, 2], "classes must be distinct labels in sorted order"),
    (np.zeros((4, 2)), "bce", None, r"class labels of shape \(n_samples,\)"),
    (np.array([0.0, np.nan, 1.0]), "bce", None, "NaN or infinite labels"),
    (np.array([1, "a"], dtype=object), "cross_entropy", None, "labels of one comparable type"),
    (np.zeros(0), "cross_entropy", None, r"n_samples >= 1, got shape \(0,\)"),
    (np.array([0.0, np.inf]), "mse", None, "NaN or infinite values"),
    (np.array(["x", "y"]), "l1", None, "must hold numbers for a regression loss"),
    (np.zeros((2, 2, 1)), "l1", None, r"shape \(n_samples,\) or \(n_samples, n_targets\)"),
    (np.zeros((3, 0)), "mse", None, r"got \(3, 0\)"),
    (np.zeros(3), "hinge", None, "unknown loss 'hinge'"),
]


@pytest.mark.parametrize("y, loss, classes, message", BAD, ids=[f"{case[1]} {i}" for i, case in enumerate(BAD)])
def test_bad_targets_raise(y, loss, classes, message):
    with pytest.raises(ValueError, match=message):
        encode_targets(y, loss, classes)


def test_the_command_line_and_the_classifier_refuse_a_single_class_alike():
    with pytest.raises(ValueError, match="^--loss bce needs a target with exactly 2 values, got 3$"):
        encode_target(np.array([1.0, 2.0, 3.0]), "bce")
    for refuse in (lambda: encode_target(np.full(N, 4.0), "cross_entropy"),
                   lambda: SkipNetClassifier((4,), epochs=1).fit(X, np.full(N, 4.0))):
        with pytest.raises(ValueError, match=r"needs samples of at least 2 classes, got 1 class: \[4.0\]"):
            refuse()


def test_every_kernel_loss_is_a_regression_or_a_classification_loss():
    """The kernels number the losses (csrc/loss_terms.h); the target rule sorts each of them once."""
    from skipnet import _kernels as K
    from skipnet._targets import CLASSIFICATION_LOSSES, REGRESSION_LOSSES

    assert sorted(REGRESSION_LOSSES + CLASSIFICATION_LOSSES) == sorted(K.LOSS_NAMES)
    assert not set(REGRESSION_LOSSES) & set(CLASSIFICATION_LOSSES)
