"""File targets: what skipnet may write over or read from, whatever the file system holds at a path.

The one owner of these rules, used by model files (io.py), reports (report.py) and the command line:

- ``check_output_path``: a path that may be replaced by a new regular file. Symlinks are followed to
  their final target (writing through a link writes its target); a target that exists must be a
  regular file with a single hard link; the folder must exist and be writable.
- ``check_input_path``: a path that names an existing regular file (symlinks followed).

Refusals are ValueErrors naming what the file is for, the path and the reason. A missing path or
folder raises ``MissingPathError``, both a FileNotFoundError (as ``open`` would) and a ValueError.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PathLike = str | os.PathLike


class MissingPathError(FileNotFoundError, ValueError):
    """A file or folder that does not exist: an OSError as ``open`` raises, and a ValueError as every
    other refusal of this module."""


def file_kind(mode: int) -> str:
    """A readable name of the file type in ``mode`` (an ``st_mode``): "a regular file", "a FIFO", ..."""
    kinds = [(stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISLNK, "a symlink that does not resolve (a loop)")]
    return next((name for is_kind, name in kinds if is_kind(mode)), "a special file")


def check_output_path(path: PathLike, what: str) -> Path:
    """The path a new regular file for ``what`` (e.g. "model file") should be renamed onto: ``path``
    with its symlinks resolved (a dangling symlink resolves to where its target would be).

    Raises ValueError naming ``what``, the path and the reason when the target exists and is not a
    regular file (a directory, device, FIFO, socket, symlink loop), when it has more than one hard
    link (replacing it would leave the other names with the old contents), or when its folder is not
    a directory or not writable; MissingPathError when the folder does not exist. Never opens the
    target."""
    given = Path(os.fspath(path))
    target = Path(os.path.realpath(given))
    name = f"{what} {given}" + (f" (resolving to {target})" if str(target) != os.path.abspath(given) else "")
    try:
        st = os.lstat(target)  # realpath resolved every link it could: a link left here is a loop
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        st = None  # a new file, or a folder problem reported below
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{name}: it is {file_kind(st.st_mode)}, not a regular file; writing "
                             "would replace it, so it is left alone")
        if st.st_nlink > 1:
            raise ValueError(f"{name}: it has {st.st_nlink} hard links; writing replaces the file, "
                             "which would leave the other links with the old contents")
    _check_folder(name, target.parent)
    return target


def _check_folder(name: str, folder: Path) -> None:
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise MissingPathError(f"{name}: the folder {folder} does not exist") from None
    except NotADirectoryError:
        raise ValueError(f"{name}: a part of the folder {folder} is not a directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{name}: the folder {folder} is {file_kind(st.st_mode)}, not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{name}: the folder {folder} is not writable")


def check_input_path(path: PathLike, what: str) -> Path:
    """``path`` as a Path, after checking that it names an existing regular file (symlinks followed).

    Raises MissingPathError when nothing is there (or a symlink points nowhere), ValueError naming
    ``what`` and the path when it is a directory, device, FIFO, socket or a symlink loop. Only stats
    the path: a FIFO or device is never opened."""
    given = Path(os.fspath(path))
    try:
        st = os.stat(given)
    except FileNotFoundError:
        raise MissingPathError(f"{what} {given}: no such file") from None
    except NotADirectoryError:
        raise ValueError(f"{what} {given}: a part of its folder is not a directory") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ValueError(f"{what} {given}: a symlink loop, not a regular file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {given}: it is {file_kind(st.st_mode)}, not a regular file")
    return given
