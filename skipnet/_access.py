"""Many readers or one writer per network, without blocking behind a long write.

A Network is read by ``forward``/``predict`` and the diagnostics' forward passes (each with its own
workspace, so any number of threads may read at once) and written by ``fit``, ``gradients``, ``trace``,
``set_parameters`` and ``load_weights`` (the weights or the shared gradient buffer change). A write that
meets another write, and a read that meets a write, raise RuntimeError at once instead of waiting: a fit
can run for minutes, and a silent wait (or a silently lost update) is worse than a clear error. A write
that meets only reads waits for them to finish; reads are short and new ones are refused meanwhile.

Both are reentrant on the writing thread: a Trainer callback may call ``net.forward`` or
``net.set_parameters`` from inside ``fit``.
"""

from __future__ import annotations

import threading

BUSY = ("this Network is being used by another thread (Trainer.fit, gradients, trace, set_parameters or "
        "load_weights is running): a network cannot be read while it is written, nor written twice at "
        "once; give each thread its own net.copy(), or serialise the calls with a lock of your own")


class AccessGuard:
    """Reader/writer admission for one network (see the module docstring)."""

    __slots__ = ("_cond", "_depth", "_readers", "_writer", "_writer_waiting")

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}  # thread id -> reads it holds
        self._writer: int | None = None  # thread id of the write in progress
        self._depth = 0  # nested writes of that thread
        self._writer_waiting = False

    def reading(self) -> _Read:
        """A context manager for one read (refused during a write by another thread)."""
        return _Read(self)

    def writing(self) -> _Write:
        """A context manager for one write (refused during another thread's write; waits for reads)."""
        return _Write(self)

    def _enter_read(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # a read inside this thread's own write
                return False
            if self._writer is not None or self._writer_waiting:
                raise RuntimeError(BUSY)
            self._readers[me] = self._readers.get(me, 0) + 1
            return True

    def _exit_read(self) -> None:
        me = threading.get_ident()
        with self._cond:
            left = self._readers[me] - 1
            if left:
                self._readers[me] = left
            else:
                del self._readers[me]
                if self._writer_waiting:  # the only thread that ever waits: a write for the reads
                    self._cond.notify_all()

    def _enter_write(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return
            if self._writer is not None or self._writer_waiting:
                raise RuntimeError(BUSY)
            if me in self._readers:
                raise RuntimeError("a Network cannot be written from inside a read of it on the same "
                                   "thread (e.g. set_parameters called while forward is running)")
            self._writer_waiting = True
            try:
                while self._readers:
                    self._cond.wait()
            finally:
                self._writer_waiting = False
            self._writer, self._depth = me, 1

    def _exit_write(self) -> None:
        with self._cond:
            self._depth -= 1
            if not self._depth:
                self._writer = None  # nothing waits for a write to end (others meeting it raise)


class _Read:
    """``with guard.reading():`` (a class, not a generator: a fit enters a few of these per call)."""

    __slots__ = ("guard", "owned")

    def __init__(self, guard: AccessGuard):
        self.guard, self.owned = guard, False

    def __enter__(self):
        self.owned = self.guard._enter_read()
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.guard._exit_read()


class _Write:
    """``with guard.writing():``."""

    __slots__ = ("guard",)

    def __init__(self, guard: AccessGuard):
        self.guard = guard

    def __enter__(self):
        self.guard._enter_write()
        return self

    def __exit__(self, *exc) -> None:
        self.guard._exit_write()
