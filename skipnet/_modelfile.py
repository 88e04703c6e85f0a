"""The model file format: a network's parameters as a safetensors file, its architecture as JSON in the
file's metadata. Network.save/load/load_weights (and skipnet.io, their public module) use this module;
it knows a network only through ``parameters()``, its architecture attributes and ``internals.layout``.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from ._files import atomic_write, open_for_reading
from ._version import __version__

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
T = TypeVar("T")
_WHAT = "model file"  # names the file in the refusals of _files


# ---------------------------------------------------------------------------------------- architecture
def architecture(net) -> dict[str, Any]:
    """The architecture of ``net`` as plain JSON-ready data (no backend, no parameter values)."""
    return {
        "n_inputs": net.n_inputs,
        "layers": [{"units": ly.units, "activation": ly.activation, "bias": bool(ly.bias)}
                   for ly in net.layers],
        "skips": [{"src": s.src, "dst": s.dst, "identity": bool(s.identity)} for s in net.skips],
        "dtype": net.dtype.name,
        "init": net.init,
    }


def expect_keys(what: str, obj, keys: set[str]) -> None:
    if not isinstance(obj, Mapping):
        raise TypeError(f"{what} must be a JSON object, got {type(obj).__name__}")
    missing, extra = keys - set(obj), set(obj) - keys
    if missing or extra:
        raise ValueError(f"{what} must have exactly the keys {sorted(keys)}; "
                         f"missing {sorted(missing)}, unexpected {sorted(extra)}")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


# --------------------------------------------------------------------------------------------- write
def write(path: PathLike, tensors: Mapping[str, np.ndarray], arch: Mapping[str, Any],
          metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` (name -> array, a network's ``parameters()``) with ``arch`` (``architecture(net)``)
    to ``path``, atomically; return the path. ``metadata``: extra str -> str entries for the header;
    the key ``"skipnet"`` is reserved."""
    path = Path(os.fspath(path))
    extra = dict(metadata or {})
    for key, value in extra.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str, got {key!r}: {type(value).__name__}")
    if FORMAT_KEY in extra:
        raise ValueError(f"metadata key {FORMAT_KEY!r} is reserved for the architecture")
    _check_finite(path, tensors)  # load refuses non-finite weights: never write a file it cannot read
    header = {
        "format_version": FORMAT_VERSION,
        "skipnet_version": __version__,
        "architecture": dict(arch),
        "sha256": {name: _digest(t) for name, t in tensors.items()},
    }
    data = safetensors.numpy.save(dict(tensors), metadata={**extra, FORMAT_KEY: json.dumps(header)})
    atomic_write(path, data, _WHAT)
    return path


# ---------------------------------------------------------------------------------------------- read
def read_model(path: PathLike, build: Callable[[Mapping[str, Any]], T]) -> tuple[T, dict[str, np.ndarray]]:
    """(network, tensors) of a file written by ``write``: ``build(arch)`` makes the network (a
    TypeError or ValueError it raises names the file), then every tensor is checked against its
    ``internals.layout`` and dtype: names, shapes, dtypes, checksums, finiteness."""
    path = Path(os.fspath(path))
    with _open(path) as f:
        header = _format_header(path, f.metadata() or {})
        _check_declared_size(path, header["architecture"], f)
        try:
            net = build(header["architecture"])
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
    return net, values


def read_weights(path: PathLike, layout, dtype: np.dtype) -> dict[str, np.ndarray]:
    """The tensors of any safetensors file, checked strictly against ``layout`` (ParameterSpecs), as
    ``load_state_dict`` does: exactly these names and shapes; F16, F32 and F64 cast to ``dtype``."""
    path = Path(os.fspath(path))
    expected = {spec.name: spec.shape for spec in layout}
    with _open(path) as f:
        _check_names(path, set(f.keys()), set(expected))
        values = {}
        for name, shape in expected.items():
            _check_spec(path, f, name, shape, set(_READABLE_CODES))
            values[name] = _read(path, f, name).astype(dtype)
    _check_finite(path, values)
    return values


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
