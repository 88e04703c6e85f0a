"""Diagnostics: dead units, gradient flow, plateaus and their explanation."""

import math

import numpy as np
import pytest

import skipnet as sn
from skipnet import diagnostics as D


def _stuck_exercise():
    net = sn.Network.exercise()
    net.trace([[1.0]], [[-3.0]]).apply(lr=1.0)
    return net


def test_dead_units_on_the_exercise_after_one_step():
    report = D.dead_units(_stuck_exercise(), [[1.0]])
    assert {k: d.units for k, d in report.layers.items()} == {0: [0], 1: [0]}
    assert report.fraction == 1.0 and report.dead_layers == [0, 1]
    assert report.layers[0].max_preactivation[0] == -0.25
    assert "2 of 2 ReLU units are dead" in str(report)
    fresh = D.dead_units(sn.Network.exercise(), [[1.0]])
    assert fresh.n_dead == 0 and "no dead" in str(fresh)


def test_gradient_flow_matches_gradients():
    rng = np.random.default_rng(0)
    net = sn.Network.mlp(3, (5, 5), skip="first-to-output", seed=0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    flow = D.gradient_flow(net, X, y, "mse")
    _, grads = net.gradients(X, y, "mse")
    assert flow.layers[0]["weight_norm"] == pytest.approx(np.linalg.norm(grads["layers.0.weight"]))
    assert flow.skips[0]["weight_norm"] == pytest.approx(np.linalg.norm(grads["skips.0.weight"]))
    assert flow.total_norm == pytest.approx(np.sqrt(sum((g**2).sum() for g in grads.values())))
    assert not flow.zero
    assert D.gradient_flow(_stuck_exercise(), [[1.0]], [[-3.0]], "l1").zero


def test_detect_plateau():
    assert D.detect_plateau([5, 4, 3, 2, 1]) is None
    p = D.detect_plateau([5, 4, 3, 1, 1, 1, 1, 1, 1])
    assert p.start == 3 and p.level == 1.0
    assert D.detect_plateau([1, 1]) is None  # shorter than the window
    with pytest.raises(ValueError, match="window"):
        D.detect_plateau([1, 2, 3], window=1)


def test_explain_plateau_for_bce_at_ln2():
    # every hidden unit dead and a zero output bias: the logit is 0 for every sample -> loss ln 2
    net = sn.Network.mlp(2, (4, 4), seed=0)
    p = net.parameters()
    net.set_parameters({"layers.1.weight": -np.abs(p["layers.1.weight"]), "layers.1.bias": -np.ones(4),
                        "layers.2.bias": [0.0]})
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = (X[:, 0] > 0).astype(float)
    hist = sn.Trainer(net, loss="bce", lr=0.1, epochs=30, batch_size=16).fit(X, y)
    assert hist.epoch_loss[-1] == pytest.approx(math.log(2), abs=1e-3)
    plateau = D.explain_plateau(net, X, y, "bce", hist.epoch_loss)
    assert plateau is not None and plateau.details["at_ln2"]
    assert plateau.details["dead_layers"] == [1] and plateau.details["constant_output"]
    assert "ln 2" in plateau.explanation and "dead" in plateau.explanation
