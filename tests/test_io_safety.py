"""Model files under attack: hand-made headers that lie (lengths, offsets, overlaps, dtypes, shapes, an
architecture far larger than the file) are refused with a ValueError naming the file, before anything
of the declared size is allocated; and a save killed (SIGKILL) at any moment leaves the old file or the
new one at the target path, never a partial one."""

import json
import os
import signal
import sys
import time
import tracemalloc

import numpy as np
import pytest
from safetensors import safe_open

import skipnet as sn
from skipnet.cli import main as cli_main


def _parts(path):
    """(header dict, data bytes) of a safetensors file."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _raw(header, data, length=None) -> bytes:
    text = json.dumps(header).encode()
    return (len(text) if length is None else length).to_bytes(8, "little") + text + data


@pytest.fixture
def model(tmp_path):
    net = sn.Network.mlp(3, (5, 4), 2, skip="first-to-output", seed=0)
    return net, net.save(tmp_path / "model.safetensors")


def _refused(tmp_path, content: bytes, match: str = "", max_bytes: int = 2_000_000):
    """load(content) raises a ValueError naming the file, allocating less than ``max_bytes`` meanwhile."""
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=f"bad.safetensors.*{match}") as exc:
            sn.Network.load(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < max_bytes, f"load allocated {peak} bytes before refusing the file: {exc.value}"
    return str(exc.value)


def _edit(header, name, **changes):
    return {**header, name: {**header[name], **changes}}


# ------------------------------------------------------------------ the safetensors layer
def test_lying_header_lengths(model, tmp_path):
    _, path = model
    header, data = _parts(path)
    size = len(json.dumps(header))
    for length in [2**64 - 1, 2**63, 100_000_001, size + len(data) + 1]:  # past the file or the 100 MB cap
        _refused(tmp_path, _raw(header, data, length), "header claims")
    for length in [0, 1, size - 1]:  # cuts the JSON short
        _refused(tmp_path, _raw(header, data, length))


@pytest.mark.parametrize("offsets", [[432, 10**12], [432, 2**64 - 1], [600, 700], [512, 432], [-8, 80],
                                     [432.0, 512.0], ["432", "512"], [432], [432, 512, 600]])
def test_offsets_out_of_range_or_malformed(model, tmp_path, offsets):
    _, path = model
    header, data = _parts(path)
    _refused(tmp_path, _raw(_edit(header, "skips.0.weight", data_offsets=offsets), data))


def test_overlapping_and_gapped_tensors(model, tmp_path):
    _, path = model
    header, data = _parts(path)
    # two tensors on the same bytes
    _refused(tmp_path, _raw(_edit(header, "layers.1.bias", data_offsets=[0, 32]), data))
    # overlapping by half
    _refused(tmp_path, _raw(_edit(header, "layers.1.bias", data_offsets=[140, 172]), data))
    # a gap of unclaimed bytes between tensors, and bytes after the last tensor
    _refused(tmp_path, _raw(_edit(header, "skips.0.weight", data_offsets=[440, 520]), data + bytes(8)))
    _refused(tmp_path, _raw(header, data + bytes(8)))


@pytest.mark.parametrize("dtype", ["I64", "U64", "BF16", "F16", "F8_E4M3", "BOOL", "X99", "", 5])
def test_wrong_or_unknown_dtypes(model, tmp_path, dtype):
    _, path = model
    header, data = _parts(path)
    _refused(tmp_path, _raw(_edit(header, "layers.0.weight", dtype=dtype), data))


@pytest.mark.parametrize("shape", [[2**31, 2**31], [2**62, 4], [2**64 - 1], [-5, 3], [5, 3, 1, 0], [15],
                                   [3, 5], ["5", "3"], [5.0, 3.0]])
def test_lying_or_huge_shapes_are_refused_before_allocation(model, tmp_path, shape):
    _, path = model
    header, data = _parts(path)
    _refused(tmp_path, _raw(_edit(header, "layers.0.weight", shape=shape), data))


@pytest.mark.parametrize("header", [[], "x", None, 5, {"__metadata__": {"skipnet": 5}},
                                    {"__metadata__": []}, {"t": "not a tensor"}])
def test_headers_of_the_wrong_shape(tmp_path, header):
    _refused(tmp_path, _raw(header, b""))


def test_duplicate_tensor_names(model, tmp_path):
    _, path = model
    header, data = _parts(path)
    text = json.dumps(header)
    entry = json.dumps({"layers.0.bias": header["layers.0.bias"]})[1:-1]
    content = text[:-1] + ", " + entry + "}"  # the same name twice in the JSON object
    raw = len(content).to_bytes(8, "little") + content.encode() + data
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(raw)
    try:  # serde keeps one entry: then the file is the original, or it is refused
        loaded = sn.Network.load(bad)
    except ValueError as exc:
        assert "bad.safetensors" in str(exc)
    else:
        np.testing.assert_array_equal(loaded.internals.params, model[0].internals.params)


# ------------------------------------------------------------------ skipnet's metadata
def _metadata_edit(path, change):
    header, data = _parts(path)
    meta = dict(header["__metadata__"])
    meta["skipnet"] = change(meta["skipnet"])
    return _raw({**header, "__metadata__": meta}, data)


def _architecture_edit(path, change):
    def apply(text):
        value = json.loads(text)
        change(value["architecture"])
        return json.dumps(value)
    return _metadata_edit(path, apply)


@pytest.mark.parametrize("change, message", [
    # a few hundred bytes declaring 400 million (3 GB) or 2**31 x 2**31 parameters
    (lambda a: a.update(n_inputs=20_000, layers=[dict(a["layers"][0], units=20_000)] + a["layers"][1:]),
     "declares 400140014 parameters, but the file holds 64 values"),
    (lambda a: a.update(n_inputs=2**31 - 1, layers=[dict(a["layers"][0], units=2**31 - 1)] + a["layers"][1:]),
     r"declares 46116860\d{11} parameters, but the file holds 64 values"),
    (lambda a: a.update(layers=[{"units": 1, "activation": "identity", "bias": False}] * 100_000),
     "declares 100000 layers, but the file holds only 7 tensors"),
])
def test_huge_declared_architectures_are_refused_before_allocation(model, tmp_path, change, message):
    _, path = model
    started = time.perf_counter()
    _refused(tmp_path, _architecture_edit(path, change), message, max_bytes=64_000_000)  # the JSON itself
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("text", ["[" * 100_000, '{"format_version": 1, "architecture": ' + "9" * 5000 + "}",
                                  "NaN", '{"format_version": 1e999}', "\ud800"],
                         ids=["deep", "long-int", "nan", "huge-float", "surrogate"])
def test_hostile_json_in_the_metadata(model, tmp_path, text):
    # nesting past the stack, an integer past Python's digit limit, non-JSON, a lone surrogate
    _, path = model
    _refused(tmp_path, _metadata_edit(path, lambda _: text))


# ------------------------------------------------------------------ SIGKILL during save
_KILLS = 100


@pytest.mark.skipif(not hasattr(os, "fork"), reason="kills forked children (POSIX)")
def test_save_killed_at_random_moments_leaves_old_or_new_file(tmp_path):
    """A child process saves two networks over the same path in turns; it is killed (SIGKILL) after a
    random delay spanning every phase of a save (serialising, writing, fsync, rename, folder fsync), 100
    times. After every kill the path loads, bit for bit, as one of the two networks."""
    old = sn.Network.mlp(64, (256, 256), 8, skip="first-to-output", seed=1)  # ~600 KB files
    new = sn.Network.mlp(64, (256, 256), 8, skip="first-to-output", seed=2)
    target = tmp_path / "model.safetensors"
    old.save(target)
    started = time.perf_counter()
    for _ in range(5):
        new.save(tmp_path / "timing.safetensors")
    save_time = (time.perf_counter() - started) / 5
    (tmp_path / "timing.safetensors").unlink()
    rng = np.random.default_rng(0)
    outcomes = {"old": 0, "new": 0}
    interrupted = 0  # kills that left a temporary file behind: they landed inside a write
    for _ in range(_KILLS):
        pid = os.fork()
        if pid == 0:  # the child: save forever, new and old in turns
            try:
                while True:
                    new.save(target)
                    old.save(target)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0, 4 * save_time))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        loaded = sn.Network.load(target)  # never a partial file: a partial one would not load
        if np.array_equal(loaded.internals.params, old.internals.params):
            outcomes["old"] += 1
        else:
            np.testing.assert_array_equal(loaded.internals.params, new.internals.params)
            outcomes["new"] += 1
        leftovers = [p for p in tmp_path.iterdir() if p != target]
        interrupted += bool(leftovers)
        for p in leftovers:  # a killed process cannot clean up its temporary file
            p.unlink()
    print(f"\n{_KILLS} kills: target held the old file {outcomes['old']} times, the new one "
          f"{outcomes['new']} times; {interrupted} kills landed inside a write (save took {save_time * 1e3:.2f} ms)",
          file=sys.stderr)
    assert outcomes["old"] + outcomes["new"] == _KILLS
    assert interrupted > 0 and min(outcomes.values()) > 0  # the kills did land in every phase


# ------------------------------------------------------------------ what skipnet writes, and the CLI reads
def test_save_refuses_weights_that_load_would_refuse(tmp_path):
    net = sn.Network.exercise()
    net.internals.params[1] = np.inf  # only reachable by writing the buffer directly
    with pytest.raises(ValueError, match=r"bad.safetensors: tensor 'layers.1.weight' contains NaN or infinity"):
        net.save(tmp_path / "bad.safetensors")
    assert not any(tmp_path.iterdir())


def _trained_classifier(tmp_path):
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.normal(size=(30, 3)), rng.integers(0, 3, 30)])
    np.savetxt(tmp_path / "d.csv", table, delimiter=",", header="a,b,c,t", comments="")
    assert cli_main(["train", str(tmp_path / "d.csv"), "--target", "t", "--loss", "cross_entropy", "--epochs", "1",
                 "--quiet", "--out", str(tmp_path / "m.safetensors")]) == 0
    return tmp_path / "m.safetensors", tmp_path / "d.csv"


@pytest.mark.parametrize("change", [
    {"classes": [1.0]}, {"classes": None}, {"classes": [[1], [2], [3]]}, {"classes": ["a", "b", "c"]},
    {"features": 5}, {"features": [{}, {}, {}]}, {"target_column": 99, "named_columns": False},
    {"target_column": "x", "named_columns": False}, {"n_columns": "4"}, {"loss": "hinge"},
    {"named_columns": "yes"}, "[" * 100_000, "null",
], ids=lambda c: str(c)[:30])
def test_predict_refuses_tampered_dataset_metadata(tmp_path, capsys, change):
    """Before the fix, four of these ended in an IndexError traceback and three printed predictions."""
    model, data = _trained_classifier(tmp_path)
    header, raw = _parts(model)
    meta = dict(header["__metadata__"])
    meta["dataset"] = change if isinstance(change, str) else json.dumps({**json.loads(meta["dataset"]), **change})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(_raw({**header, "__metadata__": meta}, raw))
    with safe_open(bad, framework="numpy") as f:  # a valid safetensors file, loadable as a network
        assert f.metadata()["dataset"] == meta["dataset"]
    capsys.readouterr()
    assert cli_main(["predict", str(bad), str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.safetensors: the 'dataset' metadata is malformed" in err


def test_train_refuses_columns_whose_scale_overflows(tmp_path, capsys):
    """Before the fix: a feature near 1e300 was silently dropped (its scale overflowed to inf), and a
    target near 1e300 gave a model file with infinite weights that predict then refused."""
    rng = np.random.default_rng(0)
    for column in (0, -1):
        table = rng.normal(size=(20, 3))
        table[:, column] *= 1e300
        np.save(tmp_path / "t.npy", table)
        assert cli_main(["train", str(tmp_path / "t.npy"), "--target", "-1", "--epochs", "1", "--quiet",
                     "--out", str(tmp_path / "m.safetensors")]) == 2
        assert "standard deviations overflow" in capsys.readouterr().err
        assert not (tmp_path / "m.safetensors").exists()
