"""`skipnet predict`: apply a model file to a CSV/.npy table."""

from __future__ import annotations

import numpy as np

from .._files import check_input_path
from ._dataset import Dataset, feature_columns, prediction_columns
from ._paths import check_outputs, write_output


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict", help="predict with a model file on a CSV or .npy table",
        description="Predict the target of every row of DATA with MODEL (written by `skipnet train` or "
                    "Network.save). DATA holds the feature columns; the target column named at training "
                    "time is ignored when present.",
        epilog="exit status: 0 on success; 2 for bad arguments, an unreadable model file or table, or an "
               "unwritable --out (checked before predicting).")
    p.add_argument("model", metavar="MODEL", help="a .safetensors model file")
    p.add_argument("data", metavar="DATA", help="table of features: .csv with a header row, or .npy")
    p.add_argument("--out", help="write the predictions to this CSV file (default: print them)")
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import _tabular as T
    from .. import io
    from ..network import Network

    check_outputs({"--out": args.out}, inputs={"MODEL": args.model, "DATA": args.data})
    model = check_input_path(args.model, "MODEL")
    net = Network.load(model)
    dataset = Dataset.from_metadata(model, io.read_metadata(model), net.n_outputs)
    table = T.read_table(args.data)
    X = feature_columns(table, dataset, net.n_inputs)
    try:
        out = net.predict(X)
    except ValueError as exc:  # values the network's dtype cannot hold: say which file holds them
        raise ValueError(f"{table.path}: {exc}") from exc
    columns = prediction_columns(out.astype(np.float64), dataset)
    if args.out is None:
        print(T.format_table(columns), end="")
        return 0
    write_output(args.out, T.format_table(columns), "--out")
    print(f"{X.shape[0]} predictions saved to {args.out}")
    return 0
