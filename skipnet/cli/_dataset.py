"""The dataset description of a model file: written by `skipnet train`, read back by `skipnet predict`.

This module is the one owner of the format, on both sides. It is stored as JSON under the key
``"dataset"`` of the safetensors header's metadata (beside skipnet's own ``"skipnet"`` entry); model
files saved by ``Network.save`` alone have no such entry, and predict then takes every column as a
feature. Schema, every key required:

    features       list[str]   the feature columns in the network's input order: CSV header names, or
                               the column indices as text ("0", "1", ...) for a .npy table; distinct
    target         str         the target column's name (its index as text for .npy); not a feature
    target_column  int         the target's position in the training table, 0 <= target_column < n_columns
    n_columns      int         columns of the training table: len(features) + 1
    named_columns  bool        true for a CSV (predict matches columns by name, in any order, and ignores
                               the target column), false for .npy (matched by position)
    loss           str         "l1" | "mse" (regression: the network's outputs are the predictions) or
                               "bce" | "cross_entropy" (classification)
    classes        list | null the original label (a finite number) of class index 0, 1, ...: 2 labels for
                               bce (output > 0 means classes[1]), n_outputs labels for cross_entropy
                               (argmax); distinct; null for regression

The standardisation of features and target used in training is not stored: it is folded into the saved
weights (skipnet._tabular.Standardizer.fold_into), so the network maps raw columns to the raw target.
A model file may come from anywhere, so the reader checks every field and refuses malformed entries with
a ValueError naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._tabular import Table
from .._targets import CLASSIFICATION_LOSSES, EncodedTargets, encode_targets
from .._validation import LOSSES

METADATA_KEY = "dataset"


@dataclass(frozen=True)
class Dataset:
    """What a trained network needs to know about its training table (see the module docstring)."""

    features: list[str]
    target: str
    target_column: int
    n_columns: int
    named_columns: bool
    loss: str
    classes: list[float] | None

    # ------------------------------------------------------------------------------ write side (train)
    @classmethod
    def of_table(cls, table: Table, target_column: int, loss: str, classes: np.ndarray | None) -> Dataset:
        """The description of ``table`` trained to predict column ``target_column`` with ``loss``;
        ``classes``: the labels found by ``encode_target`` (None for regression)."""
        names = table.names or [str(c) for c in range(table.n_columns)]
        return cls(features=[n for c, n in enumerate(names) if c != target_column], target=names[target_column],
                   target_column=target_column, n_columns=table.n_columns, named_columns=table.names is not None,
                   loss=loss, classes=None if classes is None else [float(c) for c in classes])

    def metadata(self) -> dict[str, str]:
        """The model file's metadata entry (for ``Network.save(..., metadata=...)``)."""
        return {METADATA_KEY: json.dumps(asdict(self), allow_nan=False)}

    # ------------------------------------------------------------------------------ read side (predict)
    @classmethod
    def from_metadata(cls, path: str | Path, meta: dict[str, str], n_outputs: int) -> Dataset | None:
        """The description stored in model file ``path`` (``meta``: its metadata), or None when the file
        has none; ValueError naming the file when the entry is malformed or does not fit a network of
        ``n_outputs`` outputs."""
        if METADATA_KEY not in meta:
            return None
        try:
            entry = json.loads(meta[METADATA_KEY])
            fields = set(cls.__dataclass_fields__)
            if not isinstance(entry, dict) or not fields <= set(entry):
                raise ValueError(f"expected a JSON object with the keys {sorted(fields)}")
            entry = {key: entry[key] for key in fields}  # later versions may add keys
            _check(entry, n_outputs)
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested past the stack
            raise ValueError(f"{path}: the {METADATA_KEY!r} metadata is malformed ({exc})") from exc
        return cls(**entry)

    def feature_columns(self, table: Table) -> np.ndarray:
        """The network's input columns of ``table`` (n_rows, len(features)), in training order: by name
        for a CSV model applied to a CSV table, else by position (the features alone, or every training
        column with the target at its place)."""
        if table.names is not None and self.named_columns:
            extra = [n for n in table.names if n not in self.features and n != self.target]
            missing = [n for n in self.features if n not in table.names]
            if missing or extra:
                raise ValueError(f"{table.path}: " + "; ".join(
                    ([f"missing feature column(s) {missing}"] if missing else []) +
                    ([f"column(s) {extra} were not features at training time"] if extra else [])))
            return table.values[:, [table.names.index(n) for n in self.features]]
        if table.n_columns == len(self.features):
            return table.values
        if table.n_columns == self.n_columns:
            return np.delete(table.values, self.target_column, axis=1)
        raise ValueError(f"{table.path}: expected {len(self.features)} feature columns (or {self.n_columns} "
                         f"with the target), got {table.n_columns}")

    def prediction_columns(self, out: np.ndarray) -> dict[str, np.ndarray]:
        """Named output columns for the network's outputs ``out`` (n_rows, n_outputs): class labels for
        classification, the values themselves for regression."""
        name = self.target if self.named_columns else "prediction"
        if self.classes is not None:
            index = (out[:, 0] > 0).astype(int) if self.loss == "bce" else out.argmax(axis=1)
            return {name: np.asarray(self.classes, np.float64)[index]}
        return _value_columns(name, out)


def encode_target(y: np.ndarray, loss: str) -> EncodedTargets:
    """(targets, class labels or None, network outputs) of the target column ``y`` (n,) for ``loss``, by
    the rule of skipnet._targets: regression targets as one float64 column (n, 1); classification
    labels of any values as class indices 0..k-1 (bce: exactly two classes, a 0/1 column (n, 1) for one
    logit; cross_entropy: (n,) int64, k outputs)."""
    return encode_targets(y, loss, name="the target column", loss_argument="--loss")


def feature_columns(table: Table, dataset: Dataset | None, n_inputs: int) -> np.ndarray:
    """The network's input columns of ``table``; without a description every column is a feature."""
    if dataset is not None:
        return dataset.feature_columns(table)
    if table.n_columns != n_inputs:
        raise ValueError(f"{table.path}: the model takes {n_inputs} features, the table has "
                         f"{table.n_columns} columns")
    return table.values


def prediction_columns(out: np.ndarray, dataset: Dataset | None) -> dict[str, np.ndarray]:
    """Named columns of the predictions ``out`` (n_rows, n_outputs) for the output table."""
    return _value_columns("prediction", out) if dataset is None else dataset.prediction_columns(out)


def _value_columns(name: str, out: np.ndarray) -> dict[str, np.ndarray]:
    if out.shape[1] == 1:
        return {name: out[:, 0]}
    return {f"{name}_{k}": out[:, k] for k in range(out.shape[1])}


def _check(entry: dict, n_outputs: int) -> None:
    """ValueError saying which field of a parsed ``dataset`` entry is wrong."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    features, n_columns, target_column = entry["features"], entry["n_columns"], entry["target_column"]
    if not (isinstance(features, list) and all(isinstance(n, str) for n in features)
            and isinstance(entry["target"], str) and isinstance(entry["named_columns"], bool)):
        raise ValueError("features must be a list of names, target a name, named_columns true or false")
    if len(set(features)) != len(features) or entry["target"] in features:
        raise ValueError("the feature names must be distinct and differ from the target's")
    if not (is_int(n_columns) and is_int(target_column) and 0 <= target_column < n_columns
            and len(features) == n_columns - 1):
        raise ValueError("target_column must index one of n_columns columns, the others being the features")
    if entry["loss"] not in LOSSES:
        raise ValueError(f"unknown loss {entry['loss']!r}")
    classes = entry["classes"]
    if entry["loss"] not in CLASSIFICATION_LOSSES:
        if classes is not None:
            raise ValueError(f"classes must be null for the {entry['loss']} loss")
        return
    if entry["loss"] == "bce" and n_outputs != 1:
        raise ValueError(f"the bce loss needs a network of 1 output (a logit), this one has {n_outputs}")
    count = 2 if entry["loss"] == "bce" else n_outputs
    if not (isinstance(classes, list) and len(classes) == count and all(_is_label(c) for c in classes)
            and len(set(classes)) == count):
        raise ValueError(f"classes must list the {count} distinct finite numeric labels of the model's classes")


def _is_label(value) -> bool:
    """A finite number that float64 holds (JSON integers have no size limit: 10**400 overflows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
