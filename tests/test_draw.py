"""Trace.draw: the traced step as a computation graph holding the step's values (SVG always, PNG with
matplotlib), and `skipnet trace --draw`."""

import xml.etree.ElementTree as ET

import pytest

import skipnet as sn
from skipnet.cli import main

SVG = "{http://www.w3.org/2000/svg}"


def texts(path):
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")], root


def test_svg_holds_the_step(tmp_path):
    t = sn.Network.exercise().trace([[1.0]], [[-3.0]], loss="l1")
    out = t.draw(tmp_path / "step.svg")
    words, root = texts(out)
    for needle in ["x = 1", "z0 = 0.5", "h0 = 0.5", "z1 = 0.25", "h1 = 0.25", "yhat = 0.375", "L = 3.375",
                   "dL/dz0 = 0.75", "dL/dh0 = 0.75", "dL/dyhat = 1"]:
        assert needle in words, needle
    edge_labels = " ".join(words)
    for needle in ["W0 = 0.5", "dL/dW0 = 0.75", "dL/dW1 = 0.25", "dL/dW2 = 0.25", "S0 = 0.5", "dL/dS0 = 0.5"]:
        assert needle in edge_labels, needle
    classes = [g.get("class") for g in root.iter(f"{SVG}g")]
    assert not any("dead" in c for c in classes)
    assert len([p for p in root.iter(f"{SVG}path") if "skip" in (p.get("class") or "")]) == 1


def test_dead_units_are_marked(tmp_path):
    net = sn.Network.exercise()
    net.trace([[1.0]], [[-3.0]], loss="l1").apply(lr=1.0)
    words, root = texts(net.trace([[1.0]], [[-3.0]], loss="l1").draw(tmp_path / "stuck.svg"))
    dead = [g for g in root.iter(f"{SVG}g") if "dead" in (g.get("class") or "")]
    assert len(dead) == 4  # z0, h0, z1, h1
    assert "z0 = -0.25" in words and "L = 3" in words and words.count("dead ReLU") == 4


def test_a_wide_batch_trace_draws(tmp_path):
    net = sn.Network.mlp(2, (3, 3), 1, skip="first-to-output", seed=0)
    words, _ = texts(net.trace([[1.0, 2.0], [0.0, 1.0]], [[1.0], [0.0]], loss="mse").draw(tmp_path / "w.svg"))
    assert "x[1] = 2" in words and any(w.startswith("z1[2] = ") for w in words)
    assert any("2 samples" in w for w in words)


def test_bad_extension(tmp_path):
    t = sn.Network.exercise().trace([[1.0]], [[-3.0]])
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        t.draw(tmp_path / "step.gif")
    assert not (tmp_path / "step.gif").exists()


def test_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = sn.Network.exercise().trace([[1.0]], [[-3.0]]).draw(tmp_path / "step.png")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_cli_trace_draw(tmp_path, capsys):
    target = tmp_path / "step.svg"
    assert main(["trace", "--draw", str(target)]) == 0
    assert "drew step 1" in capsys.readouterr().out
    assert "yhat = 0.375" in texts(target)[0]
    assert "L = 3" in texts(tmp_path / "step-step2.svg")[0]
    assert main(["trace", "--draw", str(tmp_path / "x.bmp")]) == 2
    assert "expected a .svg or .png" in capsys.readouterr().err
