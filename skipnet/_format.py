"""Numbers as people write them: plain decimal notation for tables, reports and messages."""

from __future__ import annotations

import numpy as np


def fmt(value, digits: int | None = None) -> str:
    """Plain decimal notation (0.375, not 3.75e-01): the shortest digits that round-trip in the dtype
    (at most 8 significant), or ``digits`` significant digits when given."""
    value = np.asarray(value)
    if value.ndim:
        return "[" + ", ".join(fmt(v, digits) for v in value.ravel()) + "]"
    if value.dtype.kind not in "f":
        return str(value)
    if value == 0:
        return "0"
    if not np.isfinite(value):
        return str(float(value))
    return np.format_float_positional(value, precision=digits or 8, unique=digits is None,
                                      fractional=False, trim="-")
