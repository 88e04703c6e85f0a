"""Tables on the command line: pandas' index column, messages counting from 1, sweep standardising as train."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from skipnet import _tabular as T
from skipnet.cli import main


def test_pandas_to_csv_index_column_is_dropped(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.5, 2.5, 3.5], "y": [3.0, 4.0, 5.0]})
    frame.to_csv(tmp_path / "t.csv")
    table = T.read_table(tmp_path / "t.csv")
    assert table.names == ["x", "y"]
    np.testing.assert_array_equal(table.values, frame.to_numpy())
    (tmp_path / "u.csv").write_text(",x\n5,1\n6,2\n")  # unnamed, but not an index 0..n-1
    with pytest.raises(ValueError, match="column 1 has no name"):
        T.read_table(tmp_path / "u.csv")


@pytest.mark.parametrize("text, message", [
    ("a,b,c\n1,2,3\n4,x,6\n", r"row 2 \(line 3 of the file\), column 2: 'x' is not a number"),
    ("a,b,c\n1,2,3\n\n4,5\n", r"row 2 \(line 4 of the file\) has 2 cells"),
    ("a,b,c\n1,2,3\n4,nan,6\n", r"row 2, column 2 \('b'\)"),
])
def test_csv_messages_count_rows_and_columns_from_1(tmp_path, text, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        T.read_table(tmp_path / "t.csv")


def test_npy_messages_count_columns_from_1(tmp_path):
    np.save(tmp_path / "t.npy", np.array([[1.0, 2.0, np.inf]]))
    with pytest.raises(ValueError, match=r"row 1, column 3$"):
        T.read_table(tmp_path / "t.npy")


def _sweep_losses(tmp_path, capsys, scale, *extra):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = 100.0 + 10.0 * X[:, 0] - 5.0 * np.abs(X[:, 1])
    np.save(tmp_path / "d.npy", np.column_stack([X * scale, y]))
    out = tmp_path / f"runs{scale}{len(extra)}.csv"
    assert main(["sweep", str(tmp_path / "d.npy"), "--loss", "mse", "--seeds", "2", "--lrs", "0.05",
                 "--epochs", "5", "--parallel-backend", "serial", "--val-split", "0.25", "--quiet",
                 "--out", str(out), *extra]) == 0
    capsys.readouterr()
    with open(out, newline="") as f:
        return np.array([[float(r["final_loss"]), float(r["val_loss"])] for r in csv.DictReader(f)])


def test_sweep_standardizes_as_train(tmp_path, capsys):
    plain = _sweep_losses(tmp_path, capsys, 1.0)
    scaled = _sweep_losses(tmp_path, capsys, 1000.0)
    # standardised features: the scale of the raw columns does not matter; losses in the target's units
    np.testing.assert_allclose(scaled, plain, rtol=1e-6)
    assert np.all(plain < 100.0)  # the target's variance is about 125: a trained fit is well below
    raw = _sweep_losses(tmp_path, capsys, 1000.0, "--no-standardize")
    assert not np.allclose(raw, plain, rtol=1e-3)
