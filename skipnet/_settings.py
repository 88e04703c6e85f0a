"""Public settings validated on every assignment by the same check the constructor uses.

A plain attribute would let ``trainer.lr = -1`` train by gradient ascent, or ``trainer.batch_size = 0``
fail deep inside a fit; a ``Setting`` runs its check (a function ``check(name, value) -> value``, the
one the constructor runs, e.g. from skipnet._validation) on every write and stores what it returns.
``Fixed`` is an attribute set once by the constructor and read-only afterwards (an object a kernel
was bound to).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Setting:
    """A data descriptor: ``obj.name = value`` stores ``check(name, value)``."""

    def __init__(self, check: Callable[[str, Any], Any], doc: str = ""):
        self.check = check
        self.__doc__ = doc

    def __set_name__(self, owner, name: str) -> None:
        self.name, self.slot = name, "_setting_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return getattr(obj, self.slot)

    def __set__(self, obj, value) -> None:
        setattr(obj, self.slot, self.check(self.name, value))

    def __delete__(self, obj) -> None:
        raise AttributeError(f"{type(obj).__name__}.{self.name} cannot be deleted")


class Fixed:
    """A data descriptor set once (by the constructor, through ``init``) and read-only afterwards."""

    def __init__(self, why: str, doc: str = ""):
        self.why = why
        self.__doc__ = doc

    def __set_name__(self, owner, name: str) -> None:
        self.name, self.slot = name, "_fixed_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return getattr(obj, self.slot)

    def init(self, obj, value) -> None:
        """The constructor's one write."""
        setattr(obj, self.slot, value)

    def __set__(self, obj, value) -> None:
        raise AttributeError(f"{type(obj).__name__}.{self.name} cannot be replaced: {self.why}")

    def __delete__(self, obj) -> None:
        self.__set__(obj, None)
