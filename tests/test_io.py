"""Model files: save -> load round trips bit for bit, bad files fail clearly, PyTorch reads and writes them."""

import json
import os
import pickle

import numpy as np
import pytest
import safetensors.numpy
from _helpers import assert_close, random_architecture
from safetensors import safe_open

import skipnet as sn
from skipnet import _modelfile, io

CASES = 12


def _networks(dtype):
    """Every kind of architecture: the exercise, the mlp variants and random ones (identity and learned
    skips, from the input and from hidden layers, with and without biases)."""
    nets = [sn.Network.exercise(dtype=dtype),
            sn.Network.mlp(3, (8, 8), 2, skip="first-to-output", dtype=dtype, seed=1),
            sn.Network.mlp(4, (4, 4, 6, 4), 1, skip="residual", dtype=dtype, seed=2, init="he"),
            sn.Network.mlp(5, 7, 3, dtype=dtype, seed=3)]
    rng = np.random.default_rng(0)
    for _ in range(CASES):
        n_inputs, layers, skips = random_architecture(rng)
        nets.append(sn.Network(n_inputs, layers, skips, dtype=dtype, seed=int(rng.integers(2**31))))
    return nets


def _contents(path):
    """(tensors, metadata) of a safetensors file."""
    with safe_open(path, framework="numpy") as f:
        names = f.keys()  # the handle itself is not iterable
        return {k: f.get_tensor(k) for k in names}, dict(f.metadata())


def _rewrite(path, tensors, metadata):
    """A file with these tensors and metadata, written without skipnet's checks."""
    safetensors.numpy.save_file(tensors, path, metadata=metadata)
    return path


def _with_header(metadata, change):
    header = json.loads(metadata["skipnet"])
    change(header)
    return {**metadata, "skipnet": json.dumps(header)}


@pytest.fixture
def saved(tmp_path):
    net = sn.Network.mlp(3, (5, 4), 2, skip="first-to-output", seed=0)
    path = net.save(tmp_path / "model.safetensors")
    return net, path


# ------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("index", range(CASES + 4))
def test_save_load_is_bit_exact(tmp_path, dtype, index):
    net = _networks(dtype)[index]
    path = net.save(tmp_path / "net.safetensors")
    X = np.random.default_rng(index).normal(size=(33, net.n_inputs))
    for backend in ("cython", "numpy"):
        back = sn.Network.load(path, backend=backend)
        assert (back.layers, back.skips, back.dtype, back.init) == (net.layers, net.skips, net.dtype, net.init)
        assert back.backend == backend
        assert back.internals.params.tobytes() == net.internals.params.tobytes()
        if backend == net.backend:
            assert back.predict(X).tobytes() == net.predict(X).tobytes()


def test_file_layout_is_pytorch_names_and_json_metadata(saved):
    net, path = saved
    tensors, metadata = _contents(path)
    assert set(tensors) == set(net.parameter_names)
    for name, value in net.parameters().items():
        assert tensors[name].dtype == net.dtype and np.array_equal(tensors[name], value)
    header = json.loads(metadata["skipnet"])
    assert header["format_version"] == 1
    assert header["architecture"] == io.architecture(net)
    assert header["architecture"]["skips"] == [{"src": 0, "dst": 2, "identity": False}]
    assert "backend" not in json.dumps(header["architecture"])


def test_user_metadata_round_trips(tmp_path):
    net = sn.Network.exercise()
    path = net.save(tmp_path / "m.safetensors", metadata={"features": '["a"]', "note": "x"})
    assert io.read_metadata(path) == {"features": '["a"]', "note": "x"}
    assert io.read_architecture(path) == io.architecture(net)
    with pytest.raises(ValueError, match="reserved"):
        net.save(tmp_path / "m2.safetensors", metadata={"skipnet": "x"})
    with pytest.raises(TypeError, match="str to str"):
        net.save(tmp_path / "m2.safetensors", metadata={"n": 1})
    with pytest.raises(TypeError, match="skipnet.Network"):
        io.save("not a net", tmp_path / "m3.safetensors")


def test_loaded_network_trains_like_the_original(tmp_path, dtype):
    net = sn.Network.mlp(2, (6, 6), 1, skip="first-to-output", dtype=dtype, seed=4)
    back = sn.Network.load(net.save(tmp_path / "n.safetensors"))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 1))
    h1 = sn.Trainer(net, loss="l1", lr=0.05, epochs=3, seed=0).fit(X, y)
    h2 = sn.Trainer(back, loss="l1", lr=0.05, epochs=3, seed=0).fit(X, y)
    assert np.array_equal(h1.step_loss, h2.step_loss)
    assert net.internals.params.tobytes() == back.internals.params.tobytes()


def test_pickle_round_trip_rebuilds_the_buffers(dtype, backend):
    net = sn.Network.mlp(3, (4, 4), 2, skip="residual", dtype=dtype, seed=5, backend=backend)
    back = pickle.loads(pickle.dumps(net))
    X = np.random.default_rng(1).normal(size=(9, 3))
    assert back.predict(X).tobytes() == net.predict(X).tobytes()
    # the views, the gradient twin and the engine are the new network's own, not stale copies
    assert all(np.shares_memory(v, back.internals.params) for v in back.internals.param_views.values())
    y = np.random.default_rng(2).normal(size=(9, 2))
    sn.Trainer(back, loss="mse", lr=0.1, epochs=2, seed=0).fit(X, y)
    sn.Trainer(net, loss="mse", lr=0.1, epochs=2, seed=0).fit(X, y)
    assert back.predict(X).tobytes() == net.predict(X).tobytes()


# ------------------------------------------------------------------------------------- atomic writes
def test_atomic_write_leaves_no_temporary_files(tmp_path):
    net = sn.Network.mlp(2, (3, 3), 1, skip="first-to-output", seed=0)
    path = tmp_path / "model.safetensors"
    net.save(path)
    net.internals.params[...] += 1.0
    net.save(str(path))  # overwrite, str path
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert sn.Network.load(path).internals.params.tobytes() == net.internals.params.tobytes()


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch):
    old = sn.Network.mlp(2, (3, 3), 1, skip="first-to-output", seed=0)
    path = old.save(tmp_path / "model.safetensors")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", broken_replace)
    new = sn.Network.mlp(2, (3, 3), 1, skip="first-to-output", seed=1)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert sn.Network.load(path).internals.params.tobytes() == old.internals.params.tobytes()


def test_new_file_gets_ordinary_permissions(tmp_path):
    path = sn.Network.exercise().save(tmp_path / "m.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_into_a_missing_folder_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        sn.Network.exercise().save(tmp_path / "nope" / "m.safetensors")


# ------------------------------------------------------------------------------------- bad files
def test_truncated_files_are_rejected(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    for size in [0, 3, 8, 8 + header // 2, 8 + header, len(data) - 1]:
        bad = tmp_path / f"cut{size}.safetensors"
        bad.write_bytes(data[:size])
        with pytest.raises(ValueError, match=str(bad.name)) as exc:
            sn.Network.load(bad)
        assert "truncated" in str(exc.value) or "corrupted" in str(exc.value)


def test_corrupted_tensor_bytes_fail_the_checksum(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # a bit flip in the last tensor's data
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped.safetensors.*checksum"):
        sn.Network.load(bad)


def test_corrupted_header_is_rejected(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[9] = ord("#")  # breaks the JSON header
    bad = tmp_path / "header.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="header.safetensors"):
        sn.Network.load(bad)


def test_header_size_is_checked_before_reading(tmp_path):
    bad = tmp_path / "huge.safetensors"
    bad.write_bytes((2**60).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match=r"huge.safetensors.*header claims"):
        sn.Network.load(bad)
    text = tmp_path / "notes.safetensors"
    text.write_text("this is not a model file at all")
    with pytest.raises(ValueError, match="notes.safetensors"):
        sn.Network.load(text)


def test_missing_extra_and_mismatched_tensors(saved, tmp_path):
    _, path = saved
    tensors, meta = _contents(path)
    cases = {
        "missing": ({k: v for k, v in tensors.items() if k != "skips.0.weight"}, r"missing tensors \['skips.0.weight'\]"),
        "extra": ({**tensors, "layers.9.weight": np.zeros((1, 1))}, r"unexpected tensors \['layers.9.weight'\]"),
        "shape": ({**tensors, "layers.1.weight": np.zeros((4, 4))}, r"'layers.1.weight' has shape \(4, 4\).*\(4, 5\)"),
        "dtype": ({**tensors, "layers.0.bias": tensors["layers.0.bias"].astype(np.float32)},
                  r"'layers.0.bias' has dtype F32, expected F64"),
        "int": ({**tensors, "layers.0.bias": np.zeros(5, np.int64)}, r"dtype I64"),
    }
    for name, (content, message) in cases.items():
        bad = _rewrite(tmp_path / f"{name}.safetensors", content, meta)
        with pytest.raises(ValueError, match=f"{name}.safetensors.*{message}"):
            sn.Network.load(bad)


def test_float32_file_under_float64_architecture_is_rejected(tmp_path):
    net32 = sn.Network.mlp(2, (3, 3), 1, skip="first-to-output", dtype="float32", seed=0)
    tensors, meta = _contents(net32.save(tmp_path / "a.safetensors"))
    meta64 = _with_header(meta, lambda h: h["architecture"].update(dtype="float64"))
    bad = _rewrite(tmp_path / "b.safetensors", tensors, meta64)
    with pytest.raises(ValueError, match="has dtype F32, expected F64"):
        sn.Network.load(bad)


def test_non_finite_values_are_rejected(saved, tmp_path):
    _, path = saved
    tensors, meta = _contents(path)
    tensors["layers.1.bias"] = tensors["layers.1.bias"].copy()
    tensors["layers.1.bias"][2] = np.nan
    meta = _with_header(meta, lambda h: h["sha256"].update({"layers.1.bias": _modelfile._digest(tensors["layers.1.bias"])}))
    bad = _rewrite(tmp_path / "nan.safetensors", tensors, meta)
    with pytest.raises(ValueError, match=r"nan.safetensors.*'layers.1.bias' contains NaN"):
        sn.Network.load(bad)


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_unknown_format_versions_are_rejected(saved, tmp_path, version):
    _, path = saved
    tensors, meta = _contents(path)
    bad = _rewrite(tmp_path / "v.safetensors", tensors,
                   _with_header(meta, lambda h: h.update(format_version=version)))
    with pytest.raises(ValueError, match=rf"v.safetensors: unknown format version {version!r}"):
        sn.Network.load(bad)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(n_inputs="3"), "n_inputs must be an integer"),
    (lambda a: a["layers"][0].update(units=2.5), "Dense.units must be an integer"),
    (lambda a: a["layers"][0].update(kind="conv"), "unexpected.*kind"),
    (lambda a: a.pop("skips"), r"missing \['skips'\]"),
    (lambda a: a["layers"][-1].update(activation="relu"), "output layer"),
    (lambda a: a["skips"][0].update(dst=7), "dst must be a layer index"),
    (lambda a: a.update(dtype="float16"), "dtype must be"),
    (lambda a: a.update(layers={}), "must be a list"),
])
def test_invalid_architectures_are_rejected(saved, tmp_path, change, message):
    _, path = saved
    tensors, meta = _contents(path)
    bad = _rewrite(tmp_path / "arch.safetensors", tensors,
                   _with_header(meta, lambda h: change(h["architecture"])))
    with pytest.raises(ValueError, match=f"arch.safetensors: invalid architecture.*{message}"):
        sn.Network.load(bad)


def test_missing_checksums_are_rejected(saved, tmp_path):
    _, path = saved
    tensors, meta = _contents(path)
    for name, change in {"none": lambda h: h.pop("sha256"),
                         "partial": lambda h: h["sha256"].pop("layers.0.bias")}.items():
        bad = _rewrite(tmp_path / f"{name}.safetensors", tensors, _with_header(meta, change))
        with pytest.raises(ValueError, match=f"{name}.safetensors: the metadata must hold a sha256"):
            sn.Network.load(bad)


def test_plain_state_dict_is_not_a_model_file(saved, tmp_path):
    net, _ = saved
    plain = _rewrite(tmp_path / "plain.safetensors", net.parameters(), {})
    with pytest.raises(ValueError, match="plain.safetensors: not a skipnet model file.*load_weights"):
        sn.Network.load(plain)
    bad_json = _rewrite(tmp_path / "json.safetensors", net.parameters(), {"skipnet": "{oops"})
    with pytest.raises(ValueError, match="not valid JSON"):
        sn.Network.load(bad_json)


def test_missing_file_and_bad_backend(tmp_path, saved):
    with pytest.raises(FileNotFoundError):
        sn.Network.load(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match="backend"):
        sn.Network.load(saved[1], backend="jax")


def test_load_weights_is_strict_and_all_or_nothing(saved, tmp_path):
    net, path = saved
    other = sn.Network.mlp(3, (5, 4), 2, skip="first-to-output", seed=9)
    before = other.internals.params.copy()
    tensors, _ = _contents(path)
    shape = _rewrite(tmp_path / "s.safetensors", {**tensors, "skips.0.weight": np.zeros((2, 4))}, {})
    with pytest.raises(ValueError, match="shape"):
        other.load_weights(shape)
    missing = _rewrite(tmp_path / "m.safetensors", {k: v for k, v in tensors.items() if k != "layers.0.bias"}, {})
    with pytest.raises(ValueError, match="missing tensors"):
        other.load_weights(missing)
    nan = _rewrite(tmp_path / "n.safetensors", {**tensors, "layers.0.bias": np.full(5, np.inf)}, {})
    with pytest.raises(ValueError, match="NaN or infinity"):
        other.load_weights(nan)
    assert np.array_equal(other.internals.params, before)
    other.load_weights(path)  # a skipnet file is a state dict too
    assert other.internals.params.tobytes() == net.internals.params.tobytes()
    # float32 tensors are cast into a float64 network, as load_state_dict's copy does
    f32 = _rewrite(tmp_path / "f32.safetensors", {k: v.astype(np.float32) for k, v in tensors.items()}, {})
    other.load_weights(f32)
    assert np.array_equal(other.internals.params, net.internals.params.astype(np.float32).astype(np.float64))


# ------------------------------------------------------------------------------------- PyTorch
def _torch_module(net):
    """An nn.Module equivalent to ``net``: ModuleLists ``layers`` (nn.Linear) and ``skips`` (nn.Linear,
    or nn.Identity for an identity skip), so its state_dict names are skipnet's."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    width = [net.n_inputs] + [ly.units for ly in net.layers]

    class SkipNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(width[k], ly.units, bias=ly.bias)
                                        for k, ly in enumerate(net.layers))
            self.skips = nn.ModuleList(nn.Identity() if s.identity else
                                       nn.Linear(width[s.src + 1], net.layers[s.dst].units, bias=False)
                                       for s in net.skips)

        def forward(self, x):
            h = []
            for k, layer in enumerate(self.layers):
                z = layer(x if k == 0 else h[k - 1])
                for skip, module in zip(net.skips, self.skips):
                    if skip.dst == k:
                        z = z + module(x if skip.src < 0 else h[skip.src])
                h.append(torch.relu(z) if net.layers[k].activation == "relu" else z)
            return h[-1]

    dtype = torch.float64 if net.dtype == np.float64 else torch.float32
    return SkipNet().to(dtype)


@pytest.mark.parametrize("index", range(CASES + 4))
def test_pytorch_loads_skipnet_files(tmp_path, dtype, index):
    torch = pytest.importorskip("torch")
    storch = pytest.importorskip("safetensors.torch")
    net = _networks(dtype)[index]
    path = net.save(tmp_path / "net.safetensors")
    module = _torch_module(net)
    module.load_state_dict(storch.load_file(path), strict=True)
    X = np.random.default_rng(index).normal(size=(17, net.n_inputs)).astype(dtype)
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    assert_close(out, net.predict(X), dtype)


@pytest.mark.parametrize("index", range(CASES + 4))
def test_skipnet_loads_pytorch_state_dicts(tmp_path, dtype, index):
    torch = pytest.importorskip("torch")
    storch = pytest.importorskip("safetensors.torch")
    template = _networks(dtype)[index]
    module = _torch_module(template)
    torch.manual_seed(index)
    for p in module.parameters():
        torch.nn.init.normal_(p)
    path = tmp_path / "torch.safetensors"
    storch.save_file(module.state_dict(), path)
    net = sn.Network(template.n_inputs, template.layers, template.skips, dtype=dtype, seed=0)
    net.load_weights(path)
    for name, value in module.state_dict().items():
        assert np.array_equal(net.parameters()[name], value.numpy())
    X = np.random.default_rng(index).normal(size=(17, net.n_inputs)).astype(dtype)
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    assert_close(net.predict(X), out, dtype)
    # saved again by skipnet, it is a full model file
    assert sn.Network.load(net.save(tmp_path / "again.safetensors")).internals.params.tobytes() == net.internals.params.tobytes()
