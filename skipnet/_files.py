"""File targets: what skipnet may write over or read from, whatever the file system holds at a path.

The one owner of these rules, used by model files (io.py), reports (report.py) and the command line:

- ``check_output_path``: a path that may be replaced by a new regular file. Symlinks are followed to
  their final target (writing through a link writes its target); a target that exists must be a
  regular file with a single hard link; the folder must exist and be writable.
- ``check_input_path``: a path that names an existing regular file (symlinks followed).
- ``atomic_write``: replace a checked target with new contents, all or nothing (see its docstring).
- ``open_for_reading``: open a regular file for reading without ever blocking on a FIFO or device.

Refusals are ValueErrors naming what the file is for, the path and the reason. A missing path or
folder raises ``MissingPathError``, both a FileNotFoundError (as ``open`` would) and a ValueError.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # not POSIX: there are no FIFOs to block on either
    fcntl = None

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


# ---------------------------------------------------------------------------------------- writing
_TOKEN_HEX = 12  # the random part of a temporary's name, as hex digits
_NAME_BYTES = 200  # of the target's name in its temporaries': with pid and token within NAME_MAX (255)


def atomic_write(path: PathLike, data: bytes, what: str) -> Path:
    """Replace the file at ``path`` (after ``check_output_path``) by ``data``, all or nothing; return
    the resolved path written.

    A temporary ``.{name}.{pid}.{random}.tmp`` is created beside the target (O_EXCL, O_NOFOLLOW: never
    an existing file or link), written, given the target's permission bits (and owner and group where
    allowed), fsynced and renamed over the target; then the folder is fsynced. A crash leaves the old
    file or the new one, plus at most the temporary, which the next write of the same target removes
    once its writer's pid is no longer alive. On any error the temporary is removed and the error
    re-raised. Through a symlink, the link's target is written and the link stays. The check and the
    rename are two steps: a special file put at the path between them would still be replaced."""
    target = check_output_path(path, what)
    folder = target.parent
    remove_stale_temporaries(target)
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    tmp = folder / f"{_temporary_prefix(target)}{os.getpid()}.{secrets.token_hex(_TOKEN_HEX // 2)}.tmp"
    # A new target gets 0o666 minus the umask (and default ACLs), as open() would give it; a replaced
    # one starts private (0o600) and gets the old file's bits before it is renamed into place.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666 if old is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if old is not None:
                _copy_ownership(f.fileno(), old)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(folder)
    return target


def _temporary_prefix(target: Path) -> str:
    """``.{name}.``, the start of the names of ``target``'s temporaries; a name too long to take a pid
    and a token is cut (at a character) to _NAME_BYTES bytes."""
    name = target.name
    while len(os.fsencode(name)) > _NAME_BYTES:
        name = name[:-1]
    return f".{name}."


def _copy_ownership(fd: int, old: os.stat_result) -> None:
    """Give the open file ``fd`` the owner, group and permission bits of ``old`` (a stat result).
    Owner and group are best effort (root, or a group the user belongs to); chown clears set-id bits,
    so the mode is set after it."""
    if not hasattr(os, "fchmod"):  # not POSIX
        return
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:
            pass
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); folders cannot be opened this way on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of earlier writes of ``target`` whose writer is dead (killed mid-write),
    and return them. A temporary whose pid is a live process is another write in progress and stays,
    as do temporaries of other targets and files that are not regular. (A writer in another pid
    namespace sharing the folder would look dead: its rename then fails, leaving its target as it was.)
    POSIX only: elsewhere nothing is removed."""
    if os.name != "posix":
        return []
    pattern = re.compile(re.escape(_temporary_prefix(target)) + rf"(\d{{1,10}})\.[0-9a-f]{{{_TOKEN_HEX}}}\.tmp")
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or _alive(int(match.group(1))):
            continue
        stale = target.parent / name
        try:
            if stat.S_ISREG(os.lstat(stale).st_mode):
                stale.unlink()
                removed.append(stale)
        except FileNotFoundError:  # another writer removed it first
            pass
    return removed


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (or cannot be ruled out as one)."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a pid past the platform's range
        pass
    return True


# ---------------------------------------------------------------------------------------- reading
def open_for_reading(path: PathLike, what: str) -> BinaryIO:
    """``path`` opened for binary reading, after checking on the open descriptor that it is a regular
    file (symlinks followed).

    Opened non-blocking, so a FIFO without a writer or a device cannot stall the open, and without
    becoming a controlling terminal; anything but a regular file is closed again and refused with a
    ValueError naming ``what`` and the path. MissingPathError when nothing is there."""
    given = Path(os.fspath(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(given, flags)
    except FileNotFoundError:
        raise MissingPathError(f"{what} {given}: no such file") from None
    except OSError:  # a socket (ENXIO), a folder on Windows, a device that refuses: say what it is
        check_input_path(given, what)
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{what} {given}: it is {file_kind(mode)}, not a regular file")
        if fcntl is not None:  # reads of a regular file never block; clear it all the same
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
