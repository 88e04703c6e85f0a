"""Attribute-write probes: hostile values assigned to every public data attribute, then the public methods.

A probe takes a fresh object from a case's ``make``, assigns one hostile value to one attribute, and
runs the case's calls on it, one after the other. Whatever fails must fail cleanly: the assignment or a
call raises one of ALLOWED with a message; anything else (another exception type, an empty message, an
AssertionError from a call's own check of its result, a probe running past PROBE_SECONDS) is reported.
Probes run in a subprocess, so a crash (a signal) is caught as a negative return code, and many probes
share one subprocess so that a few interpreters cover everything.

Usage, from a test module that defines ``CASES = {name: Case(...)}`` at module level::

    failures = run_cases(__file__, ["StepLR", "CosineLR"])
    assert not failures, "\\n".join(failures)

The subprocess imports that test module by path and runs the named cases (``python _attribute_harness.py
MODULE_PATH NAME...``), so factories and calls are ordinary functions of the test module.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import os
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ALLOWED = (ValueError, TypeError, AttributeError, RuntimeError)
PROBE_SECONDS = 10  # the default limit: a probe running longer hangs (every probe here takes milliseconds)
HERE = Path(__file__).resolve().parent


@dataclass
class Case:
    """One object kind to probe.

    make: a fresh object (unfitted, fitted, started...) for each probe.
    calls: (label, function of the object) run in order after the assignment; a function may assert on
        what the method returned (finite, right shape), which turns silent garbage into a failure.
    attributes: the names to probe, from an object (default: its public data attributes).
    other: another instance, differently configured; its value of each attribute is probed too (an
        attribute taken from another object: wrong sizes, other classes, another network).
    extra_values: more (label, value) pairs to assign to every attribute.
    seconds: the time limit of one probe (assignment and calls); longer counts as a hang.
    """

    make: Callable[[], object]
    calls: Sequence[tuple[str, Callable[[object], object]]]
    attributes: Callable[[object], list[str]] = field(default=lambda obj: public_data_attributes(obj))
    other: Callable[[], object] | None = None
    extra_values: Sequence[tuple[str, object]] = ()
    seconds: int = PROBE_SECONDS


def public_data_attributes(obj) -> list[str]:
    """Names in dir(obj) without a leading underscore whose values are data, not methods or classes."""
    names = []
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except Exception:  # noqa: BLE001, S112 - a property refusing to be read in this state (available_if)
            continue
        if inspect.ismethod(value) or inspect.isfunction(value) or inspect.isbuiltin(value) \
                or inspect.isclass(value):
            continue
        names.append(name)
    return names


def hostile_values() -> list[tuple[str, object]]:
    """Values of other types, wrong signs and sizes, non-finite numbers, strings, None and plain objects."""
    return [
        ("None", None), ("True", True), ("np.True_", np.True_), ("str 'x'", "x"), ("str 'no'", "no"),
        ("empty str", ""), ("0", 0), ("-1", -1), ("0.5", 0.5), ("-2.5", -2.5), ("-0.0", -0.0),
        ("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("float32 nan", np.float32("nan")),
        ("10**400", 10**400), ("2**63", 2**63), ("1e308", 1e308), ("1j", 1j), ("[1, 2]", [1, 2]),
        ("[]", []), ("(3,)", (3,)), ("{}", {}), ("array 1x2", np.array([[1.0, 2.0]])),
        ("empty array", np.empty(0)), ("object()", object()), ("a function", len),
    ]


def _resized(value) -> list[tuple[str, object]]:
    """The attribute's own value with a wrong size: shortened, doubled, as objects."""
    if isinstance(value, np.ndarray) and value.ndim:
        return [("own[:1]", value[:1]), ("own doubled", np.concatenate([value, value])),
                ("own as object", value.astype(object)), ("own reversed", value[::-1].copy())]
    if isinstance(value, list) and value:
        return [("own[:0]", value[:0]), ("own doubled", value + value), ("own with None", value + [None])]
    if isinstance(value, tuple) and value:
        return [("own[:0]", ()), ("own doubled", value + value)]
    return []


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:300]!r}{where}"


def _clean(exc: BaseException) -> bool:
    return isinstance(exc, ALLOWED) and bool(str(exc).strip())


class _Hang(BaseException):
    """Raised by the alarm in a probe that runs past its time limit (BaseException: no except catches it)."""


def _on_alarm(signum, frame):
    raise _Hang("ran past its time limit (a hang)")


def _alarm(seconds: int) -> None:
    """Arm (or, with 0, disarm) the probe's time limit where the platform has SIGALRM; elsewhere a hang
    is caught only by run_cases' timeout."""
    if hasattr(signal, "SIGALRM"):
        signal.alarm(seconds)


def probe_case(name: str, case: Case) -> tuple[int, list[str]]:
    """Run every probe of one case; (number of probes, failure descriptions)."""
    failures: list[str] = []
    template = case.make()
    other = case.other() if case.other is not None else None
    count = 0
    for attribute in case.attributes(template):
        values = list(hostile_values()) + list(case.extra_values) + _resized(getattr(template, attribute, None))
        if other is not None:
            values.append(("the other instance itself", other))
            if hasattr(other, attribute):
                values.append((f"other.{attribute}", getattr(other, attribute)))
        for label, value in values:
            count += 1
            probe = f"{name}: {attribute} = {label}"
            print(probe, file=sys.stderr, flush=True)  # the last line names the probe if the process dies
            _alarm(case.seconds)
            try:
                failures += _run_probe(probe, case, attribute, value)
            except _Hang as exc:
                failures.append(f"{probe}: {exc}")
            finally:
                _alarm(0)
    return count, failures


def _run_probe(probe: str, case: Case, attribute: str, value) -> list[str]:
    obj = case.make()
    try:
        setattr(obj, attribute, value)
    except Exception as exc:  # noqa: BLE001 - every exception is judged by _clean
        return [] if _clean(exc) else [f"{probe}: the assignment raised {_describe(exc)}"]
    failures = []
    for label, call in case.calls:
        try:
            call(obj)
        except _Hang:
            raise
        except Exception as exc:  # noqa: BLE001 - every exception is judged by _clean
            if not _clean(exc):
                failures.append(f"{probe}, then {label}: {_describe(exc)}")
    return failures


def run_cases(module_path: str | os.PathLike, names: Sequence[str], timeout: float = 300) -> list[str]:
    """Probe the named cases of the test module at ``module_path`` in one subprocess; the failures."""
    import skipnet

    package_root = str(Path(skipnet.__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, str(HERE / "_attribute_harness.py"), str(module_path), *names],
                         check=False, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "PYTHONPATH": package_root + os.pathsep + str(HERE)})
    if out.returncode != 0:
        last = "\n".join(out.stderr.strip().splitlines()[-8:])
        what = f"killed by signal {-out.returncode}" if out.returncode < 0 else f"exit code {out.returncode}"
        return [f"the probe process ended with {what}; its last lines:\n{last}"]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    missing = [name for name in names if report["counts"].get(name, 0) == 0]
    return report["failures"] + [f"{name}: no probes ran" for name in missing]


def _main(module_path: str, names: list[str]) -> None:
    spec = importlib.util.spec_from_file_location("_probed_module", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    warnings.simplefilter("ignore")
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _on_alarm)
    counts, failures = {}, []
    for name in names:
        counts[name], found = probe_case(name, module.CASES[name])
        failures += found
    print(json.dumps({"counts": counts, "failures": failures}))


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2:])
