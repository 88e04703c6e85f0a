"""Notebook views (_repr_html_) and Network.summary()."""

import numpy as np

import skipnet as sn
from skipnet import exercises


def test_summary_of_the_exercise():
    text = sn.Network.exercise().summary()
    lines = text.splitlines()
    assert lines[0].startswith("Network: 1 input, 3 layers, 1 skip")
    assert "layer 1 + layer 0 (skip 0, learned)" in text and "identity, no bias" in text
    assert lines[-1] == "total parameters: 4"


def test_summary_counts_every_parameter():
    net = sn.Network.mlp(2, (16, 16), 1, skip="first-to-output", seed=0)
    text = net.summary()
    assert "48" in text and "272" in text and "33" in text  # 16*2+16, 16*16+16, 16+1+16 (skip)
    assert net.n_parameters == 48 + 272 + 33 and text.endswith(f"total parameters: {net.n_parameters}")


def test_network_trace_history_views():
    net = sn.Network.exercise()
    html = net._repr_html_()
    assert "<table>" in html and "skip 0" in html
    t = net.trace([[1.0]], [[-3.0]])
    html = t._repr_html_()
    assert "<svg" in html and "yhat = 0.375" in html and "W2·h1 + S0·h0" in html
    X = np.random.default_rng(0).normal(size=(32, 2))
    hist = sn.Trainer(sn.Network.mlp(2, (4,), seed=0), loss="mse", lr=0.05, epochs=5).fit(X, X[:, :1],
                                                                                      validation=(X, X[:, :1]))
    html = hist._repr_html_()
    assert html.count("<polyline") == 2 and "validation loss" in html and "epochs run" in html


def test_check_view():
    c = exercises.check(exercises.seed_exercise(), {"z2": "0.275"})
    assert "0.275" in c._repr_html_() and "wrong" in c._repr_html_()
