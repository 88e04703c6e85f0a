"""`skipnet train` and `skipnet predict`: end to end from the command line, progress display, errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import skipnet
import skipnet as sn
from skipnet.cli import main

# the directory holding the skipnet package under test (installed or built in place)
PACKAGE_ROOT = str(Path(skipnet.__file__).resolve().parent.parent)


def _run(args, cwd):
    """Run `python -m skipnet ARGS` in ``cwd`` (outside the source tree); the caller checks the code."""
    return subprocess.run([sys.executable, "-m", "skipnet", *args], check=False, capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT}, timeout=120)


def _data(n=400, seed=0):
    """Columns a (large scale), y (the target, far from 0), b, c: y depends nonlinearly on a, b, c."""
    rng = np.random.default_rng(seed)
    a = rng.normal(50.0, 20.0, n)
    b = rng.uniform(0.0, 1.0, n)
    c = rng.normal(size=n)
    y = 200.0 + 0.5 * a + 10.0 * np.sin(6.0 * b) + 5.0 * np.abs(c) + rng.normal(0, 0.5, n)
    return {"a": a, "y": y, "b": b, "c": c}


def _write_csv(path, columns):
    names = list(columns)
    rows = np.column_stack([columns[n] for n in names])
    np.savetxt(path, rows, delimiter=",", header=",".join(names), comments="", fmt="%.17g")
    return path


def _read_csv(path):
    text = Path(path).read_text().splitlines()
    return text[0].split(","), np.array([[float(v) for v in line.split(",")] for line in text[1:]])


def test_train_then_predict_csv_end_to_end(tmp_path):
    data = _data()
    _write_csv(tmp_path / "train.csv", data)
    train = _run(["train", "train.csv", "--target", "y", "--hidden", "16,16", "--skip", "first-to-output",
                  "--loss", "l1", "--optimizer", "sgd", "--lr", "0.01", "--epochs", "40", "--batch-size", "32",
                  "--val-split", "0.2", "--out", "model.safetensors"], tmp_path)
    assert train.returncode == 0, train.stderr
    lines = train.stdout.splitlines()
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epochs) == 40 and epochs[0].startswith("epoch 1/40  loss ") and "val loss" in epochs[0]
    assert f"model saved to {tmp_path / 'model.safetensors'}" in lines
    assert lines[-2].startswith("trained 40 epochs (400 steps): l1 loss")
    first, last = (float(ln.split("loss ")[1].split()[0]) for ln in (epochs[0], epochs[-1]))
    assert last < 0.6 * first  # the loss falls (shown in the units of the target)

    # features only, in another column order; and the training file itself (the target is ignored)
    _write_csv(tmp_path / "features.csv", {k: data[k] for k in ("c", "b", "a")})
    for source in ("features.csv", "train.csv"):
        out = _run(["predict", "model.safetensors", source, "--out", f"pred_{source}"], tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"400 predictions saved to pred_{source}"
    header, pred = _read_csv(tmp_path / "pred_features.csv")
    _, pred_again = _read_csv(tmp_path / "pred_train.csv")
    assert header == ["y"] and pred.shape == (400, 1)
    assert np.array_equal(pred, pred_again)
    # better than the best constant, by far
    mae, baseline = np.abs(pred[:, 0] - data["y"]).mean(), np.abs(data["y"] - np.median(data["y"])).mean()
    assert mae < 0.4 * baseline
    # the scaling is folded into the weights: the file alone maps raw columns to the raw target
    net = sn.Network.load(tmp_path / "model.safetensors")
    raw = net.predict(np.column_stack([data["a"], data["b"], data["c"]]))
    assert np.array_equal(raw, pred)


def test_predict_prints_csv_without_out(tmp_path):
    data = _data(60)
    _write_csv(tmp_path / "d.csv", data)
    assert main(["train", str(tmp_path / "d.csv"), "--target", "y", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path / "m.safetensors")]) == 0
    out = _run(["predict", "m.safetensors", "d.csv"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "y" and len(lines) == 61
    float(lines[1])


def test_npy_data_with_a_column_index(tmp_path, capsys):
    data = _data(200)
    table = np.column_stack([data["a"], data["b"], data["c"], data["y"]])
    np.save(tmp_path / "d.npy", table)
    np.save(tmp_path / "x.npy", table[:, :3])
    model = str(tmp_path / "m.safetensors")
    assert main(["train", str(tmp_path / "d.npy"), "--target", "-1", "--loss", "mse", "--optimizer", "adam",
                 "--lr", "0.01", "--epochs", "30", "--quiet", "--out", model, "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/" not in out and "trained 30 epochs" in out and "mse loss" in out
    for source, dest in (("d.npy", "p1.csv"), ("x.npy", "p2.csv")):
        assert main(["predict", model, str(tmp_path / source), "--out", str(tmp_path / dest)]) == 0
    header, p1 = _read_csv(tmp_path / "p1.csv")
    _, p2 = _read_csv(tmp_path / "p2.csv")
    assert header == ["prediction"] and np.array_equal(p1, p2)
    assert np.abs(p1[:, 0] - data["y"]).mean() < 0.5 * np.abs(data["y"] - data["y"].mean()).mean()


@pytest.mark.parametrize("loss, labels", [("bce", (2.0, 5.0)), ("cross_entropy", (10.0, 20.0, 30.0))])
def test_classification_predicts_labels(tmp_path, capsys, loss, labels):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    k = len(labels)
    cls = np.digitize(np.arctan2(X[:, 1], X[:, 0]), np.linspace(-np.pi, np.pi, k + 1)[1:-1])
    data = {"u": X[:, 0], "v": X[:, 1], "label": np.asarray(labels)[cls]}
    _write_csv(tmp_path / "c.csv", data)
    model = str(tmp_path / "m.safetensors")
    assert main(["train", str(tmp_path / "c.csv"), "--target", "label", "--loss", loss, "--optimizer", "adam",
                 "--lr", "0.01", "--epochs", "40", "--quiet", "--out", model]) == 0
    assert main(["predict", model, str(tmp_path / "c.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    header, pred = _read_csv(tmp_path / "p.csv")
    assert header == ["label"] and set(np.unique(pred)) <= set(labels)
    assert (pred[:, 0] == data["label"]).mean() > 0.85


def test_plain_lines_when_tqdm_is_missing_on_a_terminal(tmp_path, capsys, monkeypatch):
    _write_csv(tmp_path / "d.csv", _data(50))
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["train", str(tmp_path / "d.csv"), "--target", "y", "--epochs", "3",
                 "--out", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert out.count("epoch ") == 3 and "epoch 3/3  loss" in out


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_progress_bar_on_a_terminal(tmp_path):
    pytest.importorskip("tqdm")
    import fcntl
    import pty
    import struct
    import termios

    _write_csv(tmp_path / "d.csv", _data(100))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "skipnet", "train", "d.csv", "--target", "y",
                             "--epochs", "7"], stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "epoch: 100%" in text and "7/7" in text and "val loss" in text
    assert "epoch 1/7" not in text  # a bar, not plain lines
    assert "model saved to" in text


def test_plot_of_the_loss_curves(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    _write_csv(tmp_path / "d.csv", _data(50))
    png = tmp_path / "loss.png"
    assert main(["train", str(tmp_path / "d.csv"), "--target", "y", "--epochs", "3", "--quiet",
                 "--out", str(tmp_path / "m.safetensors"), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"loss plot saved to {png}" in capsys.readouterr().out


def test_no_standardize_and_residual(tmp_path, capsys):
    data = _data(80)
    _write_csv(tmp_path / "d.csv", data)
    model = str(tmp_path / "m.safetensors")
    assert main(["train", str(tmp_path / "d.csv"), "--target", "y", "--hidden", "3,3", "--skip", "residual",
                 "--epochs", "2", "--quiet", "--no-standardize", "--out", model]) == 0
    net = sn.Network.load(model)
    assert net.skips == (sn.Skip(-1, 1, identity=True),)
    # with standardisation, an identity skip from the input cannot absorb the scaling: said up front
    assert main(["train", str(tmp_path / "d.csv"), "--target", "y", "--hidden", "3,3", "--skip", "residual",
                 "--epochs", "2", "--quiet", "--out", model]) == 2
    assert "--no-standardize" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- errors
def _error(capsys, argv):
    """Run main(argv); it must fail with exit code 2 and exactly one line on stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_errors_are_one_line(tmp_path, capsys):
    data = _data(30)
    csv = str(_write_csv(tmp_path / "d.csv", data))
    model = str(tmp_path / "m.safetensors")
    assert main(["train", csv, "--target", "y", "--epochs", "1", "--quiet", "--out", model]) == 0
    capsys.readouterr()
    (tmp_path / "text.csv").write_text("a,y\n1,2\nx,3\n")
    (tmp_path / "gap.csv").write_text("a,y\n1,2\n3\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "nan.csv").write_text("a,y\n1,nan\n2,3\n")
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{}")
    _write_csv(tmp_path / "missing.csv", {"a": data["a"], "c": data["c"]})
    _write_csv(tmp_path / "extra.csv", {**data, "id": np.arange(30.0)})
    np.save(tmp_path / "wrong.npy", np.zeros((3, 7)))
    cases = {
        ("train", csv, "--target", "nope"): "no column named 'nope'",
        ("train", csv): "required: --target",
        ("train", csv, "--target", "y", "--hidden", "3,x"): "--hidden",
        ("train", csv, "--target", "y", "--hidden", "8"): "needs at least two hidden layers",
        ("train", csv, "--target", "y", "--val-split", "1"): "--val-split",
        ("train", csv, "--target", "y", "--epochs", "0"): "--epochs",
        ("train", csv, "--target", "y", "--lr", "-1"): "lr must be > 0",
        ("train", csv, "--target", "y", "--loss", "bce"): "exactly 2 values",
        ("train", str(tmp_path / "absent.csv"), "--target", "y"): "no such file",
        ("train", str(tmp_path / "d.txt"), "--target", "y"): "expected a .csv file",
        ("train", str(tmp_path / "text.csv"), "--target", "y"): "text.csv: row 2 (line 3 of the file), column 1:",
        ("train", str(tmp_path / "gap.csv"), "--target", "y"): "gap.csv",
        ("train", str(tmp_path / "empty.csv"), "--target", "y"): "empty",
        ("train", str(tmp_path / "nan.csv"), "--target", "y"): "non-finite value in row 1, column 2 ('y')",
        ("train", str(tmp_path / "wrong.npy"), "--target", "y"): "column index",
        ("train", str(tmp_path / "wrong.npy"), "--target", "9"): "out of range",
        ("predict", model, str(tmp_path / "missing.csv")): r"missing feature column(s) ['b']",
        ("predict", model, str(tmp_path / "extra.csv")): "['id'] were not features",
        ("predict", model, str(tmp_path / "wrong.npy")): "expected 3 feature columns (or 4 with the target)",
        ("predict", str(tmp_path / "bad.safetensors"), csv): "bad.safetensors",
        ("predict", csv, csv): "not a safetensors file",
    }
    for argv, message in cases.items():
        err = _error(capsys, list(argv))
        assert message in err, (argv, err)
        assert err.startswith(f"skipnet {argv[0]}: error: ")


def test_error_from_a_real_process_has_no_traceback(tmp_path):
    out = _run(["predict", "nothing.safetensors", "nothing.csv"], tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "nothing.safetensors" in out.stderr
