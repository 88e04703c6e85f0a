"""The dataset description in model files (skipnet/cli/_dataset.py): what train writes, predict reads."""

import json
from pathlib import Path

import numpy as np
import pytest

from skipnet._tabular import Table
from skipnet.cli._dataset import METADATA_KEY, Dataset, encode_target, feature_columns, prediction_columns


def _table(names=("a", "y", "b")):
    values = np.arange(12.0).reshape(4, 3)
    return Table(Path("t.csv" if names else "t.npy"), values, list(names) if names else None)


def test_written_then_read_back():
    labels = np.array([10.0, 20.0, 30.0])
    y, classes, n_outputs = encode_target(np.array([30.0, 10.0, 20.0, 10.0]), "cross_entropy")
    assert y.tolist() == [2, 0, 1, 0] and classes.tolist() == labels.tolist() and n_outputs == 3
    written = Dataset.of_table(_table(), 1, "cross_entropy", classes)
    meta = written.metadata()
    assert json.loads(meta[METADATA_KEY]) == {
        "features": ["a", "b"], "target": "y", "target_column": 1, "n_columns": 3, "named_columns": True,
        "loss": "cross_entropy", "classes": [10.0, 20.0, 30.0]}
    read = Dataset.from_metadata("m.safetensors", meta, n_outputs=3)
    assert read == written
    # by name, in any order, the target ignored; labels for the argmax of each row
    shuffled = Table(Path("p.csv"), np.array([[5.0, 6.0, 7.0]]), ["b", "y", "a"])
    assert read.feature_columns(shuffled).tolist() == [[7.0, 5.0]]
    assert read.prediction_columns(np.array([[0.0, 3.0, 1.0]]))["y"].tolist() == [20.0]


def test_npy_tables_are_matched_by_position():
    dataset = Dataset.of_table(_table(None), 2, "l1", None)
    assert dataset.features == ["0", "1"] and dataset.target == "2" and not dataset.named_columns
    assert feature_columns(_table(None), dataset, 2).tolist() == np.arange(12.0).reshape(4, 3)[:, :2].tolist()
    assert list(prediction_columns(np.ones((2, 1)), dataset)) == ["prediction"]
    assert list(prediction_columns(np.ones((2, 2)), None)) == ["prediction_0", "prediction_1"]


def test_model_files_without_a_description_and_later_keys():
    assert Dataset.from_metadata("m.safetensors", {"skipnet": "{}"}, 1) is None
    entry = json.loads(Dataset.of_table(_table(), 1, "mse", None).metadata()[METADATA_KEY])
    later = {METADATA_KEY: json.dumps({**entry, "added_in_a_later_version": 1})}
    assert Dataset.from_metadata("m.safetensors", later, 1).loss == "mse"


@pytest.mark.parametrize("change, n_outputs", [
    ({"classes": [10**400, 1]}, 1), ({"classes": [float("inf"), 1.0]}, 1), ({"classes": [1, 1]}, 1),
    ({"classes": [True, 2]}, 1), ({"loss": "mse", "classes": [1, 2]}, 1), ({"features": ["a", "a"]}, 1),
    ({"features": ["y", "b"]}, 1), ({"classes": [1, 2]}, 3),
], ids=str)
def test_malformed_entries_are_refused_naming_the_file(change, n_outputs):
    entry = json.loads(Dataset.of_table(_table(), 1, "bce", np.array([1.0, 2.0])).metadata()[METADATA_KEY])
    with pytest.raises(ValueError, match=r"^m.safetensors: the 'dataset' metadata is malformed"):
        Dataset.from_metadata("m.safetensors", {METADATA_KEY: json.dumps({**entry, **change})}, n_outputs)
