"""The one boundary: every array and option from a user is checked and converted here, once.

Kernels run without bounds checks, so nothing reaches them that has not passed through these functions:
2-D C-contiguous arrays of the network's dtype, finite, with the expected number of columns and at
least one row. Errors name the argument and say what was expected.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from collections.abc import Iterable

import numpy as np

from . import _kernels

LOSSES = _kernels.LOSS_NAMES  # the kernels' table (csrc/loss_terms.h), in its order
OPTIMIZERS = tuple(_kernels.OPTIMIZER_KINDS)
DTYPES = ("float32", "float64")
# BLAS takes 32-bit ints (LP64): no dimension may reach 2**31.
MAX_DIM = 2**31 - 1


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: fall back to 1 TiB
        return 2**40


# Requests for more bytes than the machine has are refused with a ValueError before anything is
# allocated (rather than a MemoryError from deep inside NumPy, or swapping).
MEMORY_LIMIT = _physical_memory()


def check_memory(what: str, n_bytes: int) -> None:
    """Refuse an allocation of ``n_bytes`` for ``what`` that exceeds MEMORY_LIMIT."""
    if n_bytes > MEMORY_LIMIT:
        raise ValueError(
            f"{what} would need {n_bytes / 2**30:.4g} GiB of memory, more than the "
            f"{MEMORY_LIMIT / 2**30:.4g} GiB this machine has"
        )


def check_dtype(dtype) -> np.dtype:
    """float32 or float64 in the machine's byte order (a ">f8" becomes the native float64)."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError) as exc:  # NumPy parses "f8,(" with ast: SyntaxError
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if dt.name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dt.name!r}")
    return np.dtype(dt.name)


def check_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _show_int(value: int) -> str:
    """``value`` for a message; an integer of more than 30 digits by its magnitude (Python refuses to
    print one of more than 4300 digits)."""
    if abs(value) < 10**30:
        return str(value)
    return f"{'-' if value < 0 else ''}an integer of about 10**{int(abs(value).bit_length() * math.log10(2))}"


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    if type(value) is int and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value  # the common case first: a training loop's counters pass here on every call
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_show_int(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_show_int(value)}")
    return value


def check_bool(name: str, value) -> bool:
    """True or False (a Python or NumPy bool); strings such as "no" are refused, not read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_items(name: str, value, item_type: type) -> list:
    """A list of ``item_type`` from any iterable of them (a bare item or a string is refused)."""
    kind = f"skipnet.{item_type.__name__}"
    if isinstance(value, item_type):
        raise TypeError(f"{name} must be a sequence of {kind}, got a single one: wrap it in a list")
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of {kind}, got {type(value).__name__}")
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, item_type):
            raise TypeError(f"{name}[{i}] must be a {kind}, got {type(item).__name__}")
    return items


def check_float(name: str, value, *, minimum=None, maximum=None, positive=False,
                include_min=True) -> float:
    if type(value) is not float:  # a float passes straight on: settings are checked on every fit
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
        try:
            value = float(value)
        except OverflowError:  # a Python int beyond the float range
            value = math.inf if value > 0 else -math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if minimum is not None and (value < minimum if include_min else value <= minimum):
        raise ValueError(f"{name} must be {'>=' if include_min else '>'} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_input_size(name: str, value, itemsize: int = 8) -> None:
    """Refuse an input whose elements, as ``itemsize``-byte numbers, would exceed MEMORY_LIMIT, before
    anything is materialised: a broadcast view, a memory map or a lazy array (dask, pandas) says its
    size in ``shape`` while taking little or no memory itself. Objects without a shape pass."""
    if type(value) is np.ndarray:  # the common case, and a cheap one: its size is an int
        if value.size * itemsize > MEMORY_LIMIT:
            check_memory(f"{name} of shape {value.shape} ({itemsize * 8}-bit numbers)", value.size * itemsize)
        return
    shape = getattr(value, "shape", None)
    if not isinstance(shape, tuple) or not all(isinstance(d, numbers.Integral) and d >= 0 for d in shape):
        return  # a list (already in memory), or a lazy array of unknown size (checked once converted)
    check_memory(f"{name} of shape {shape} ({itemsize * 8}-bit numbers)", math.prod(map(int, shape)) * itemsize)


def as_real_array(name: str, value) -> np.ndarray:
    """``value`` as an array of a bool, integer or floating dtype (not yet converted or checked).

    Object arrays (e.g. from a DataFrame mixing bool and float columns, or Python ints) are accepted
    when every element is a real number within float64's range; masked arrays are refused, since
    their mask would be silently dropped. Inputs larger than memory as float64 are refused before they
    are materialised (check_input_size).
    """
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array: fill or drop the masked entries first (e.g. .filled())")
    check_input_size(name, value)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from exc
    if arr.dtype.kind == "O":
        check_input_size(name, arr)
        bad = list(itertools.islice((v for v in arr.flat if not isinstance(v, numbers.Real)), 1))
        if bad:
            raise TypeError(f"{name} must hold real numbers, got dtype object"
                            + (f" containing {type(bad[0]).__name__} {bad[0]!r}" if bad else ""))
        try:
            arr = arr.astype(np.float64)
        except OverflowError as exc:  # a Python int beyond float64 (10**400)
            raise ValueError(f"{name} holds a number too large for float64 "
                             f"(magnitude above {np.finfo(np.float64).max:.4g}): {exc}") from exc
        except (ArithmeticError, ValueError, TypeError) as exc:  # a Real subclass whose __float__ fails
            raise ValueError(f"{name} holds a value that cannot be converted to a float: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def _kernel_ready(arr: np.ndarray, dtype) -> bool:
    flags = arr.flags
    return arr.dtype == dtype and flags.c_contiguous and flags.aligned


def as_kernel_array(arr: np.ndarray, dtype) -> np.ndarray:
    """``arr`` as a C-contiguous, aligned array of ``dtype``, copied only when it is not one already.
    (np.ascontiguousarray keeps a misaligned buffer, e.g. one unpickled by dask at an odd offset, and
    kernels reading doubles from it is undefined behaviour, caught by UBSan.)"""
    if _kernel_ready(arr, dtype):  # the common case, without np.require's Python-level work
        return arr
    return np.require(arr, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])


def as_finite(name: str, arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` converted to a C-contiguous, aligned array of ``dtype`` (copied only when needed), all
    finite."""
    if _kernel_ready(arr, dtype):
        out = arr
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported below
            out = as_kernel_array(arr, dtype)
    if not all_finite(out):
        if arr.dtype.kind == "f" and np.isfinite(arr).all():
            raise ValueError(f"{name} has values too large for {dtype.name} "
                             f"(magnitude above {np.finfo(dtype).max:.4g})")
        raise ValueError(f"{name} contains NaN or infinity")
    return out


def as_features(name: str, value, n_features: int, dtype: np.dtype, *, allow_empty=False) -> np.ndarray:
    """A finite, C-contiguous (n, n_features) array of ``dtype`` (copied only when needed)."""
    arr = as_real_array(name, value)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, {n_features}), got shape {arr.shape}"
            + ("; use X.reshape(-1, 1) for a single feature" if arr.ndim == 1 and n_features == 1 else "")
        )
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} must have {n_features} columns (n_inputs), got shape {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: it needs at least one row")
    if arr.shape[0] > MAX_DIM:
        raise ValueError(f"{name} has {arr.shape[0]} rows; at most {MAX_DIM} are supported")
    return as_finite(name, arr, dtype)


def all_finite(arr: np.ndarray) -> bool:
    """True when no element of a C-contiguous float32/float64 array is NaN or infinite."""
    return bool(_kernels.all_finite(arr))


def as_validation(value, n_inputs: int, n_outputs: int, loss: str, dtype: np.dtype):
    """A validation pair (X_val, y_val) checked like training data: features and targets for ``loss``.
    A triple (X_val, y_val, sample_weight_val) weights the validation loss too; see as_validation_weight."""
    if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
        raise ValueError("validation must be a pair (X_val, y_val) or a triple (X_val, y_val, sample_weight_val)")
    Xv = as_features("validation X", value[0], n_inputs, dtype)
    return Xv, as_targets("validation y", value[1], loss, Xv.shape[0], n_outputs, dtype)


def as_validation_weight(value, n_rows: int) -> np.ndarray | None:
    """The weights of a validation triple (checked as as_sample_weight), None for a pair."""
    if len(value) == 2:
        return None
    return as_sample_weight(value[2], n_rows, "validation sample_weight")


def as_targets(name: str, value, loss: str, n_rows: int, n_outputs: int, dtype: np.dtype) -> np.ndarray:
    """Targets for ``loss``: (n, n_outputs) floats of ``dtype`` (l1, mse, bce; a 1-D y is accepted when
    n_outputs == 1) or (n,) int64 class indices in [0, n_outputs) (cross_entropy)."""
    arr = as_real_array(name, value)
    if loss == "cross_entropy":
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1 or arr.shape[0] != n_rows:
            raise ValueError(f"{name} must be class indices of shape ({n_rows},), got shape {arr.shape}")
        if n_outputs < 2:
            raise ValueError("loss='cross_entropy' needs an output layer of at least 2 units (one per class)")
        if arr.dtype.kind == "f" and (not np.isfinite(arr).all() or (arr != np.round(arr)).any()):
            raise ValueError(f"{name} must hold integer class indices for loss='cross_entropy'")
        if arr.size and (arr.min() < 0 or arr.max() >= n_outputs):
            raise ValueError(
                f"{name} must hold class indices in [0, {n_outputs}), got values in "
                f"[{arr.min()}, {arr.max()}]"
            )
        return as_kernel_array(arr, np.int64)
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr[:, None]
    if arr.shape != (n_rows, n_outputs):
        raise ValueError(f"{name} must have shape ({n_rows}, {n_outputs}), got {arr.shape}")
    out = as_finite(name, arr, dtype)
    if loss == "bce" and ((out < 0) | (out > 1)).any():
        raise ValueError(f"{name} must lie in [0, 1] for loss='bce' (binary targets)")
    return out


def as_sample_weight(value, n_rows: int, name: str = "sample_weight") -> np.ndarray | None:
    """Per-row weights for a weighted loss: None (unweighted), or a finite (n_rows,) float64 array of
    values >= 0, not all 0 (a column (n_rows, 1) is accepted). Weights that are all equal give the
    unweighted loss exactly (the weighted mean of a batch is then its mean), so they come back as None:
    such a fit is bit for bit the unweighted one."""
    if value is None:
        return None
    arr = as_real_array(name, value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},), one weight per sample, got shape {arr.shape}")
    out = as_finite(name, arr, np.dtype(np.float64))
    if (out < 0).any():
        raise ValueError(f"{name} must be >= 0, got a minimum of {out.min()}")
    if not out.any():
        raise ValueError(f"{name} is zero for every sample: at least one weight must be positive")
    if (out == out[0]).all():
        return None
    return out
