"""A byte-bounded pool of reusable buffers, keyed by what they fit (e.g. a batch size).

``take`` hands out a free object for a key (or makes one), so no two callers ever share one; ``give``
returns it. Free objects are kept, least recently returned dropped first, while their bytes fit the
budget; an object larger than the whole budget is never kept. A training loop reuses its one or two
batch sizes with no allocation per step, and a predict over a huge batch does not pin its gigabytes
after it returns.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class BytePool(Generic[T]):
    """Free objects per key, at most ``budget`` bytes in all; ``nbytes(obj)`` measures one."""

    def __init__(self, budget: int, nbytes: Callable[[T], int]):
        self.budget = budget
        self._nbytes = nbytes
        self._free: OrderedDict[tuple[Hashable, int], tuple[T, int]] = OrderedDict()  # (key, serial) -> (object, bytes)
        self._out: dict[int, int] = {}  # id of an object taken from the pool -> its bytes
        self._bytes = 0
        self._serial = 0
        self._lock = threading.Lock()

    @property
    def cached_bytes(self) -> int:
        """Bytes held by the free objects."""
        return self._bytes

    def take(self, key: Hashable, make: Callable[[], T]) -> T:
        """A free object for ``key`` (the most recently returned), else ``make()``."""
        with self._lock:
            for slot in reversed(self._free):
                if slot[0] == key:
                    obj, size = self._free.pop(slot)
                    self._bytes -= size
                    self._out[id(obj)] = size
                    return obj
        return make()

    def give(self, key: Hashable, obj: T) -> None:
        """Return ``obj`` for reuse; the oldest free objects go when the budget is exceeded."""
        size = self._out.pop(id(obj), None)
        if size is None:  # made by take's caller: measured once, here
            size = self._nbytes(obj)
        if size > self.budget:
            return
        with self._lock:
            self._serial += 1
            self._free[(key, self._serial)] = (obj, size)
            self._bytes += size
            while self._bytes > self.budget:
                _, (_, old_size) = self._free.popitem(last=False)
                self._bytes -= old_size

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self._bytes = 0
