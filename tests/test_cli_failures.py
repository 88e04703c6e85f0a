"""How the command line fails: one line on stderr naming the file or argument, exit status 2, never a
traceback; output paths refused before any training; a diverged training exits 1 and writes nothing to
--out. Each case here once ended in a traceback, a late failure or a silently overwritten model."""

import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open

import skipnet
import skipnet as sn
from skipnet.cli import main
from skipnet.cli import train as train_command

PACKAGE_ROOT = str(Path(skipnet.__file__).resolve().parent.parent)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root writes and reads past permission bits


def _run(args, cwd):
    """`python -m skipnet ARGS` in ``cwd``, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "skipnet", *args], check=False, capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT}, timeout=120)


def _fails(capsys, argv, code=2):
    """Run main(argv) in-process: it must return ``code`` with exactly one line on stderr."""
    try:
        got = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        got = exc.code
    out, err = capsys.readouterr()
    assert got == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return out, err


@pytest.fixture
def table(tmp_path):
    """A small regression table d.csv (columns a, b, y) in tmp_path."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(60, 3))
    values[:, 2] += values[:, 0] - 2 * values[:, 1]
    path = tmp_path / "d.csv"
    np.savetxt(path, values, delimiter=",", header="a,b,y", comments="", fmt="%.17g")
    return path


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything trains: the refusals below must come before any work."""
    def fit(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(sn.Trainer, "fit", fit)


def _classifier(tmp_path, table):
    model = tmp_path / "m.safetensors"
    assert main(["train", str(table), "--target", "y", "--loss", "cross_entropy", "--epochs", "1", "--quiet",
                 "--out", str(model)]) == 0
    return model


def _with_classes(model: Path, dest: Path, classes) -> Path:
    """A copy of ``model`` whose dataset metadata lists ``classes`` (a valid safetensors file)."""
    with safe_open(model, framework="numpy") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not iterable)
    dataset = json.loads(meta["dataset"])
    dataset["classes"] = classes
    meta["dataset"] = json.dumps(dataset)
    dest.write_bytes(safetensors.numpy.save(tensors, metadata=meta))
    return dest


# ------------------------------------------------------------------------------ unreadable input
def test_bad_input_files_are_named_in_one_line(tmp_path, table, capsys):
    np.savez(tmp_path / "archive.npz", a=np.zeros((4, 3)))
    os.replace(tmp_path / "archive.npz", tmp_path / "archive.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "binary.csv").write_bytes(b"a,y\n1,2\n\xff\xfe\x00\x01\n")
    (tmp_path / "binaryhead.csv").write_bytes(b"\xff\xd8\xff\xe0 JFIF")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "wide.csv").write_text("a," + "y" * 200_000 + "\n1,2\n")  # past csv's field size limit
    with open(tmp_path / "huge.npy", "wb") as f:  # claims 7 TiB, holds 64 bytes
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        f.write(b"\0" * 64)
    os.symlink(tmp_path / "loop.csv", tmp_path / "loop.csv")
    cases = {
        "archive.npy": "archive.npy: a .npz archive, not a .npy array",
        "empty.npy": "empty.npy: not a .npy file (it is empty)",
        "binary.csv": "binary.csv: not a UTF-8 text file (the 'utf-8' codec cannot decode byte 0xff",
        "binaryhead.csv": "binaryhead.csv: not a UTF-8 text file",
        "folder.csv": "folder.csv: it is a directory, not a regular file",
        "wide.csv": "wide.csv: not a readable CSV file (field larger than field limit",
        "huge.npy": "huge.npy: not a readable numeric .npy array",
        "loop.csv": "loop.csv: a symlink loop",
    }
    for name, message in cases.items():
        for argv in (["train", tmp_path / name, "--target", "y"], ["sweep", tmp_path / name, "--target", "y"]):
            _, err = _fails(capsys, argv)
            assert message in err and err.startswith(f"skipnet {argv[0]}: error: "), (name, err)
    model = _classifier(tmp_path, table)
    capsys.readouterr()
    for name, message in cases.items():
        _, err = _fails(capsys, ["predict", model, tmp_path / name])
        assert message in err, (name, err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_without_blocking(tmp_path, table, capsys):
    os.mkfifo(tmp_path / "pipe.csv")
    os.mkfifo(tmp_path / "pipe.safetensors")
    _, err = _fails(capsys, ["train", tmp_path / "pipe.csv", "--target", "y"])
    assert "DATA" in err and "pipe.csv: it is a FIFO (named pipe), not a regular file" in err
    _, err = _fails(capsys, ["predict", tmp_path / "pipe.safetensors", table])
    assert "MODEL" in err and "pipe.safetensors: it is a FIFO" in err


@pytest.mark.skipif(IS_ROOT or os.name != "posix", reason="root reads files whatever their permission bits")
def test_permission_denied_on_input_names_the_file(tmp_path, table, capsys):
    table.chmod(0)
    try:
        _, err = _fails(capsys, ["train", table, "--target", "y"])
    finally:
        table.chmod(0o644)
    assert f"{table}: Permission denied" in err


def test_class_label_past_float64_in_the_model_file(tmp_path, table, capsys):
    model = _classifier(tmp_path, table)
    with safe_open(model, framework="numpy") as f:
        n = len(json.loads(f.metadata()["dataset"])["classes"])
    for name, first in (("huge.safetensors", 10**400), ("inf.safetensors", float("inf")),
                        ("nan.safetensors", float("nan"))):
        bad = _with_classes(model, tmp_path / name, [first] + list(range(1, n)))
        _, err = _fails(capsys, ["predict", bad, table])
        assert f"{name}: the 'dataset' metadata is malformed (classes must list the {n} distinct finite" in err
    same = _with_classes(model, tmp_path / "twice.safetensors", [1.0] * n)
    assert "distinct" in _fails(capsys, ["predict", same, table])[1]


def test_bad_numbers_and_columns(tmp_path, table, capsys, no_training):
    cases = {
        ("train", table, "--target", "y", "--lr", "nan"): "lr must be finite",
        ("train", table, "--target", "y", "--lr", "1e400"): "lr must be finite",
        ("train", table, "--target", "y", "--momentum", "-1"): "momentum",
        ("train", table, "--target", "y", "--batch-size", "0"): "batch_size must be >= 1",
        ("train", table, "--target", "y", "--val-split", "nan"): "--val-split must lie in [0, 1)",
        ("train", table, "--target", "y", "--hidden", "4,0"): "--hidden",
        ("train", table, "--target", "y", "--epochs", "x"): "--epochs: invalid int value",
        ("train", table, "--target", "y", "--hidden", "100000000,100000000"): "memory",
        ("train", table, "--target", "nope"): "no column named 'nope'",
        ("sweep", table, "--target", "nope"): "no column named 'nope'",
        ("sweep", "--lrs", "0.1,nan"): "--lrs: expected finite numbers",
        ("sweep", "--epochs", "0"): "--epochs must be >= 1",
        ("sweep", "--seeds", "1:2:3"): "--seeds",
        ("trace", "--x", "1e400"): "--x: expected finite numbers",
        ("trace", "--weights", "1,nan,1,1"): "--weights: expected finite numbers",
    }
    for argv, message in cases.items():
        _, err = _fails(capsys, argv)
        assert message in err, (argv, err)


def test_values_past_the_float_range_name_their_file(tmp_path, table, capsys):
    near_limit = np.random.default_rng(0).normal(size=(10, 3)) * 1e300
    np.save(tmp_path / "near_limit.npy", near_limit)
    _, err = _fails(capsys, ["train", tmp_path / "near_limit.npy", "--target", "-1"])
    assert "near_limit.npy: the columns' means or standard deviations overflow" in err
    near_limit[1, 0] = np.inf
    np.save(tmp_path / "inf.npy", near_limit)
    _, err = _fails(capsys, ["train", tmp_path / "inf.npy", "--target", "-1"])
    assert "inf.npy: missing or non-finite value in row 2, column 1\n" in err
    model = tmp_path / "m32.safetensors"
    assert main(["train", str(table), "--target", "y", "--epochs", "1", "--quiet", "--dtype", "float32",
                 "--out", str(model)]) == 0
    np.save(tmp_path / "huge.npy", np.full((2, 2), 1e300))
    _, err = _fails(capsys, ["predict", model, tmp_path / "huge.npy"])
    assert "huge.npy: X has values too large for float32" in err


# ------------------------------------------------------------------------------ outputs, before any work
def test_unusable_outputs_are_refused_before_training(tmp_path, table, capsys, no_training, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    cases = {
        ("--out", "."): "--out .: it is a directory, not a regular file",
        ("--out", "folder"): "--out folder: it is a directory",
        ("--out", "missing/m.safetensors"): "--out missing/m.safetensors: the folder",
        ("--out", "file/m.safetensors"): "--out file/m.safetensors",
        ("--out", "d.csv"): "--out d.csv is the same file as DATA d.csv",
        ("--plot", "folder"): "--plot folder: it is a directory",
        ("--plot", "missing/loss.png"): "--plot missing/loss.png: the folder",
        ("--plot", "model.safetensors"): "--plot model.safetensors is the same file as --out model.safetensors",
        ("--plot", "loss.nope"): "--plot loss.nope: unknown image format 'nope'",
        ("--save-diverged", "model.safetensors"): "--save-diverged model.safetensors is the same file as --out",
        ("--save-diverged", "folder"): "--save-diverged folder: it is a directory",
    }
    plotting = importlib.util.find_spec("matplotlib") is not None
    for (option, path), message in cases.items():
        if path == "loss.nope" and not plotting:  # refused for want of matplotlib, still before training
            message = "--plot needs matplotlib"
        out, err = _fails(capsys, ["train", "d.csv", "--target", "y", option, path])
        assert message in err and out == "", (option, path, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "file", "folder"]


@pytest.mark.skipif(IS_ROOT or os.name != "posix", reason="root writes into read-only folders")
def test_unwritable_folder_is_refused_before_training(tmp_path, table, capsys, no_training):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for option in ("--out", "--plot"):
            _, err = _fails(capsys, ["train", table, "--target", "y", option, locked / "x.png"])
            assert f"{option} {locked / 'x.png'}" in err and "not writable" in err
    finally:
        locked.chmod(0o700)


def test_a_folder_that_refuses_new_files_is_found_before_training(tmp_path, table, capsys, no_training,
                                                                 monkeypatch):
    """Permission bits do not tell everything (root, read-only mounts): a file is created and removed."""
    def mkstemp(*args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr("skipnet.cli._paths.tempfile.mkstemp", mkstemp)
    _, err = _fails(capsys, ["train", table, "--target", "y", "--out", tmp_path / "m.safetensors"])
    assert f"--out {tmp_path / 'm.safetensors'}: cannot create a file in {tmp_path} (Read-only file system)" in err


def test_predict_sweep_demo_bench_check_outputs_first(tmp_path, table, capsys, monkeypatch):
    model = _classifier(tmp_path, table)
    before = model.read_bytes(), table.read_bytes()
    for target, message in ((model, "is the same file as MODEL"), (table, "is the same file as DATA"),
                            (tmp_path, "it is a directory")):
        _, err = _fails(capsys, ["predict", model, table, "--out", target])
        assert message in err
    assert (model.read_bytes(), table.read_bytes()) == before

    def never(*args, **kwargs):
        raise AssertionError("the long part started")
    for module, name in (("skipnet.sweep", "sweep"), ("skipnet.demo", "run_demo"), ("skipnet._bench", "run")):
        monkeypatch.setattr(importlib.import_module(module), name, never)
    assert "--out" in _fails(capsys, ["sweep", "--out", tmp_path])[1]
    assert "--out" in _fails(capsys, ["sweep", "--out", tmp_path / "no" / "runs.csv"])[1]
    assert "is not a folder" in _fails(capsys, ["demo", "--out", table])[1]
    assert "--json" in _fails(capsys, ["bench", "--json", tmp_path])[1]


def test_from_a_real_process(tmp_path, table):
    """As a user runs it: exit 2, one line naming the file, no traceback."""
    np.savez(tmp_path / "a.npz", a=np.zeros((3, 3)))
    os.replace(tmp_path / "a.npz", tmp_path / "a.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00binary")
    for args, named in ((["train", "a.npy", "--target", "0"], "a.npy"),
                        (["train", "empty.npy", "--target", "0"], "empty.npy"),
                        (["train", "bin.csv", "--target", "y"], "bin.csv"),
                        (["train", "d.csv", "--target", "y", "--out", "."], "--out ."),
                        (["predict", "d.csv", "d.csv"], "d.csv")):
        proc = _run(args, tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and named in proc.stderr, proc.stderr
        assert proc.stdout == ""


def test_interrupt_exits_130_in_one_line(tmp_path, table, capsys, monkeypatch):
    def fit(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(sn.Trainer, "fit", fit)
    _, err = _fails(capsys, ["train", table, "--target", "y", "--quiet", "--out", tmp_path / "m.safetensors"],
                    code=130)
    assert err == "skipnet train: error: interrupted\n"
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")
def test_ctrl_c_during_training_exits_130_and_writes_nothing(tmp_path, table):
    proc = subprocess.Popen([sys.executable, "-m", "skipnet", "train", "d.csv", "--target", "y",
                             "--epochs", "1000000"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})
    try:
        assert proc.stdout.readline().startswith("epoch 1/1000000")  # training has started
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err == "skipnet train: error: interrupted\n", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_error_messages_are_one_line_whatever_the_exception_says(capsys, monkeypatch):
    def run(args):
        raise OSError(5, "Input/output error", "disk.csv")
    monkeypatch.setattr("skipnet.cli.trace.run", run)
    assert _fails(capsys, ["trace"])[1] == "skipnet trace: error: disk.csv: Input/output error\n"

    def run(args):
        raise ValueError("first line\nsecond line")
    monkeypatch.setattr("skipnet.cli.trace.run", run)
    assert _fails(capsys, ["trace"])[1] == "skipnet trace: error: first line second line\n"


# ------------------------------------------------------------------------------ diverged training
def _diverge(table, *extra):
    return ["train", str(table), "--target", "y", "--loss", "mse", "--lr", "1000", "--epochs", "5", "--quiet",
            *extra]


def test_diverged_training_exits_1_and_keeps_the_previous_model(tmp_path, table):
    assert _run(["train", "d.csv", "--target", "y", "--epochs", "2", "--quiet"], tmp_path).returncode == 0
    model = tmp_path / "model.safetensors"
    before = model.read_bytes()
    proc = _run(_diverge("d.csv"), tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("skipnet train: error: training diverged at step ")
    assert "model.safetensors not written" in proc.stderr and "--save-diverged" in proc.stderr
    assert "stopped early: diverged" in proc.stdout and "model saved" not in proc.stdout
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "model.safetensors"]


def test_save_diverged_writes_the_weights_elsewhere(tmp_path, table, capsys):
    out, kept = tmp_path / "m.safetensors", tmp_path / "diverged.safetensors"
    _fails(capsys, _diverge(table, "--out", out, "--save-diverged", kept), code=1)
    assert not out.exists()
    net = sn.Network.load(kept)  # the weights at the stop: finite, loadable, and predict reads the file
    assert all(np.isfinite(v).all() for v in net.parameters().values())
    assert main(["predict", str(kept), str(table), "--out", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").read_text().startswith("y\n")


def test_plot_of_a_diverged_training_is_still_written(tmp_path, table, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    _fails(capsys, _diverge(table, "--out", tmp_path / "m.safetensors", "--plot", png), code=1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "m.safetensors").exists()


def test_a_divergence_warning_alone_counts(monkeypatch):
    """A History that recorded a divergence warning fails even if it stopped for another reason."""
    warning = types.SimpleNamespace(kind="divergence", message="diverged at step 3 (epoch 0): the loss is nan")
    other = types.SimpleNamespace(kind="plateau", message="flat")
    assert train_command._divergence(types.SimpleNamespace(stopped_reason="callback", warnings=[other, warning])) \
        == warning.message
    assert train_command._divergence(types.SimpleNamespace(stopped_reason="diverged at step 1", warnings=[])) \
        == "diverged at step 1"
    assert train_command._divergence(types.SimpleNamespace(stopped_reason=None, warnings=[other])) is None


def test_train_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--save-diverged PATH" in text and "1 when training diverged" in text
    assert "nothing is written to --out" in text
