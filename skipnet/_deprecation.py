"""Old spellings kept working: a deprecated form behaves exactly as before and warns, naming the new one.

The public names are a contract (docs/design.md, section 3): names are added, never renamed or removed.
When a clearer spelling is added, the old one stays as an alias that warns with ``FutureWarning``, the
category Python shows to every user by default (``DeprecationWarning`` is hidden outside ``__main__``
and test runners), and whose message names the spelling to use instead. Two decorators cover the cases:

- ``keyword_from(name)``: passing ``name`` or any later parameter positionally is deprecated (as
  scikit-learn's ``_deprecate_positional_args``). The signature is not changed, so such calls still
  work exactly as before; they warn, so that a future version can make those parameters keyword-only.
- ``renamed_keywords(old="new")``: ``old=`` is the deprecated spelling of the keyword ``new=``; passing
  both is a TypeError.

Both wrap with ``functools.wraps``: ``inspect.signature`` and the API reference show the function's own
signature; a call costs one Python call and one length test (or dictionary lookup) more.

On the command line an old option is declared with ``action=DeprecatedOption, use="--new"``: it stores
its value as the new option does and prints ``PROG: warning: option --old is deprecated; use --new`` on
stderr (what argparse's own ``deprecated=True`` prints from Python 3.13 on).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
import warnings
from collections.abc import Callable
from typing import TypeVar, cast

F = TypeVar("F", bound=Callable)

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _where(func: Callable) -> str:
    """How a message names the callable: ``Trainer`` for ``Trainer.__init__``, else its qualified name."""
    name = func.__qualname__
    return name.removesuffix(".__init__")


def keyword_from(first: str) -> Callable[[F], F]:
    """Decorator: passing ``first``, or any parameter after it, positionally warns with FutureWarning.

    ``first`` must be a positional-or-keyword parameter of the decorated function; the parameters before
    it (``self`` or ``cls`` included) stay positional without a warning. The call then proceeds with the
    arguments as given: the result is the same, bit for bit, as with keywords.
    """

    def decorate(func: F) -> F:
        positional = [p.name for p in inspect.signature(func).parameters.values() if p.kind in _POSITIONAL]
        if first not in positional:
            raise TypeError(f"keyword_from({first!r}): {func.__qualname__} has no positional parameter "
                            f"{first!r}")
        limit = positional.index(first)
        where = _where(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if limit < len(args) <= len(positional):  # more than the parameters: the call's own TypeError
                warnings.warn(_positional_message(where, positional[limit:len(args)]), FutureWarning,
                              stacklevel=2)
            return func(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def _positional_message(where: str, names: list[str]) -> str:
    """The warning for ``names`` passed positionally to ``where``."""
    listed = ", ".join(names)
    keywords = ", ".join(f"{name}=..." for name in names)
    them = "it" if len(names) == 1 else "them"
    return (f"{where}: passing {listed} positionally is deprecated; pass {keywords} (a future version "
            f"takes {them} by keyword only)")


def renamed_keywords(**new_names: str) -> Callable[[F], F]:
    """Decorator: ``old=value`` is the deprecated spelling of ``new=value`` for each ``old="new"`` given.

    The old keyword warns with FutureWarning naming the new one and is passed on as the new one, so the
    call behaves identically; giving both raises TypeError. The new names are the function's parameters
    (the old ones are documented in its docstring, not in its signature).
    """

    def decorate(func: F) -> F:
        parameters = inspect.signature(func).parameters
        for old, new in new_names.items():
            if new not in parameters or old in parameters:
                raise TypeError(f"renamed_keywords({old}={new!r}) does not fit the signature of "
                                f"{func.__qualname__}")
        where = _where(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in new_names.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{where}: pass {new}= or its deprecated spelling {old}=, not both")
                    warnings.warn(f"{where}: {old}= is deprecated; pass {new}=... (the same values)",
                                  FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


class DeprecatedOption(argparse.Action):
    """An argparse action for the old spelling of an option (``use``: the new one): it stores the value
    given, as the new option's default action does, and says on stderr which spelling to use."""

    def __init__(self, option_strings, dest, use: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.use = use

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: warning: option {option_string} is deprecated; use {self.use}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)
