"""Output files of the commands: checked before any work, so that a long run is never lost to an
unusable --out, and written atomically (an interrupted write leaves the previous file, or none).
What a path may be is skipnet._files's rule; this module adds the rules between a command's paths."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .._files import atomic_write, check_output_path


def check_outputs(outputs: dict[str, str | os.PathLike | None],
                  inputs: dict[str, str | os.PathLike | None] | None = None) -> None:
    """Check the output files named by options (``{"--out": path, ...}``; None: not asked for) before any
    work: each must be writable (skipnet._files.check_output_path), no two may be the same file, and none
    may be one of the ``inputs`` (``{"DATA": path}``), which writing would destroy. ValueError naming the
    options and paths."""
    seen: dict[str, tuple[str, str | os.PathLike]] = {}
    for what, path in (inputs or {}).items():
        if path is not None:
            seen.setdefault(_identity(path), (what, path))
    for what, path in outputs.items():
        if path is None:
            continue
        _probe(check_output_path(path, what), what, path)
        other = seen.get(_identity(path))
        if other is not None:
            raise ValueError(f"{what} {path} is the same file as {other[0]} {other[1]}: choose another {what}")
        seen[_identity(path)] = (what, path)


def _probe(target: Path, what: str, given) -> None:
    """Create and remove a file beside ``target``: the folder's permission bits do not tell everything
    (root ignores them; read-only mounts, /proc, quotas), and a refusal found after hours of training is
    too late."""
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
    except OSError as exc:
        raise ValueError(f"{what} {given}: cannot create a file in {target.parent} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def write_output(path: str | os.PathLike, data: bytes | str, what: str) -> None:
    """Write ``data`` (str: as UTF-8) to the output file ``path`` of option ``what``, atomically."""
    atomic_write(path, data.encode("utf-8") if isinstance(data, str) else data, what)


def _identity(path: str | os.PathLike) -> str:
    """One spelling per file: symbolic links and relative parts resolved."""
    return os.path.normcase(os.path.realpath(path))
