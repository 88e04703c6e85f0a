"""Model files: a Network as a safetensors file, its architecture as JSON in the file's metadata.

Format version 1:

- tensors under PyTorch's names and ``nn.Linear`` layout, in the network's dtype (``F32`` or ``F64``):
  ``layers.k.weight`` (m_k, m_{k-1}), ``layers.k.bias`` (m_k,), ``skips.i.weight`` (m_dst, m_src) for
  each learned skip ``i`` (identity skips have no tensor). A PyTorch module holding ``nn.ModuleList``s
  ``layers`` (of ``nn.Linear``) and ``skips`` (``nn.Linear``, ``nn.Identity`` for identity skips) has
  exactly these names, so ``module.load_state_dict(safetensors.torch.load_file(path))`` works.
- ``__metadata__["skipnet"]``: JSON ``{"format_version": 1, "skipnet_version": ..., "architecture":
  {"n_inputs", "layers": [{"units", "activation", "bias"}], "skips": [{"src", "dst", "identity"}],
  "dtype", "init"}, "sha256": {name: hex digest of the tensor's bytes}}``. The architecture says
  nothing about the backend: a file loads on either.
- any other ``__metadata__`` entries are the caller's (str -> str), see ``save(metadata=...)`` and
  ``read_metadata``.

Writing is atomic (``_files.atomic_write``): a temporary file in the destination's folder is written,
flushed and fsynced, then renamed over the destination, and the folder is fsynced, so a crash leaves
either the old file or the new one; temporaries left by killed saves are removed by the next save of the
same file. Only a regular file is replaced: a directory, device, FIFO or socket at the path is refused,
and so is a file with several hard links (the other names would keep the old contents). A re-saved file
keeps its permission bits (and owner and group where allowed). Saving through a symlink writes the
file it points to (a dangling link: where it points) and leaves the link in place. Loading opens only
regular files and never blocks on a FIFO or device; it never runs code (safetensors holds only JSON and raw numbers), checks the header size
before reading it, and checks every tensor's name, shape, dtype, checksum and finiteness against the
architecture before a Network is built. Every problem is a ValueError naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from . import _validation as V
from ._files import atomic_write, open_for_reading
from .network import BACKENDS, Dense, Network, Skip

FORMAT_KEY = "skipnet"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
# safetensors' own limit on the JSON header; checked before anything is parsed
MAX_HEADER_BYTES = 100_000_000
# architectures this small are built and then checked tensor by tensor, whatever the file holds
_SMALL_LAYERS, _SMALL_PARAMETERS = 1_000, 1 << 20
_DTYPE_CODES = {"float32": "F32", "float64": "F64"}
_READABLE_CODES = {"F16": np.float16, "F32": np.float32, "F64": np.float64}

PathLike = str | os.PathLike
_WHAT = "model file"  # names the file in the refusals of _files


# ---------------------------------------------------------------------------------------- architecture
def architecture(net: Network) -> dict[str, Any]:
    """The architecture of ``net`` as plain JSON-ready data (no backend, no parameter values)."""
    return {
        "n_inputs": net.n_inputs,
        "layers": [{"units": ly.units, "activation": ly.activation, "bias": bool(ly.bias)}
                   for ly in net.layers],
        "skips": [{"src": s.src, "dst": s.dst, "identity": bool(s.identity)} for s in net.skips],
        "dtype": net.dtype.name,
        "init": net.init,
    }


def network_from_architecture(arch: Mapping[str, Any], backend: str = "cython") -> Network:
    """A Network (freshly initialised, seed 0) built from ``architecture(net)``'s data.

    Raises ValueError when a key is missing or unknown, TypeError when a value has the wrong type."""
    if not isinstance(arch, Mapping):
        raise TypeError(f"the architecture must be a JSON object, got {type(arch).__name__}")
    _expect_keys("architecture", arch, {"n_inputs", "layers", "skips", "dtype", "init"})
    for key in ("layers", "skips"):
        if not isinstance(arch[key], list):
            raise TypeError(f"architecture[{key!r}] must be a list, got {type(arch[key]).__name__}")
    layers, skips = [], []
    for k, spec in enumerate(arch["layers"]):
        _expect_keys(f"architecture['layers'][{k}]", spec, {"units", "activation", "bias"})
        layers.append(Dense(spec["units"], spec["activation"], spec["bias"]))
    for i, spec in enumerate(arch["skips"]):
        _expect_keys(f"architecture['skips'][{i}]", spec, {"src", "dst", "identity"})
        skips.append(Skip(spec["src"], spec["dst"], spec["identity"]))
    return Network(arch["n_inputs"], layers, skips, dtype=arch["dtype"], seed=0, backend=backend,
                   init=arch["init"])


def _expect_keys(what: str, obj, keys: set[str]) -> None:
    if not isinstance(obj, Mapping):
        raise TypeError(f"{what} must be a JSON object, got {type(obj).__name__}")
    missing, extra = keys - set(obj), set(obj) - keys
    if missing or extra:
        raise ValueError(f"{what} must have exactly the keys {sorted(keys)}; "
                         f"missing {sorted(missing)}, unexpected {sorted(extra)}")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


# ---------------------------------------------------------------------------------------------- save
def save(net: Network, path: PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``net`` to ``path`` (a safetensors file), atomically; return the path.

    ``metadata``: extra str -> str entries stored in the file's header (for example the feature names
    of a data set); the key ``"skipnet"`` is reserved."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
    path = Path(os.fspath(path))
    extra = dict(metadata or {})
    for key, value in extra.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str, got {key!r}: {type(value).__name__}")
    if FORMAT_KEY in extra:
        raise ValueError(f"metadata key {FORMAT_KEY!r} is reserved for the architecture")
    tensors = net.parameters()  # a consistent snapshot: refused while another thread writes the network
    _check_finite(path, tensors)  # load refuses non-finite weights: never write a file it cannot read
    from . import __version__

    header = {
        "format_version": FORMAT_VERSION,
        "skipnet_version": __version__,
        "architecture": architecture(net),
        "sha256": {name: _digest(t) for name, t in tensors.items()},
    }
    data = safetensors.numpy.save(tensors, metadata={**extra, FORMAT_KEY: json.dumps(header)})
    atomic_write(path, data, _WHAT)
    return path


# ---------------------------------------------------------------------------------------------- load
def load(path: PathLike, backend: str = "cython") -> Network:
    """The Network stored in ``path`` by ``save``, on ``backend`` ("cython" or "numpy").

    Raises ValueError naming the file when it is not a skipnet model file of a known format version,
    is truncated or corrupted, or holds tensors that do not match its architecture."""
    V.check_choice("backend", backend, BACKENDS)
    path = Path(os.fspath(path))
    with _open(path) as f:
        header = _format_header(path, f.metadata() or {})
        _check_declared_size(path, header["architecture"], f)
        try:
            net = network_from_architecture(header["architecture"], backend=backend)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: invalid architecture in the metadata: {exc}") from exc
        expected = {spec.name: (spec.shape, net.dtype.name) for spec in net.internals.layout}
        _check_names(path, set(f.keys()), set(expected))
        digests = header.get("sha256")
        if not isinstance(digests, dict) or set(digests) != set(expected):
            raise ValueError(f"{path}: the metadata must hold a sha256 digest of every tensor")
        values = {}
        for name, (shape, dtype) in expected.items():
            _check_spec(path, f, name, shape, {_DTYPE_CODES[dtype]})
            array = _read(path, f, name)
            if _digest(array) != digests[name]:
                raise ValueError(f"{path}: tensor {name!r} does not match its checksum (the file is "
                                 "corrupted)")
            values[name] = array
    _check_finite(path, values)
    for name, array in values.items():
        net.internals.param_views[name][...] = array  # a network of our own: nobody else holds it yet
    return net


def load_weights(net: Network, path: PathLike) -> None:
    """Copy the tensors of any safetensors file into ``net``, strictly, as ``load_state_dict`` does.

    The file may come from ``save`` or from PyTorch (``safetensors.torch.save_file(module.state_dict(),
    path)`` for a module with the same names); it must hold exactly ``net.parameter_names`` with
    matching shapes. F16, F32 and F64 tensors are cast to the network's dtype. Nothing is written into
    ``net`` unless every tensor passes."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
    path = Path(os.fspath(path))
    expected = {spec.name: spec.shape for spec in net.internals.layout}
    with _open(path) as f:
        _check_names(path, set(f.keys()), set(expected))
        values = {}
        for name, shape in expected.items():
            _check_spec(path, f, name, shape, set(_READABLE_CODES))
            values[name] = _read(path, f, name).astype(net.dtype)
    _check_finite(path, values)
    with net.internals.writing():  # refused (RuntimeError) while a fit or another write runs
        for name, array in values.items():
            net.internals.param_views[name][...] = array


def read_metadata(path: PathLike) -> dict[str, str]:
    """The caller's metadata entries stored by ``save(metadata=...)`` (the architecture excluded)."""
    path = Path(os.fspath(path))
    with _open(path) as f:
        meta = dict(f.metadata() or {})
    _format_header(path, meta)
    meta.pop(FORMAT_KEY)
    return meta


def read_architecture(path: PathLike) -> dict[str, Any]:
    """The architecture stored in a model file (see ``architecture``), without loading the tensors."""
    path = Path(os.fspath(path))
    with _open(path) as f:
        return _format_header(path, f.metadata() or {})["architecture"]


def _open(path: Path):
    """safe_open on ``path`` after checking that it is a regular file whose header length fits it."""
    with open_for_reading(path, _WHAT) as raw:  # refuses folders, devices, FIFOs, sockets without blocking
        size = os.fstat(raw.fileno()).st_size
        prefix = raw.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path}: not a safetensors file ({size} bytes; it is empty or truncated)")
        header_size = int.from_bytes(prefix, "little")
        if header_size > MAX_HEADER_BYTES or header_size > size - 8:
            raise ValueError(f"{path}: not a safetensors file or truncated (its header claims {header_size} "
                             f"bytes, the file has {size - 8} after the length field)")
        try:
            return safe_open(_same_file(raw.fileno(), path), framework="numpy")
        except SafetensorError as exc:
            raise ValueError(f"{path}: not a valid safetensors file (corrupted or truncated): {exc}") from exc


def _same_file(fd: int, path: Path) -> str | Path:
    """A path that opens the file behind ``fd`` itself: safe_open takes a path, not a descriptor, and
    ``path`` may have been replaced (by a FIFO, say) since it was checked. Linux's /proc/self/fd/N
    reopens the checked file; where it does not exist, ``path`` is opened again (a check-then-open race
    that a concurrent writer could only win by replacing the file between the two opens)."""
    proc = f"/proc/self/fd/{fd}"
    return proc if os.path.exists(proc) else path


def _format_header(path: Path, meta: Mapping[str, str]) -> dict[str, Any]:
    """The parsed ``skipnet`` metadata entry, its format version checked."""
    if FORMAT_KEY not in meta:
        raise ValueError(f"{path}: not a skipnet model file (no {FORMAT_KEY!r} entry in its metadata); "
                         "a plain state dict loads into an existing network with load_weights")
    try:
        header = json.loads(meta[FORMAT_KEY])
    except (ValueError, RecursionError) as exc:  # also numbers past int limits, nesting past the stack
        raise ValueError(f"{path}: the {FORMAT_KEY!r} metadata is not valid JSON: {exc}") from exc
    if not isinstance(header, dict) or "architecture" not in header:
        raise ValueError(f"{path}: the {FORMAT_KEY!r} metadata has no architecture")
    version = header.get("format_version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise ValueError(f"{path}: unknown format version {version!r}; this skipnet reads version(s) "
                         f"{', '.join(map(str, SUPPORTED_VERSIONS))} (a newer skipnet may read it)")
    return header


def _check_declared_size(path: Path, arch, f) -> None:
    """Refuse an architecture with (many) more parameters than the file holds values, before a Network
    (and its buffers) is built from it: a small file must not make load allocate gigabytes. Small
    mismatches and malformed architectures are left to the checks that name the tensor or the key."""
    names = f.keys()  # the handle itself is not iterable
    held = sum(math.prod(f.get_slice(name).get_shape()) for name in names)
    try:
        layers, skips = arch["layers"], arch["skips"]
        declared = None
        if len(layers) <= max(len(names), _SMALL_LAYERS):  # every layer has a weight tensor
            width = [int(arch["n_inputs"])] + [int(layer["units"]) for layer in layers]
            declared = sum(width[k + 1] * (width[k] + bool(layer["bias"])) for k, layer in enumerate(layers))
            declared += sum(width[s["dst"] + 1] * width[s["src"] + 1] for s in skips if not s["identity"])
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        return
    if declared is None:
        raise ValueError(f"{path}: the architecture in the metadata declares {len(layers)} layers, but the "
                         f"file holds only {len(names)} tensors")
    if declared > max(held, _SMALL_PARAMETERS):
        raise ValueError(f"{path}: the architecture in the metadata declares {declared} parameters, but the "
                         f"file holds {held} values")


def _check_names(path: Path, found: set[str], expected: set[str]) -> None:
    missing, extra = sorted(expected - found), sorted(found - expected)
    if missing or extra:
        parts = ([f"missing tensors {missing}"] if missing else []) + \
                ([f"unexpected tensors {extra}"] if extra else [])
        raise ValueError(f"{path}: the tensors do not match the architecture: {'; '.join(parts)}")


def _check_spec(path: Path, f, name: str, shape: tuple, dtype_codes: set[str]) -> None:
    part = f.get_slice(name)
    found_shape, found_dtype = tuple(part.get_shape()), part.get_dtype()
    if found_shape != tuple(shape):
        raise ValueError(f"{path}: tensor {name!r} has shape {found_shape}, the architecture needs "
                         f"{tuple(shape)}")
    if found_dtype not in dtype_codes:
        raise ValueError(f"{path}: tensor {name!r} has dtype {found_dtype}, expected "
                         f"{' or '.join(sorted(dtype_codes))}")


def _read(path: Path, f, name: str) -> np.ndarray:
    try:
        return np.asarray(f.get_tensor(name))
    except SafetensorError as exc:  # pragma: no cover - offsets were validated when the file was opened
        raise ValueError(f"{path}: tensor {name!r} cannot be read: {exc}") from exc


def _check_finite(path: Path, values: Mapping[str, np.ndarray]) -> None:
    for name, array in values.items():
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: tensor {name!r} contains NaN or infinity")
