"""Model files, the public functions: a Network as a safetensors file, its architecture as JSON in the
file's metadata. The format, and how files are written and read safely, is described in
skipnet._modelfile; these functions are the Network methods under module-level names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ._modelfile import (  # noqa: F401  (the module's public names)
    FORMAT_KEY,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    SUPPORTED_VERSIONS,
    architecture,
    read_architecture,
    read_metadata,
)
from .network import Network, network_from_architecture  # noqa: F401

PathLike = str | os.PathLike


def save(net: Network, path: PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``net`` to ``path`` (a safetensors file), atomically; return the path (Network.save)."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
    return net.save(path, metadata)


def load(path: PathLike, backend: str = "cython") -> Network:
    """The Network stored in ``path`` by ``save``, on ``backend`` ("cython" or "numpy") (Network.load)."""
    return Network.load(path, backend)


def load_weights(net: Network, path: PathLike) -> None:
    """Copy the tensors of any safetensors file into ``net``, strictly (Network.load_weights)."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
    net.load_weights(path)
