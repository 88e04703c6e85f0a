"""Tables for the command line: read CSV/.npy data, pick the target column, format predictions as CSV,
and fold input/target standardisation into a trained network so that the saved file works on raw columns.

NumPy only (no pandas). A CSV file has one header row of column names and numeric cells; a first column
with an empty name counting 0, 1, ..., n-1 (the index pandas' ``DataFrame.to_csv()`` writes by default)
is an index column and is dropped. A ``.npy`` file holds a 2-D numeric array whose columns are addressed
by index. Messages count rows (the data rows after the header) and columns from 1.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._files import check_input_path
from ._targets import REGRESSION_LOSSES
from .network import Network


@dataclass
class Table:
    """A numeric table: ``values`` (n_rows, n_columns) float64 and ``names`` (None for .npy)."""

    path: Path
    values: np.ndarray
    names: list[str] | None

    @property
    def n_columns(self) -> int:
        return self.values.shape[1]


def read_table(path: str | os.PathLike, what: str = "DATA") -> Table:
    """Read a CSV file with a header row, or a 2-D .npy array; ValueError naming the file otherwise
    (``what``: the argument that named it, for a file that is missing or not a regular file)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".csv"):
        check_input_path(path, what)  # never open a FIFO or device: a read could block or never end
    if suffix == ".npy":
        values, names = _read_npy(path), None
    elif suffix == ".csv":
        values, names = _read_csv(path)
    else:
        raise ValueError(f"{path}: expected a .csv file (with a header row) or a .npy array")
    if values.shape[0] == 0:
        raise ValueError(f"{path}: the table has no data rows")
    values = np.asarray(values, np.float64)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        where = f"column {col + 1}" + (f" ({names[col]!r})" if names else "")
        raise ValueError(f"{path}: missing or non-finite value in row {row + 1}, {where}")
    return Table(path, values, names)


def _read_npy(path: Path) -> np.ndarray:
    """The 2-D numeric array of a .npy file, checked against the file's size before anything is
    allocated (a header may claim terabytes)."""
    with open(path, "rb") as f:
        start = f.read(len(_NPY_MAGIC))
    if start.startswith(b"PK\x03\x04"):
        raise ValueError(f"{path}: a .npz archive, not a .npy array; save one array with numpy.save, "
                         "or extract it from the archive")
    if start != _NPY_MAGIC:
        raise ValueError(f"{path}: not a .npy file" + (" (it is empty)" if not start else ""))
    try:  # memory-mapped: numpy compares the declared shape with the file's size
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        if mapped.ndim != 2 or mapped.dtype.kind not in "biuf":
            raise ValueError(f"expected a 2-D numeric array, got shape {mapped.shape} and dtype {mapped.dtype}")
        values = np.array(mapped, np.float64)
        del mapped  # closes the mapping
    except (ValueError, EOFError) as exc:  # object arrays, truncated files, damaged headers
        raise ValueError(f"{path}: not a readable numeric .npy array ({exc})") from exc
    return values


_NPY_MAGIC = b"\x93NUMPY"


def _read_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    try:
        return _parse_csv(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file (the 'utf-8' codec cannot decode byte "
                         f"0x{exc.object[exc.start]:02x}: {exc.reason}); expected a CSV file") from exc
    except csv.Error as exc:  # e.g. a field past csv.field_size_limit()
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from exc


def _parse_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), None)
    if not header or not any(name.strip() for name in header):
        raise ValueError(f"{path}: the file is empty; expected a header row of column names")
    names = [name.strip() for name in header]
    indexed = len(names) > 1 and names[0] == ""  # pandas' to_csv(): an unnamed index column first
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or "" in names[indexed:]:
        raise ValueError(f"{path}: column names must be unique and non-empty, got {names}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, quotechar='"',
                                encoding="utf-8-sig", dtype=np.float64)
    except UnicodeDecodeError:  # a ValueError too: _read_csv names the file and the byte
        raise
    except ValueError as exc:
        where = _locate_csv_problem(path, len(names))
        raise ValueError(f"{path}: {where or exc} (rows after the header must hold numbers only)") from exc
    if values.size and values.shape[1] != len(names):
        raise ValueError(f"{path}: the header names {len(names)} columns but the rows have "
                         f"{values.shape[1]}")
    values = values.reshape(-1, len(names)) if not values.size else values
    if indexed:
        if not np.array_equal(values[:, 0], np.arange(values.shape[0])):
            raise ValueError(f"{path}: column 1 has no name and does not count the rows 0, 1, 2, ... as an "
                             "index column written by pandas' to_csv() does; name it, or drop it")
        values, names = values[:, 1:], names[1:]
    return values, names


def _locate_csv_problem(path: Path, n_columns: int) -> str | None:
    """Where the first malformed data row is, counting rows and columns from 1 (NumPy's message counts
    rows from 0 and columns from 1), or None."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader, None)
        row = 0
        for cells in reader:
            if not cells:
                continue  # a blank line, skipped as loadtxt does
            row += 1
            line = f"row {row} (line {reader.line_num} of the file)"
            if len(cells) != n_columns:
                return f"{line} has {len(cells)} cells but the header names {n_columns} columns"
            for col, cell in enumerate(cells):
                try:
                    float(cell)
                except ValueError:
                    return f"{line}, column {col + 1}: {cell!r} is not a number"
    return None


def column_index(table: Table, target: str) -> int:
    """The index of column ``target``: a name for CSV, an integer index (negative counts from the end)
    for .npy."""
    if table.names is not None:
        if target not in table.names:
            raise ValueError(f"{table.path}: no column named {target!r}; the columns are {table.names}")
        return table.names.index(target)
    try:
        index = int(target)
    except ValueError:
        raise ValueError(f"--target must be a column index for a .npy file, got {target!r}") from None
    if not -table.n_columns <= index < table.n_columns:
        raise ValueError(f"--target {index} is out of range: {table.path} has {table.n_columns} columns")
    return index % table.n_columns


def format_table(columns: dict[str, np.ndarray]) -> str:
    """Named 1-D columns as CSV text: a header row, then numbers in round-trip precision."""
    header = ",".join(_quote(name) for name in columns)
    values = np.column_stack([np.asarray(v, np.float64) for v in columns.values()])
    lines = [header] + [",".join(f"{v:.17g}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def _quote(name: str) -> str:
    return f'"{name.replace(chr(34), chr(34) * 2)}"' if any(c in name for c in ',"\n') else name


@dataclass
class Standardizer:
    """Means and scales of a data set's features (and of a regression target)."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float = 0.0
    y_scale: float = 1.0

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray | None = None) -> Standardizer:
        """Column means and standard deviations (a constant column gets scale 1) of the features X
        (n, n_features) and of a single target y, (n,) or (n, 1)."""
        if y is not None:
            y = y.reshape(-1)

        def scale(a):
            s = a.std(axis=0)
            return np.where(s > 0, s, 1.0)
        with np.errstate(over="ignore", invalid="ignore"):
            fitted = cls(X.mean(axis=0), scale(X)) if y is None else \
                cls(X.mean(axis=0), scale(X), float(y.mean()), float(scale(y)))
        if not np.isfinite([*fitted.x_mean, *fitted.x_scale, fitted.y_mean, fitted.y_scale]).all():
            raise ValueError("the columns' means or standard deviations overflow (values near the float "
                             "limit): rescale the data, or use --no-standardize")
        return fitted

    @classmethod
    def for_training(cls, X: np.ndarray, y: np.ndarray, loss: str, enabled: bool = True) -> Standardizer:
        """The standardisation of ``skipnet train`` and ``skipnet sweep``: fitted on the training rows'
        features, and on their target for a regression loss (l1, mse); the identity when not
        ``enabled`` (``--no-standardize``)."""
        if not enabled:
            return cls(np.zeros(X.shape[1]), np.ones(X.shape[1]))
        return cls.fit(X, y if loss in REGRESSION_LOSSES else None)

    def targets(self, y: np.ndarray, loss: str) -> np.ndarray:
        """``y`` standardised for a regression loss; class targets as they are."""
        return self.y(y) if loss in REGRESSION_LOSSES else y

    def loss_unit(self, loss: str) -> float:
        """The factor that turns a loss on standardised targets into the target's units."""
        return self.y_scale if loss == "l1" else self.y_scale ** 2 if loss == "mse" else 1.0

    def x(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_mean) / self.x_scale

    def y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean) / self.y_scale

    @staticmethod
    def check_foldable(net: Network) -> None:
        """ValueError unless ``fold_into`` can rewrite ``net`` (known from the architecture alone)."""
        out = len(net.layers) - 1
        for skip in net.skips:
            if skip.identity and (skip.src == -1 or skip.dst == out):
                raise ValueError("the standardisation cannot be folded into a network with an identity skip "
                                 "from the input or into the output; use --no-standardize")
        needs_bias = {0, out} | {s.dst for s in net.skips if s.src == -1}
        if not all(net.layers[k].bias for k in needs_bias):
            raise ValueError("the standardisation needs biases in the layers fed by the input and in the "
                             "output layer; use --no-standardize")

    def fold_into(self, net: Network) -> None:
        """Rewrite ``net``'s weights so that it maps raw features to raw targets exactly as it mapped
        standardised ones: layer 0 (and learned skips from the input) absorb the input scaling, the
        output layer (and learned skips into it) the target scaling. Needs biases where offsets land
        and no identity skip from the input or into the output (see ``check_foldable``)."""
        self.check_foldable(net)
        p = net.internals.param_views
        inv = 1.0 / self.x_scale
        into_output = [i for i, s in enumerate(net.skips) if s.dst == len(net.layers) - 1]
        consumers = [(0, "layers.0.weight")] + [(s.dst, f"skips.{i}.weight")
                                                 for i, s in enumerate(net.skips) if s.src == -1]
        for dst, name in consumers:
            W = p[name].astype(np.float64)
            p[f"layers.{dst}.bias"][...] -= W @ (self.x_mean * inv)
            p[name][...] = W * inv
        if self.y_mean == 0.0 and self.y_scale == 1.0:
            return
        out = len(net.layers) - 1
        for name in [f"layers.{out}.weight"] + [f"skips.{i}.weight" for i in into_output]:
            p[name][...] *= self.y_scale
        p[f"layers.{out}.bias"][...] = p[f"layers.{out}.bias"] * self.y_scale + self.y_mean
