"""Public settings validated on every assignment by the same check the constructor uses.

A plain attribute would let ``trainer.lr = -1`` train by gradient ascent, or ``trainer.batch_size = 0``
fail deep inside a fit. A class deriving from ``Checked`` declares ``lr = Setting(check, doc)``: every
assignment ``obj.lr = value`` (the constructor's included) stores ``check("lr", value)``, the function the
constructor's validation is (e.g. from skipnet._validation). ``Fixed(why)`` declares an attribute set
once by the constructor (``Fixed.init``) and read-only afterwards (an object a kernel was bound to).

Reads are plain instance-attribute reads (both are non-data descriptors, consulted only on the class):
a training loop reads its settings many times per call, and a Python descriptor per read would cost
more than the check per write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar


class _Declared:
    """A class-level declaration (a non-data descriptor): reads of a set attribute never reach it."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        raise AttributeError(f"{type(obj).__name__}.{self.name} has not been set")


class Setting(_Declared):
    """A setting whose every assignment stores ``check(name, value)``."""

    def __init__(self, check: Callable[[str, Any], Any], doc: str = ""):
        self.check = check
        self.__doc__ = doc


class Fixed(_Declared):
    """An attribute set once, by the constructor through ``init``, and read-only afterwards."""

    def __init__(self, why: str, doc: str = ""):
        self.why = why
        self.__doc__ = doc

    def init(self, obj, value) -> None:
        """The constructor's one write."""
        object.__setattr__(obj, self.name, value)


class Checked:
    """Base of classes with Settings and Fixed attributes: assignments are checked or refused."""

    __slots__ = ()
    _specs: ClassVar[dict] = {}  # name -> Setting or Fixed, over the class and its bases (__init_subclass__)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._specs = {name: spec for klass in reversed(cls.__mro__) for name, spec in vars(klass).items()
                      if isinstance(spec, (Setting, Fixed))}

    def __setattr__(self, name: str, value) -> None:
        spec = self._specs.get(name)
        if spec is not None:
            if isinstance(spec, Fixed):
                raise AttributeError(f"{type(self).__name__}.{name} cannot be replaced: {spec.why}")
            value = spec.check(name, value)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name in self._specs:
            raise AttributeError(f"{type(self).__name__}.{name} cannot be deleted")
        object.__delattr__(self, name)
