"""Whatever the file system holds at a path: saving replaces only regular files (devices, FIFOs, sockets,
folders and hard-linked files are refused and left as they were), writes through symlinks, keeps
permissions and removes the temporaries of killed saves; loading refuses anything but a regular file
without ever blocking on a FIFO. Device nodes, FIFOs, sockets and links are made in tmp_path."""

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import skipnet as sn
from skipnet import _files, io
from skipnet.report import _write as write_report_file

needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="os.mknod and chown need root")
posix = pytest.mark.skipif(os.name != "posix", reason="FIFOs, sockets, pids and signals (POSIX)")

LOADERS = {
    "load": lambda p: sn.Network.load(p),
    "load_weights": lambda p: sn.Network.exercise().load_weights(p),
    "read_metadata": io.read_metadata,
    "read_architecture": io.read_architecture,
}


@pytest.fixture
def net():
    return sn.Network.mlp(3, (4, 4), 2, skip="first-to-output", seed=0)


@pytest.fixture
def other():
    return sn.Network.mlp(3, (4, 4), 2, skip="first-to-output", seed=1)


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def _same_params(path, net) -> bool:
    return np.array_equal(sn.Network.load(path).internals.params, net.internals.params)


def _char_device(path):
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # the numbers of /dev/null, made here
    return path


def _socket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


# ------------------------------------------------------------------------ saving over special files
@needs_root
def test_save_refuses_a_character_device_and_leaves_it(tmp_path, net):
    node = _char_device(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"model file .*m\.safetensors: it is a character device"):
        net.save(node)
    assert stat.S_ISCHR(os.lstat(node).st_mode) and os.lstat(node).st_rdev == os.makedev(1, 3)
    assert _listing(tmp_path) == ["m.safetensors"]  # no temporary left either


@posix
def test_save_refuses_a_fifo_and_leaves_it(tmp_path, net):
    os.mkfifo(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="it is a FIFO"):
        net.save(tmp_path / "m.safetensors")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "m.safetensors").st_mode)
    assert _listing(tmp_path) == ["m.safetensors"]


@posix
def test_save_refuses_a_socket_and_leaves_it(tmp_path, net):
    with _socket(tmp_path / "m.sock"):
        with pytest.raises(ValueError, match="it is a socket"):
            net.save(tmp_path / "m.sock")
        assert stat.S_ISSOCK(os.lstat(tmp_path / "m.sock").st_mode)


def test_save_refuses_a_folder(tmp_path, net):
    (tmp_path / "m.safetensors").mkdir()
    (tmp_path / "m.safetensors" / "inside").write_text("kept")
    with pytest.raises(ValueError, match="it is a directory"):
        net.save(tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors" / "inside").read_text() == "kept"


def test_save_refuses_a_hard_linked_file_and_changes_neither_name(tmp_path, net, other):
    first = net.save(tmp_path / "a.safetensors")
    os.link(first, tmp_path / "b.safetensors")
    before = first.read_bytes()
    for name in ("a.safetensors", "b.safetensors"):
        with pytest.raises(ValueError, match="2 hard links; .*other links with the old contents"):
            other.save(tmp_path / name)
    assert (tmp_path / "a.safetensors").read_bytes() == before == (tmp_path / "b.safetensors").read_bytes()
    assert os.stat(tmp_path / "a.safetensors").st_ino == os.stat(tmp_path / "b.safetensors").st_ino
    assert _listing(tmp_path) == ["a.safetensors", "b.safetensors"]


# ------------------------------------------------------------------------ symlinks
@posix
def test_save_through_a_symlink_writes_its_target(tmp_path, net, other):
    target = net.save(tmp_path / "real.safetensors")
    link = tmp_path / "link.safetensors"
    link.symlink_to("real.safetensors")
    assert other.save(link) == link
    assert link.is_symlink() and os.readlink(link) == "real.safetensors"
    assert _same_params(target, other) and _same_params(link, other)
    assert _listing(tmp_path) == ["link.safetensors", "real.safetensors"]


@posix
def test_save_through_a_dangling_symlink_creates_its_target(tmp_path, net):
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.safetensors"
    link.symlink_to(tmp_path / "sub" / "real.safetensors")
    net.save(link)
    assert link.is_symlink() and _same_params(tmp_path / "sub" / "real.safetensors", net)
    assert _listing(tmp_path / "sub") == ["real.safetensors"]


@posix
def test_symlink_loops_are_refused(tmp_path, net):
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to("loop.safetensors")
    with pytest.raises(ValueError, match="loop"):
        net.save(loop)
    with pytest.raises(ValueError, match="loop"):
        sn.Network.load(loop)
    assert loop.is_symlink()


def test_check_output_path_resolves_and_never_creates(tmp_path):
    assert _files.check_output_path(tmp_path / "new.bin", "x") == tmp_path.resolve() / "new.bin"
    assert _listing(tmp_path) == []
    if os.name == "posix":
        (tmp_path / "link").symlink_to("elsewhere.bin")
        assert _files.check_output_path(tmp_path / "link", "x") == tmp_path.resolve() / "elsewhere.bin"


# ------------------------------------------------------------------------ the folder
def test_save_into_a_missing_folder_or_a_file_is_refused(tmp_path, net):
    with pytest.raises(ValueError, match="the folder .*nope does not exist") as exc:
        net.save(tmp_path / "nope" / "m.safetensors")
    assert isinstance(exc.value, FileNotFoundError)  # as open() would raise, for callers catching OSError
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="file.* is a regular file, not a directory"):
        net.save(tmp_path / "file" / "m.safetensors")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_save_into_a_read_only_folder_is_refused(tmp_path, net):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            net.save(folder / "m.safetensors")
    finally:
        folder.chmod(0o700)


# ------------------------------------------------------------------------ permissions and ownership
@posix
def test_permission_bits_survive_a_resave(tmp_path, net, other):
    path = net.save(tmp_path / "m.safetensors")
    for mode in (0o600, 0o640, 0o444):
        path.chmod(mode)
        other.save(path)
        assert stat.S_IMODE(path.stat().st_mode) == mode and _same_params(path, other)
        net, other = other, net


@needs_root
def test_owner_and_group_survive_a_resave_by_root(tmp_path, net, other):
    path = net.save(tmp_path / "m.safetensors")
    os.chown(path, 12345, 23456)
    path.chmod(0o640)
    other.save(path)
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (12345, 23456, 0o640)


# ------------------------------------------------------------------------ temporaries of killed saves
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


@posix
def test_only_temporaries_of_dead_writers_are_removed(tmp_path, net):
    path = net.save(tmp_path / "m.safetensors")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        token = "0123456789ab"
        names = {
            f".m.safetensors.{dead}.{token}.tmp": False,          # a killed save of this target: removed
            f".m.safetensors.{dead}.ba9876543210.tmp": False,
            f".m.safetensors.{os.getpid()}.{token}.tmp": True,     # a save in progress in this process
            f".m.safetensors.{live.pid}.{token}.tmp": True,        # ... in another live process
            f".other.safetensors.{dead}.{token}.tmp": True,        # another target's
            f".m.safetensors.{dead}.tmp": True,                    # not the pattern
            f".m.safetensors.{dead}.{token}.tmp.keep": True,
        }
        for name in names:
            (tmp_path / name).write_bytes(b"partial")
        net.save(path)
        assert _listing(tmp_path) == sorted([n for n, kept in names.items() if kept] + ["m.safetensors"])
    finally:
        live.kill()
        live.wait()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="kills forked children (POSIX)")
def test_saves_killed_mid_write_leave_nothing_after_the_next_save(tmp_path):
    """A child saves a 2.7 MB network over and over and is killed (SIGKILL) at a random moment once its
    first write has begun, up to 20 times; its temporary is left behind when the kill lands inside a
    write. The next save removes it: afterwards the folder holds the model file alone, and it loads."""
    big = sn.Network.mlp(128, (512, 512), 8, skip="first-to-output", seed=0)
    target = big.save(tmp_path / "m.safetensors")
    started = time.perf_counter()
    big.save(target)
    save_time = time.perf_counter() - started
    rng = np.random.default_rng(0)
    interrupted = 0
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            try:
                while True:
                    big.save(target)
            finally:
                os._exit(1)
        # from its first temporary on (a forked child can take longer than a save to start writing)
        deadline = time.perf_counter() + 20 * save_time + 10
        while not any(f".{pid}." in name for name in os.listdir(tmp_path)) and time.perf_counter() < deadline:
            time.sleep(save_time / 100)
        time.sleep(rng.uniform(0, 2 * save_time))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        leftovers = [n for n in _listing(tmp_path) if n != "m.safetensors"]
        assert len(leftovers) <= 1  # each child's save removed the temporaries of the ones killed before
        interrupted += len(leftovers)
        if interrupted >= 3:
            break
    assert interrupted > 0, "no kill landed inside a write"
    big.save(target)
    assert _listing(tmp_path) == ["m.safetensors"]
    assert _same_params(target, big)


# ------------------------------------------------------------------------ loading special files
@posix
@pytest.mark.parametrize("loader", LOADERS, ids=list(LOADERS))
def test_loading_a_fifo_without_writer_is_refused_at_once(tmp_path, loader):
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    outcome = {}

    def run():
        try:
            LOADERS[loader](fifo)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)  # a guard against a hang, not a timing assertion: the refusal comes at once
    if worker.is_alive():  # release the blocked open before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail(f"{loader} blocked on a FIFO without a writer")
    assert isinstance(outcome.get("error"), ValueError), outcome
    assert "m.safetensors: it is a FIFO" in str(outcome["error"])
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("loader", LOADERS, ids=list(LOADERS))
def test_loading_a_folder_is_refused(tmp_path, loader):
    (tmp_path / "m.safetensors").mkdir()
    with pytest.raises(ValueError, match=r"model file .*m\.safetensors: it is a directory"):
        LOADERS[loader](tmp_path / "m.safetensors")


@needs_root
def test_loading_a_character_device_is_refused(tmp_path):
    node = _char_device(tmp_path / "m.safetensors")
    for load in LOADERS.values():
        with pytest.raises(ValueError, match="it is a character device"):
            load(node)


@posix
def test_loading_a_socket_is_refused(tmp_path):
    with _socket(tmp_path / "m.sock"), pytest.raises(ValueError, match="it is a socket"):
        sn.Network.load(tmp_path / "m.sock")


@posix
def test_loading_through_a_symlink_and_a_missing_file(tmp_path, net):
    net.save(tmp_path / "real.safetensors")
    (tmp_path / "link.safetensors").symlink_to("real.safetensors")
    assert _same_params(tmp_path / "link.safetensors", net)
    (tmp_path / "dangling.safetensors").symlink_to("absent.safetensors")
    for missing in ("absent.safetensors", "dangling.safetensors"):
        with pytest.raises(FileNotFoundError, match="no such file") as exc:
            sn.Network.load(tmp_path / missing)
        assert isinstance(exc.value, ValueError)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open descriptors (Linux)")
def test_refused_loads_close_their_descriptors(tmp_path):
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        for name in ("folder", "fifo"):
            with pytest.raises(ValueError):
                sn.Network.load(tmp_path / name)
    assert len(os.listdir("/proc/self/fd")) == before


def test_check_input_path(tmp_path):
    (tmp_path / "data.csv").write_text("a\n1\n")
    (tmp_path / "folder").mkdir()
    assert _files.check_input_path(tmp_path / "data.csv", "data file") == tmp_path / "data.csv"
    with pytest.raises(ValueError, match=r"data file .*folder: it is a directory"):
        _files.check_input_path(tmp_path / "folder", "data file")
    with pytest.raises(FileNotFoundError, match="data file .*absent.csv: no such file"):
        _files.check_input_path(tmp_path / "absent.csv", "data file")
    if os.name == "posix":
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(ValueError, match="it is a FIFO"):
            _files.check_input_path(tmp_path / "fifo", "data file")


# ------------------------------------------------------------------------ the report writer shares it
@posix
def test_report_files_are_written_by_the_same_writer(tmp_path):
    write_report_file(tmp_path / "report.md", "# ln 2 \u2248 0.693\n")
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == "# ln 2 \u2248 0.693\n"
    os.mkfifo(tmp_path / "report.html")
    with pytest.raises(ValueError, match=r"report file .*report\.html: it is a FIFO"):
        write_report_file(tmp_path / "report.html", b"<html></html>")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "report.html").st_mode)
    assert _listing(tmp_path) == ["report.html", "report.md"]


def test_a_name_too_long_for_a_plain_temporary_name_saves(tmp_path, net, other):
    path = tmp_path / ("m" * 240 + ".safetensors")  # 252 bytes: the pid and token would pass NAME_MAX
    net.save(path)
    other.save(path)
    assert _listing(tmp_path) == [path.name] and _same_params(path, other)
