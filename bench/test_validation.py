"""A small fit with a validation set (and restore_best) against the same fit without: W1's network and
data (2-16-16-1, batch 32, float32, 3200 rows), 20 epochs, fused, the validation set the first 320 rows.
The fused kernel computes the validation loss and keeps the best weights at each epoch's end, so the
fits should differ by the validation passes alone (about a tenth of an epoch each), not by a kernel call
and a Python round trip per epoch. Each round trains from the same fixed start."""

import pytest

from skipnet import Trainer
from skipnet._bench import WORKLOADS

EPOCHS = 20
VARIANTS = {
    "no validation": {},
    "validation": {"validation": True},
    "validation, restore_best": {"validation": True, "restore_best": True},
    "restore_best": {"restore_best": True},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fit_with_validation(benchmark, variant):
    w = WORKLOADS["W1"]
    X, y = w.data()
    options = VARIANTS[variant]
    validation = (X[:320], y[:320]) if options.get("validation") else None
    start = w.make(0).parameters()

    def fit():
        net = w.make(0)
        net.set_parameters(start)
        trainer = Trainer(net, loss="l1", lr=0.01, batch_size=w.batch, epochs=EPOCHS,
                          restore_best=options.get("restore_best", False))
        return trainer.fit(X, y, validation=validation)

    benchmark.group = f"W1 fit of {EPOCHS} epochs: with validation and restore_best vs without"
    benchmark.extra_info["epochs"] = EPOCHS
    fit()  # warm-up
    benchmark.pedantic(fit, rounds=7, iterations=1)
