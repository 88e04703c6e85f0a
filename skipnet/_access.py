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
from collections import Counter
from contextlib import contextmanager

BUSY = ("this Network is being used by another thread (Trainer.fit, gradients, trace, set_parameters or "
        "load_weights is running): a network cannot be read while it is written, nor written twice at "
        "once; give each thread its own net.copy(), or serialise the calls with a lock of your own")


class AccessGuard:
    """Reader/writer admission for one network (see the module docstring)."""

    __slots__ = ("_cond", "_depth", "_readers", "_writer", "_writer_waiting")

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers: Counter[int] = Counter()  # thread id -> reads it holds
        self._writer: int | None = None  # thread id of the write in progress
        self._depth = 0  # nested writes of that thread
        self._writer_waiting = False

    @contextmanager
    def reading(self):
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # a read inside this thread's own write
                owned = False
            elif self._writer is not None or self._writer_waiting:
                raise RuntimeError(BUSY)
            else:
                self._readers[me] += 1
                owned = True
        try:
            yield
        finally:
            if owned:
                with self._cond:
                    self._readers[me] -= 1
                    if not self._readers[me]:
                        del self._readers[me]
                        self._cond.notify_all()

    @contextmanager
    def writing(self):
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
            else:
                if self._writer is not None or self._writer_waiting:
                    raise RuntimeError(BUSY)
                if self._readers[me]:
                    raise RuntimeError("a Network cannot be written from inside a read of it on the same "
                                       "thread (e.g. set_parameters called while forward is running)")
                self._writer_waiting = True
                try:
                    while self._readers:
                        self._cond.wait()
                finally:
                    self._writer_waiting = False
                self._writer, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._cond.notify_all()
